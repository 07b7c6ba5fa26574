//! The HTTP API: one router per resource, merged here.

pub mod access;
pub mod assessments;
pub mod candidate;
pub mod face_models;
pub mod integrity;
pub mod members;
pub mod ops;
pub mod replay;
pub mod reports;
pub mod review;
pub mod reviews;
pub mod runs;
pub mod sessions;
pub mod take;
pub mod telemetry;

use axum::Router;

use crate::state::AppState;

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(ops::router())
        .merge(members::router())
        .merge(assessments::router())
        .merge(sessions::router())
        .merge(replay::router())
        .merge(integrity::router())
        .merge(face_models::router())
        .merge(reviews::router())
        .merge(reports::router())
        .merge(review::router())
        .merge(take::router())
        .merge(access::router())
        .merge(candidate::router())
        .merge(runs::router())
        .merge(telemetry::router(&state))
        // After every route: a method a path does not have answers the API's error (axum keeps
        // the `Allow` header on a 405).
        .method_not_allowed_fallback(|| async {
            crate::error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not support the method; see the Allow header",
            )
        })
        .fallback(|| async { crate::error::ApiError::not_found("route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::limits::middleware,
        ))
        .layer(axum::middleware::map_response(safe_defaults))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            application_date,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// Headers every response carries unless a handler set its own: no MIME sniffing (a JSON body
/// is never run as a script or shown as HTML), and no caching anywhere on the way (responses
/// hold candidates' data and one-time secrets).
async fn safe_defaults(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::header::{HeaderValue, CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
    let headers = response.headers_mut();
    headers
        .entry(X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Every answer's `Date` is the application clock (`AppState::now`, the wall clock plus any
/// configured offset), the clock that dates deadlines and checks telemetry timestamps: a client
/// that corrects its own clock from this header (the candidate's page and the capture library
/// do) then agrees with the server on both.
async fn application_date(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut response: axum::response::Response,
) -> axum::response::Response {
    let date = state.now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(value) = axum::http::HeaderValue::from_str(&date) {
        response
            .headers_mut()
            .insert(axum::http::header::DATE, value);
    }
    response
}

/// The span of a request: its method and its *route* (`/v1/sessions/{session_id}/telemetry`),
/// never the concrete URI, whose query string may hold a single-use stream ticket.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    tracing::info_span!("request", method = %request.method(), route = %route)
}
