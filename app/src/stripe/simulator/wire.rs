//! Stripe's wire formats, with no state behind them: the error object and its status codes,
//! form and query parameters (Stripe's bracketed keys, both `expand[]=` and `expand[0]=` for
//! arrays), list pages, object ids and timestamps, and the API request an event names.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Stripe's error object, with the HTTP status it comes with.
#[derive(Debug, Clone)]
pub(super) struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    /// A 400 `invalid_request_error`.
    pub fn invalid(code: Option<&'static str>, message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code,
            message: message.into(),
            param: param.map(str::to_string),
        }
    }

    /// Stripe's 404 for an id it does not hold: `No such refund: 're_...'`.
    pub fn no_such(object: &str, id: &str, param: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            ..Self::invalid(Some("resource_missing"), format!("No such {object}: '{id}'"), Some(param))
        }
    }

    pub fn missing(param: &str) -> Self {
        Self::invalid(Some("parameter_missing"), format!("Missing required param: {param}."), Some(param))
    }

    pub fn invalid_integer(param: &str, value: &str) -> Self {
        Self::invalid(Some("parameter_invalid_integer"), format!("Invalid integer: {value}"), Some(param))
    }

    /// Two parameters of which Stripe accepts at most one.
    pub fn exclusive(a: &str, b: &str) -> Self {
        Self::invalid(
            Some("parameters_exclusive"),
            format!("You may only specify one of these parameters: {a}, {b}."),
            Some(b),
        )
    }

    /// The body Stripe sends: `{"error": {type, message, code, doc_url, param}}`.
    pub fn body(&self) -> Value {
        let mut err = Map::new();
        err.insert("type".into(), json!(self.kind));
        err.insert("message".into(), json!(self.message));
        if let Some(code) = self.code {
            err.insert("code".into(), json!(code));
            err.insert(
                "doc_url".into(),
                json!(format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-"))),
            );
        }
        if let Some(param) = &self.param {
            err.insert("param".into(), json!(param));
        }
        json!({ "error": err })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

pub(super) type ApiResult = Result<Response, ApiError>;

/// An object as Stripe renders it, with status 200.
pub(super) fn ok(object: &impl serde::Serialize) -> ApiResult {
    Ok(Json(object).into_response())
}

/// A form body or query string with Stripe's bracketed keys (`metadata[contractId]`,
/// `created[gte]`, `expand[]`, `types[0]`), in the order sent; a key may repeat.
#[derive(Debug, Clone, Default)]
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Self {
        Self(form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    pub fn query(raw: Option<String>) -> Self {
        Self::parse(raw.unwrap_or_default().as_bytes())
    }

    /// The parameters sorted, so two requests that say the same thing compare equal.
    pub fn fingerprint(&self) -> String {
        let mut pairs = self.0.clone();
        pairs.sort();
        serde_json::to_string(&pairs).unwrap_or_default()
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A string parameter that, when given, must not be empty.
    pub fn string(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.get(name) {
            Some("") => Err(ApiError::invalid(
                Some("parameter_invalid_empty"),
                format!("You passed an empty string for '{name}'. We assume empty values are an attempt to unset a parameter; however '{name}' cannot be unset. You should remove '{name}' from your request or supply a non-empty value."),
                Some(name),
            )),
            other => Ok(other),
        }
    }

    /// An array parameter: `name[]=a&name[]=b` or `name[0]=a&name[1]=b` (in index order).
    pub fn list(&self, name: &str) -> Vec<&str> {
        let open = format!("{name}[");
        let mut items: Vec<(usize, usize, &str)> = self
            .0
            .iter()
            .enumerate()
            .filter_map(|(at, (k, v))| {
                let inside = k.strip_prefix(&open)?.strip_suffix(']')?;
                let index = if inside.is_empty() { usize::MAX } else { inside.parse().ok()? };
                Some((index, at, v.as_str()))
            })
            .collect();
        // Numbered items in their numbers' order; `[]` items where they were sent, after them.
        items.sort_by_key(|&(index, at, _)| (index, at));
        items.into_iter().map(|(_, _, v)| v).collect()
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name).map(|v| v.parse().map_err(|_| ApiError::invalid_integer(name, v))).transpose()
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid(None, format!("Invalid boolean: {other}"), Some(name))),
        }
    }

    /// `metadata[key]=value` pairs, within Stripe's limits: 50 keys, key ≤ 40 characters,
    /// value ≤ 500.
    pub fn metadata(&self) -> Result<BTreeMap<String, String>, ApiError> {
        let mut metadata = BTreeMap::new();
        for (k, v) in &self.0 {
            if let Some(name) = k.strip_prefix("metadata[").and_then(|k| k.strip_suffix(']')) {
                if name.is_empty() || name.chars().count() > 40 || v.chars().count() > 500 || metadata.len() >= 50 {
                    return Err(ApiError::invalid(
                        Some("parameter_invalid_string"),
                        "Metadata keys are 1-40 characters, values at most 500, at most 50 keys.",
                        Some("metadata"),
                    ));
                }
                metadata.insert(name.to_string(), v.clone());
            }
        }
        Ok(metadata)
    }

    /// A timestamp filter: `name=t` or any of `name[gte|gt|lte|lt]=t`.
    pub fn created(&self, name: &str) -> Result<Created, ApiError> {
        let bound = |op: &str| self.int(&format!("{name}[{op}]"));
        Ok(Created {
            exact: self.int(name)?,
            gte: bound("gte")?,
            gt: bound("gt")?,
            lte: bound("lte")?,
            lt: bound("lt")?,
        })
    }

    /// `limit` (1..=100, default 10) and the cursors `starting_after` / `ending_before`.
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = match self.int("limit")? {
            None => 10,
            Some(l @ 1..=100) => l as usize,
            Some(_) => return Err(ApiError::invalid(None, "Limit must be between 1 and 100.", Some("limit"))),
        };
        let starting_after = self.string("starting_after")?.map(str::to_string);
        let ending_before = self.string("ending_before")?.map(str::to_string);
        if starting_after.is_some() && ending_before.is_some() {
            return Err(ApiError::exclusive("starting_after", "ending_before"));
        }
        Ok(Page { limit, starting_after, ending_before })
    }

    /// The `expand` paths asked for, refusing any not in `allowed` as Stripe does.
    pub fn expand(&self, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
        let asked = self.list("expand");
        match asked.iter().find(|p| !allowed.contains(p)) {
            Some(path) => {
                Err(ApiError::invalid(None, format!("This property cannot be expanded ({path})."), Some("expand")))
            }
            None => Ok(asked.into_iter().map(str::to_string).collect()),
        }
    }
}

/// A `created` filter of a list.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Created {
    exact: Option<i64>,
    gte: Option<i64>,
    gt: Option<i64>,
    lte: Option<i64>,
    lt: Option<i64>,
}

impl Created {
    pub fn contains(&self, t: i64) -> bool {
        self.exact.is_none_or(|v| t == v)
            && self.gte.is_none_or(|v| t >= v)
            && self.gt.is_none_or(|v| t > v)
            && self.lte.is_none_or(|v| t <= v)
            && self.lt.is_none_or(|v| t < v)
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct Page {
    limit: usize,
    starting_after: Option<String>,
    ending_before: Option<String>,
}

impl Page {
    /// One page of Stripe's list object over `matching` (newest first): the `limit` objects
    /// after `starting_after`, or the `limit` objects just before `ending_before` (still newest
    /// first), and whether more follow in that direction. Each object is rendered by `render`.
    pub fn render<T: Object>(
        &self,
        matching: &[&T],
        object: &str,
        url: &str,
        render: impl Fn(&T) -> Value,
    ) -> ApiResult {
        let position = |cursor: &str, param: &str| {
            matching.iter().position(|o| o.id() == cursor).ok_or_else(|| ApiError::no_such(object, cursor, param))
        };
        let (page, has_more) = if let Some(before) = &self.ending_before {
            let end = position(before, "ending_before")?;
            let start = end.saturating_sub(self.limit);
            (&matching[start..end], start > 0)
        } else {
            let start = match &self.starting_after {
                Some(after) => position(after, "starting_after")? + 1,
                None => 0,
            };
            let end = (start + self.limit).min(matching.len());
            (&matching[start..end], end < matching.len())
        };
        let data: Vec<Value> = page.iter().map(|o| render(o)).collect();
        ok(&json!({"object": "list", "data": data, "has_more": has_more, "url": url}))
    }
}

pub(super) fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// A new object id with Stripe's prefix for its kind (`re`, `du`, `ch`, ...).
pub(super) fn new_id(prefix: &str) -> String {
    format!("{prefix}_sim{}", random_token(20))
}

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The API request an object changed in, as events report it (`request.id` and
/// `request.idempotency_key`); both null for what Stripe does by itself (a dispute, a refund
/// that fails later).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(super) struct RequestInfo {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

/// A Stripe object as the tables and lists need it: by its id.
pub(super) trait Object {
    fn id(&self) -> &str;
}

/// Implements `Object` for a struct with an `id: String` field.
macro_rules! object {
    ($($t:ty),*) => {$(
        impl $crate::stripe::simulator::wire::Object for $t {
            fn id(&self) -> &str {
                &self.id
            }
        }
    )*};
}
pub(super) use object;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_are_read_in_both_of_stripes_encodings() {
        let p = Params::parse(b"expand[]=a&expand[]=b&types[1]=y&types[0]=x&types[10]=z");
        assert_eq!(p.list("expand"), ["a", "b"]);
        assert_eq!(p.list("types"), ["x", "y", "z"]);
        assert!(p.list("other").is_empty());
    }

    #[test]
    fn created_bounds_combine() {
        let c = Params::parse(b"created[gte]=10&created[lt]=20").created("created").unwrap();
        assert!(c.contains(10) && c.contains(19) && !c.contains(20) && !c.contains(9));
        assert_eq!(
            Params::parse(b"created[gt]=x").created("created").unwrap_err().param.as_deref(),
            Some("created[gt]")
        );
    }

    #[test]
    fn pages_refuse_both_cursors_and_limits_out_of_range() {
        assert_eq!(Params::parse(b"limit=0").page().unwrap_err().param.as_deref(), Some("limit"));
        assert_eq!(Params::parse(b"limit=101").page().unwrap_err().param.as_deref(), Some("limit"));
        let both = Params::parse(b"starting_after=a&ending_before=b").page().unwrap_err();
        assert_eq!(both.code, Some("parameters_exclusive"));
    }
}
