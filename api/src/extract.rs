//! Request extractors whose rejections speak the API's error format.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// `Json<T>` with rejections mapped to stable codes: `malformed_json` (400, not JSON),
/// `invalid_body` (422, JSON of the wrong shape, e.g. an unknown field), `unsupported_media_type`
/// (415), `payload_too_large` (413).
///
/// Unknown fields are refused at any depth, whatever `T`'s own serde attributes say. Request
/// types embed domain types (`Candidate`, `ConsentScopes`, `AssessmentSpec`) that are also event
/// payloads, and those must ignore unknown fields so that older readers of the topics keep
/// working (docs/decisions/0015-event-schema-evolution.md); strictness toward clients is a
/// property of the API boundary, so it is enforced here, once.
pub struct ApiJson<T>(pub T);

/// The longest string any JSON body may carry, in characters (Unicode scalar values, what JSON
/// Schema's `maxLength` counts, so the OpenAPI document states it exactly), outside the fields a
/// request type names in [`BodyText::LONG_TEXT`]: names, e-mails, notice versions,
/// justifications, rationales, comments, reasons. Free text is evidence a human reads; 10,000
/// characters is a long page.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// What a request body may hold as text. Every JSON request type says so explicitly, so a new
/// one cannot forget: most keep the default (every string at most [`MAX_TEXT_CHARS`]).
pub trait BodyText {
    /// Paths (prefixes, `.`-separated) whose strings may be longer — code and prompts — bounded
    /// by the body limit instead.
    const LONG_TEXT: &'static [&'static str] = &[];
}

impl<S: Send + Sync, T: DeserializeOwned + BodyText> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<Value>::from_request(req, state)
            .await
            .map_err(json_rejection)?;
        // Every request body is an object; serde would also read a struct from an array of its
        // fields in order (`[null]` was accepted as an empty re-run request).
        if !value.is_object() {
            return Err(ApiError::invalid(
                "invalid_body",
                "the body must be a JSON object",
            ));
        }
        if let Some(path) = nul_path(&value, &mut Vec::new()) {
            return Err(ApiError::invalid(
                "invalid_text",
                format!("{path}: text must not contain NUL (U+0000)"),
            ));
        }
        if let Some((path, len)) = long_text(&value, &mut Vec::new(), T::LONG_TEXT) {
            return Err(ApiError::invalid(
                "text_too_long",
                format!("{path}: {len} characters; at most {MAX_TEXT_CHARS} characters"),
            ));
        }
        strict_from_value(whole_numbers(value))
            .map(Self)
            .map_err(|message| ApiError::invalid("invalid_body", message))
    }
}

/// `value` with every whole number spelled as an integer (`41.0` → `41`). JSON has one number
/// type and JSON Schema's `integer` admits both spellings, but serde's integer types take only
/// the first; floats fields take either.
fn whole_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let whole = f.is_finite() && f.fract() == 0.0;
            if whole && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                Value::from(f as i64)
            } else if whole && f >= 0.0 && f < u64::MAX as f64 {
                Value::from(f as u64)
            } else {
                Value::Number(n)
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(whole_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| (key, whole_numbers(item)))
                .collect(),
        ),
        other => other,
    }
}

/// The path of the first string (or key) in `value` that contains NUL, which PostgreSQL's `text`
/// and `jsonb` cannot store: refused at the edge for every JSON body, so that no free-text field
/// of any command can answer 500 or reach the log (issue 11).
fn nul_path(value: &Value, at: &mut Vec<String>) -> Option<String> {
    let here = |at: &[String]| {
        if at.is_empty() {
            "body".to_string()
        } else {
            at.join(".")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(here(at)),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            at.push(i.to_string());
            let found = nul_path(item, at);
            at.pop();
            found
        }),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            at.push(key.clone());
            let found = if key.contains('\0') {
                Some(here(at))
            } else {
                nul_path(item, at)
            };
            at.pop();
            found
        }),
        _ => None,
    }
}

/// The path and length (in characters) of the first string longer than [`MAX_TEXT_CHARS`]
/// outside the `long` path prefixes.
fn long_text(value: &Value, at: &mut Vec<String>, long: &[&str]) -> Option<(String, usize)> {
    let path = |at: &[String]| {
        if at.is_empty() {
            "body".to_string()
        } else {
            at.join(".")
        }
    };
    let allowed = |at: &[String]| {
        let p = path(at);
        long.iter()
            .any(|prefix| p == *prefix || p.starts_with(&format!("{prefix}.")))
    };
    match value {
        // Bytes first: a string of at most MAX_TEXT_CHARS bytes has at most as many characters.
        Value::String(s)
            if s.len() > MAX_TEXT_CHARS && s.chars().count() > MAX_TEXT_CHARS && !allowed(at) =>
        {
            Some((path(at), s.chars().count()))
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            at.push(i.to_string());
            let found = long_text(item, at, long);
            at.pop();
            found
        }),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            at.push(key.clone());
            let found = long_text(item, at, long);
            at.pop();
            found
        }),
        _ => None,
    }
}

/// Deserializes `value` as `T`, refusing any field `T` would ignore; the error names the path
/// (`candidate.phone: unknown field`). serde_ignored cannot see inside internally tagged enums,
/// which is why telemetry events have strict body types of their own.
pub fn strict_from_value<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    let mut unknown = Vec::new();
    let parsed: T = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        value,
        // serde_ignored writes `?` for an `Option`'s `Some`; clients know no such segment.
        &mut |path: serde_ignored::Path| unknown.push(path.to_string().replace(".?", "")),
    ))
    .map_err(|e| e.to_string())?;
    match unknown.first() {
        None => Ok(parsed),
        Some(path) => Err(format!("{path}: unknown field")),
    }
}

/// Maps axum's JSON rejections to API errors.
pub fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.body_text())
        }
        JsonRejection::JsonDataError(e) => ApiError::invalid("invalid_body", e.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.body_text(),
            )
        }
        other => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", other.body_text()),
    }
}

/// `Query<T>` with rejections in the API's error format: 422 `invalid_query` (an unknown
/// parameter, a value of the wrong type, a missing required one, NUL in a value).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // NUL can only arrive percent-encoded; PostgreSQL cannot compare text holding it (a
        // report `?version=` with NUL answered 500), so it is refused here for every parameter.
        if parts
            .uri
            .query()
            .is_some_and(|q| q.to_ascii_lowercase().contains("%00"))
        {
            return Err(ApiError::invalid(
                "invalid_query",
                "query parameters must not contain NUL (U+0000)",
            ));
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| ApiError::invalid("invalid_query", rejection.body_text()))
    }
}

/// `Path<T>` with rejections in the API's error format: 400 `invalid_path` (e.g. an id that is
/// not a UUID).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_path",
                    rejection.body_text(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::strict_from_value;
    use clarity_domain::assessment::AssessmentSpec;
    use clarity_domain::session::Candidate;
    use serde::Deserialize;
    use serde_json::json;

    /// A request type that embeds tolerant domain types, like `NewInvite` and `NewAssessment`.
    #[derive(Debug, Deserialize)]
    struct Body {
        #[allow(dead_code)]
        candidate: Candidate,
        #[allow(dead_code)]
        spec: Option<AssessmentSpec>,
    }

    #[test]
    fn an_unknown_field_inside_an_embedded_domain_type_is_refused_with_its_path() {
        let candidate = json!({"name": "Bob", "email": "bob@example.com"});
        assert!(strict_from_value::<Body>(json!({ "candidate": candidate })).is_ok());

        let mut phone = candidate.clone();
        phone["phone"] = json!("555");
        let err = strict_from_value::<Body>(json!({ "candidate": phone })).unwrap_err();
        assert_eq!(err, "candidate.phone: unknown field");

        let mut spec = serde_json::to_value(&clarity_domain::catalogue::builtin()[0].spec).unwrap();
        spec["rubric"]["criteria"][0]["levels"][0]["examples"] = json!([]);
        let err =
            strict_from_value::<Body>(json!({ "candidate": candidate, "spec": spec })).unwrap_err();
        assert_eq!(
            err,
            "spec.rubric.criteria.0.levels.0.examples: unknown field"
        );
    }

    #[test]
    fn nul_anywhere_in_a_body_is_found_with_its_path() {
        let body = serde_json::json!({"candidate": {"name": "A\u{0}da", "email": "a@b.c"}});
        assert_eq!(
            super::nul_path(&body, &mut Vec::new()).as_deref(),
            Some("candidate.name")
        );
        let list = serde_json::json!({"files": [{"path": "ok"}, {"path": "b\u{0}"}]});
        assert_eq!(
            super::nul_path(&list, &mut Vec::new()).as_deref(),
            Some("files.1.path")
        );
        assert_eq!(
            super::nul_path(&serde_json::json!({"ok": ["fine\ttext"]}), &mut Vec::new()),
            None
        );
    }

    #[test]
    fn long_text_is_found_outside_the_paths_allowed_to_be_long() {
        let long = "x".repeat(super::MAX_TEXT_CHARS + 1);
        let body = serde_json::json!({"files": [{"path": "a", "content": long}], "note": "short"});
        assert_eq!(super::long_text(&body, &mut Vec::new(), &["files"]), None);
        assert_eq!(
            super::long_text(&body, &mut Vec::new(), &[]),
            Some(("files.0.content".to_string(), super::MAX_TEXT_CHARS + 1))
        );
        let name = serde_json::json!({"filesystem": long});
        assert!(
            super::long_text(&name, &mut Vec::new(), &["files"]).is_some(),
            "prefixes are whole segments"
        );
        // Characters, not bytes, as JSON Schema's `maxLength` counts them.
        let wide = serde_json::json!({"name": "é".repeat(super::MAX_TEXT_CHARS)});
        assert_eq!(super::long_text(&wide, &mut Vec::new(), &[]), None);
        let wider = serde_json::json!({"name": "é".repeat(super::MAX_TEXT_CHARS + 1)});
        assert_eq!(
            super::long_text(&wider, &mut Vec::new(), &[]),
            Some(("name".to_string(), super::MAX_TEXT_CHARS + 1))
        );
    }

    #[test]
    fn whole_numbers_are_integers_whatever_their_spelling() {
        let body = json!({"score": 41.0, "weight": 2.5, "list": [1.0, -3.0], "big": 1e300});
        assert_eq!(
            super::whole_numbers(body),
            json!({"score": 41, "weight": 2.5, "list": [1, -3], "big": 1e300})
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_path() {
        let err =
            strict_from_value::<Body>(json!({"candidate": {"name": 1, "email": "x"}})).unwrap_err();
        assert!(err.starts_with("candidate.name: invalid type"), "{err}");
    }
}
