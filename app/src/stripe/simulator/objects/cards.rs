//! Stripe's test cards and test PaymentMethods, and what each does in test mode, as Stripe
//! documents them (https://docs.stripe.com/testing).
use crate::stripe::simulator::wire::ApiError;
use axum::http::StatusCode;

/// What a test card does when a PaymentIntent is confirmed with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOutcome {
    /// The payment succeeds; `then` says what happens to it afterwards.
    Succeeds(AfterSuccess),
    RequiresAuthentication,
    Declined {
        decline_code: &'static str,
        message: &'static str,
    },
}

/// What a succeeded payment's card does later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterSuccess {
    #[default]
    Nothing,
    /// 4000 0000 0000 0259: the cardholder disputes the charge.
    Disputed,
    /// 4000 0000 0000 5126: a refund succeeds at first, then fails (the card was closed).
    RefundsFail,
    /// 4000 0000 0000 7726: a refund starts `pending` and settles later (here: when
    /// `Simulator::settle_refund` or `POST /_simulator/refunds/{id}/settle` says how).
    RefundsPending,
}

/// The card a PaymentIntent was confirmed with, as far as later steps need it.
#[derive(Debug, Clone, Default)]
pub struct Card {
    pub last4: String,
    /// Stripe's fingerprint: the same for every use of one card number, and nothing else.
    pub fingerprint: String,
    /// Whether paying with it took a 3-D Secure challenge.
    pub three_d_secure: bool,
    pub after_success: AfterSuccess,
}

/// What a test card number does, and the card (its last four digits come from the cleaned
/// digits: the number as typed may hold spaces of any width, and cutting that by bytes could
/// split a character).
pub fn card_outcome(number: &str) -> Result<(CardOutcome, Card), ApiError> {
    let digits: String = number.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if digits.len() < 12 || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) || !luhn(&digits) {
        return Err(ApiError {
            status: StatusCode::PAYMENT_REQUIRED,
            kind: "card_error",
            ..ApiError::invalid(
                Some("incorrect_number"),
                "Your card number is incorrect.",
                Some("payment_method_data[card][number]"),
            )
        });
    }
    let outcome = match digits.as_str() {
        "4242424242424242" | "5555555555554444" => CardOutcome::Succeeds(AfterSuccess::Nothing),
        "4000000000000259" => CardOutcome::Succeeds(AfterSuccess::Disputed),
        "4000000000005126" => CardOutcome::Succeeds(AfterSuccess::RefundsFail),
        "4000000000007726" => CardOutcome::Succeeds(AfterSuccess::RefundsPending),
        "4000002500003155" | "4000002760003184" => CardOutcome::RequiresAuthentication,
        "4000000000000002" => {
            CardOutcome::Declined { decline_code: "generic_decline", message: "Your card was declined." }
        }
        "4000000000009995" => {
            CardOutcome::Declined { decline_code: "insufficient_funds", message: "Your card has insufficient funds." }
        }
        _ => CardOutcome::Declined {
            decline_code: "test_mode_live_card",
            message: "Your card was declined. Your request was in test mode, but used a non test card.",
        },
    };
    let after_success = match outcome {
        CardOutcome::Succeeds(after) => after,
        _ => AfterSuccess::Nothing,
    };
    let card = Card {
        last4: digits[digits.len() - 4..].to_string(),
        fingerprint: fingerprint(&digits),
        three_d_secure: outcome == CardOutcome::RequiresAuthentication,
        after_success,
    };
    Ok((outcome, card))
}

/// Sixteen letters and digits derived from the card number (FNV-1a), as Stripe's fingerprints
/// look; not reversible to the number in any useful sense, and stable across runs.
fn fingerprint(digits: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    (0..16)
        .map(|round| {
            for b in digits.bytes().chain([round]) {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            ALPHABET[(hash % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            match (i % 2 == 1, d * 2) {
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
                (false, _) => d,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Stripe's ready-made test PaymentMethods, mapped to their card numbers.
pub fn test_payment_method_number(pm: &str) -> Option<&'static str> {
    Some(match pm {
        "pm_card_visa" => "4242424242424242",
        "pm_card_mastercard" => "5555555555554444",
        "pm_card_authenticationRequired" | "pm_card_threeDSecure2Required" => "4000002500003155",
        "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" => "4000000000000002",
        "pm_card_chargeDeclinedInsufficientFunds" | "pm_card_visa_chargeDeclinedInsufficientFunds" => {
            "4000000000009995"
        }
        "pm_card_createDispute" => "4000000000000259",
        "pm_card_refundFail" => "4000000000005126",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_payment_method_is_a_valid_card() {
        for pm in ["pm_card_visa", "pm_card_createDispute", "pm_card_refundFail", "pm_card_threeDSecure2Required"] {
            assert!(card_outcome(test_payment_method_number(pm).unwrap()).is_ok(), "{pm}");
        }
    }

    #[test]
    fn the_refund_pending_card_succeeds_and_remembers_its_refunds_wait() {
        let (outcome, card) = card_outcome("4000 0000 0000 7726").unwrap();
        assert_eq!(outcome, CardOutcome::Succeeds(AfterSuccess::RefundsPending));
        assert_eq!((card.last4.as_str(), card.after_success), ("7726", AfterSuccess::RefundsPending));
    }

    #[test]
    fn the_refund_fail_card_succeeds_and_remembers_its_refunds_fail() {
        let (outcome, card) = card_outcome("4000 0000 0000 5126").unwrap();
        assert_eq!(outcome, CardOutcome::Succeeds(AfterSuccess::RefundsFail));
        assert_eq!((card.last4.as_str(), card.after_success), ("5126", AfterSuccess::RefundsFail));
        assert_eq!(card_outcome("4000000000005127").unwrap_err().code, Some("incorrect_number"));
    }

    #[test]
    fn a_card_number_has_one_fingerprint_of_sixteen_characters() {
        let (_, a) = card_outcome("4242 4242 4242 4242").unwrap();
        let (_, b) = card_outcome("4242424242424242").unwrap();
        let (_, other) = card_outcome("5555555555554444").unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, other.fingerprint);
        assert!(a.fingerprint.len() == 16 && a.fingerprint.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(!a.three_d_secure && card_outcome("4000002500003155").unwrap().1.three_d_secure);
    }
}
