//! The responses any operation can give whatever its handler does, added to every operation of
//! the document by one [`Modify`], so that an operation added later documents them too without
//! anyone remembering to: the rate limiter's 429 and the time limit's 503 on every route, 401
//! wherever credentials are required, 400/413/415/422 wherever the framework parses a path, a
//! query string or a JSON body before the handler runs.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::{Header, Object, OpenApi, Ref, RefOr, Response, Type};
use utoipa::Modify;

/// Adds [`COMMON`] to every operation.
pub struct CommonResponses;

/// Which operations a common response applies to.
#[derive(Clone, Copy)]
enum Applies {
    Always,
    /// Operations with a `security` requirement.
    Secured,
    /// Operations with a path parameter.
    PathParameters,
    /// Operations with a query parameter.
    QueryParameters,
    /// Operations with a request body.
    Body,
    /// Operations whose request body `ApiJson` reads (all but those in [`OWN_PARSER`]).
    ApiJsonBody,
}

/// Request bodies read by a parser of their own rather than `ApiJson` (telemetry batches): their
/// operations document their own 413 and 422 codes.
const OWN_PARSER: &[&str] = &["TelemetryBatch"];

/// Status, where it applies, and what it means (with the `error.code` values it carries).
const COMMON: &[(&str, Applies, &str)] = &[
    ("400", Applies::PathParameters, "`invalid_path`: a path parameter is malformed (e.g. an id that is not a UUID)."),
    ("400", Applies::Body, "`malformed_json`: the body is not JSON."),
    ("401", Applies::Secured, "`unauthenticated`: the `Authorization: Bearer …` credential is missing, malformed, unknown or revoked."),
    ("404", Applies::PathParameters, "`not_found`: no such resource in the caller's organization (another organization's resources answer 404 too)."),
    ("413", Applies::ApiJsonBody, "`payload_too_large`: the body is larger than the server accepts."),
    ("415", Applies::Body, "`unsupported_media_type`: the body is not sent as `Content-Type: application/json`."),
    ("422", Applies::QueryParameters, "`invalid_query`: an unknown query parameter, or a value of the wrong type."),
    ("422", Applies::Body, "`invalid_body`: the body does not match its schema (a missing or unknown field, a wrong type or value)."),
    ("422", Applies::ApiJsonBody, "`invalid_text`: a string holds NUL (U+0000); `text_too_long`: a string is longer than its `maxLength`."),
    ("429", Applies::Always, "`rate_limited`: too many requests; retry after `Retry-After` seconds. `RateLimit-Policy` and `RateLimit` describe the quota."),
    ("503", Applies::Always, "`timeout`: the request ran past the server's time limit; or a dependency (the database, the broker) is unavailable. Retry later."),
];

impl Applies {
    fn to(self, operation: &Operation) -> bool {
        let has_parameter = |location: ParameterIn| {
            operation
                .parameters
                .iter()
                .flatten()
                .any(|p| p.parameter_in == location)
        };
        match self {
            Applies::Always => true,
            Applies::Secured => operation
                .security
                .as_ref()
                .is_some_and(|requirements| !requirements.is_empty()),
            Applies::PathParameters => has_parameter(ParameterIn::Path),
            Applies::QueryParameters => has_parameter(ParameterIn::Query),
            Applies::Body => operation.request_body.is_some(),
            Applies::ApiJsonBody => {
                let own_parser = operation
                    .request_body
                    .as_ref()
                    .and_then(|body| body.content.get("application/json"))
                    .and_then(|content| content.schema.as_ref())
                    .is_some_and(|schema| match schema {
                        RefOr::Ref(r) => OWN_PARSER
                            .iter()
                            .any(|name| r.ref_location.ends_with(&format!("/{name}"))),
                        RefOr::T(_) => false,
                    });
                operation.request_body.is_some() && !own_parser
            }
        }
    }
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                add_common(operation);
            }
        }
    }
}

/// The operations of a path.
pub fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Adds the common responses that apply to `operation`. A status the operation documents itself
/// keeps its body; its description (what the route adds) is followed by the common one.
fn add_common(operation: &mut Operation) {
    let mut texts: Vec<(&str, Vec<&str>)> = Vec::new();
    for &(status, applies, text) in COMMON {
        if !applies.to(operation) {
            continue;
        }
        match texts.iter_mut().find(|(s, _)| *s == status) {
            Some((_, all)) => all.push(text),
            None => texts.push((status, vec![text])),
        }
    }
    for (status, all) in texts {
        let description = all.join(" ");
        let responses = &mut operation.responses.responses;
        match responses.get_mut(status) {
            Some(RefOr::T(own)) if own.description.trim().is_empty() => {
                own.description = description;
            }
            Some(RefOr::T(own)) => {
                own.description = format!("{} {description}", own.description.trim_end());
            }
            Some(_) => {}
            None => {
                responses.insert(status.to_string(), RefOr::T(error(status, description)));
            }
        }
    }
}

/// An error response with the API's error body (and the rate limiter's headers on 429).
fn error(status: &str, description: String) -> Response {
    let mut response = Response::new(description);
    response.content.insert(
        "application/json".to_string(),
        utoipa::openapi::Content::new(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody")))),
    );
    if status == "429" {
        let header = |kind: Type, text: &str| {
            let mut header = Header::new(Object::with_type(kind));
            header.description = Some(text.to_string());
            header
        };
        response.headers.insert(
            "Retry-After".to_string(),
            header(Type::Integer, "Seconds to wait before retrying."),
        );
        response.headers.insert(
            "RateLimit-Policy".to_string(),
            header(
                Type::String,
                "The quota that applies (IETF RateLimit header fields).",
            ),
        );
        response.headers.insert(
            "RateLimit".to_string(),
            header(
                Type::String,
                "What is left of the quota and when it resets (IETF RateLimit header fields).",
            ),
        );
    }
    response
}
