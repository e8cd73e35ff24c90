//! Money is an integer count of the currency's minor unit (cents for USD): never a float,
//! because a pack price compared for equality must compare exactly.
use serde::{Deserialize, Serialize};
use std::fmt;

/// A lower-case ISO 4217 code as Stripe writes it (`usd`). Parsed, never just wrapped:
/// an invalid code cannot exist past the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, String> {
        let code = code.trim().to_ascii_lowercase();
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Self(code))
        } else {
            Err(format!("`{code}` is not a three-letter ISO 4217 currency code"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Minor units per major unit. Stripe's zero-decimal currencies (JPY, KRW, ...) have none;
    /// the three-decimal ones are not offered for card payments in our markets.
    fn minor_digits(&self) -> u32 {
        const ZERO_DECIMAL: &[&str] = &[
            "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof",
            "xpf",
        ];
        if ZERO_DECIMAL.contains(&self.0.as_str()) {
            0
        } else {
            2
        }
    }
}

impl Currency {
    /// A typed amount in major units (`150`, `150.5`, `150.00`; `1500` for JPY) as minor units.
    /// Exact: read as digits, never through a float; more decimals than the currency has is an
    /// error, not a rounding.
    pub fn parse_amount(&self, text: &str) -> Result<i64, String> {
        let t = text.trim();
        let bad = || format!("`{t}` is not an amount in {} (like 150 or 150.00)", self.0.to_ascii_uppercase());
        let digits = self.minor_digits() as usize;
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if frac.len() > digits || (t.contains('.') && frac.is_empty()) {
            return Err(bad());
        }
        let scale = 10i64.pow(digits as u32);
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<digits$}").parse().map_err(|_| bad())? };
        whole.checked_mul(scale).and_then(|w| w.checked_add(frac)).ok_or_else(bad)
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Amount in the currency's minor unit, as Stripe's `amount`.
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }
}

/// An amount as the UI, the CLI and Slack show it (`$150.00`, `99.00 EUR`), from the minor
/// units and currency code a table holds; a code that is not a currency is shown as stored.
pub fn format_amount(minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => Money::new(minor, c).to_string(),
        Err(_) => format!("{minor} {currency}"),
    }
}

impl Money {
    /// The amount in major units as a plain decimal (`150.00`, `-75.00`, `1500` for JPY): for
    /// CSV files and other machine-read text, where a symbol would stop a number being one.
    pub fn decimal(&self) -> String {
        let digits = self.currency.minor_digits();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if digits == 0 {
            format!("{sign}{abs}")
        } else {
            let scale = 10u64.pow(digits);
            format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = digits as usize)
        }
    }
}

impl fmt::Display for Money {
    /// `$150.00`-style for USD, `150.00 EUR` for other currencies; used in the UI and the CLI.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimal = self.decimal();
        let (sign, amount) = match decimal.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", decimal.as_str()),
        };
        if self.currency.as_str() == "usd" {
            write!(f, "{sign}${amount}")
        } else {
            write!(f, "{sign}{amount} {}", self.currency.as_str().to_ascii_uppercase())
        }
    }
}

/// What a contract includes and what a revision pack costs: the commercial terms, from config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackTerms {
    /// Price of one revision pack.
    pub price: Money,
    /// Revisions one pack adds.
    pub revisions_per_pack: i64,
    /// Revisions every new contract includes.
    pub base_revisions: i64,
}

impl PackTerms {
    pub fn new(price: Money, revisions_per_pack: i64, base_revisions: i64) -> Result<Self, String> {
        if price.minor <= 0 {
            return Err(format!("the pack price must be positive, got {}", price.minor));
        }
        // Stripe's minimum charge is 50 cents and its maximum 8 digits in the minor unit.
        if price.minor > 99_999_999 {
            return Err(format!("the pack price {} exceeds Stripe's maximum amount", price.minor));
        }
        if revisions_per_pack <= 0 {
            return Err(format!("a pack must add at least one revision, got {revisions_per_pack}"));
        }
        if base_revisions < 0 {
            return Err(format!("base revisions cannot be negative, got {base_revisions}"));
        }
        Ok(Self { price, revisions_per_pack, base_revisions })
    }

    /// The product as sold: $150 for 2 more revisions.
    pub fn standard() -> Self {
        Self::new(Money::new(15_000, Currency::parse("usd").expect("usd")), 2, 3).expect("valid")
    }

    /// Whether a paid amount is exactly one pack. Anything else (a partial capture, a price
    /// changed in the dashboard, another currency) is not a pack and must not credit one.
    pub fn check_payment(&self, amount_minor: i64, currency: &str) -> Result<(), String> {
        if !currency.eq_ignore_ascii_case(self.price.currency.as_str()) {
            return Err(format!("currency {currency} does not match the pack currency {}", self.price.currency));
        }
        if amount_minor != self.price.minor {
            return Err(format!("amount {amount_minor} does not match the pack price {}", self.price.minor));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("usd").unwrap()
    }

    #[test]
    fn typed_amounts_read_exactly_in_the_currencys_minor_units() {
        let jpy = Currency::parse("jpy").unwrap();
        assert_eq!(usd().parse_amount("150"), Ok(15000));
        assert_eq!(usd().parse_amount(" 150.5 "), Ok(15050));
        assert_eq!(usd().parse_amount("0.07"), Ok(7));
        assert_eq!(jpy.parse_amount("1500"), Ok(1500));
        for bad in ["", "1.234", "-5", "1e3", "12.", ".5", "1,000", "99999999999999999999"] {
            assert!(usd().parse_amount(bad).is_err(), "{bad}");
        }
        assert!(jpy.parse_amount("1500.5").is_err());
    }

    #[test]
    fn currency_codes_are_normalised_and_validated() {
        assert_eq!(Currency::parse(" USD ").unwrap().as_str(), "usd");
        assert!(Currency::parse("us").is_err());
        assert!(Currency::parse("us1").is_err());
        assert!(Currency::parse("dollar").is_err());
    }

    #[test]
    fn money_formats_minor_units() {
        assert_eq!(Money::new(15_000, usd()).to_string(), "$150.00");
        assert_eq!(Money::new(5, usd()).to_string(), "$0.05");
        assert_eq!(Money::new(-250, usd()).to_string(), "-$2.50");
        assert_eq!(Money::new(1500, Currency::parse("jpy").unwrap()).to_string(), "1500 JPY");
        assert_eq!(Money::new(1999, Currency::parse("eur").unwrap()).to_string(), "19.99 EUR");
    }

    #[test]
    fn a_payment_is_a_pack_only_at_the_exact_price_and_currency() {
        let terms = PackTerms::standard();
        assert!(terms.check_payment(15_000, "usd").is_ok());
        assert!(terms.check_payment(15_000, "USD").is_ok());
        assert!(terms.check_payment(14_999, "usd").unwrap_err().contains("does not match the pack price"));
        assert!(terms.check_payment(30_000, "usd").is_err());
        assert!(terms.check_payment(15_000, "eur").unwrap_err().contains("currency"));
    }

    #[test]
    fn pack_terms_reject_nonsense() {
        assert!(PackTerms::new(Money::new(0, usd()), 2, 3).is_err());
        assert!(PackTerms::new(Money::new(15_000, usd()), 0, 3).is_err());
        assert!(PackTerms::new(Money::new(15_000, usd()), 2, -1).is_err());
        assert!(PackTerms::new(Money::new(100_000_000, usd()), 2, 3).is_err());
    }
}
