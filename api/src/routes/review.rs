//! The reviewer replay page, shipped inside the binary (no CDN). The page is public static
//! content; everything it shows comes from the authenticated replay API.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const HTML: &str = include_str!("../../assets/replay.html");
const JS: &str = include_str!("../../assets/replay.js");
const CSS: &str = include_str!("../../assets/replay.css");
const REPORT_HTML: &str = include_str!("../../assets/report.html");
const REPORT_JS: &str = include_str!("../../assets/report.js");
const REPORT_CSS: &str = include_str!("../../assets/report.css");
const HELD_BACK_JS: &str = include_str!("../../assets/held_back.js");

/// Headers that keep the page self-contained: no third-party origins, no framing, no referrer.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/review/sessions/{session_id}", get(page))
        .route("/review/sessions/{session_id}/report", get(report_page))
        .route(
            "/review/assets/report.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    REPORT_JS,
                )
            }),
        )
        .route(
            "/review/assets/report.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    REPORT_CSS,
                )
            }),
        )
        .route(
            "/review/assets/replay.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    JS,
                )
            }),
        )
        .route(
            "/review/assets/held_back.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    HELD_BACK_JS,
                )
            }),
        )
        .route(
            "/review/assets/replay.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS) }),
        )
}

async fn page() -> impl IntoResponse {
    html(HTML)
}

async fn report_page() -> impl IntoResponse {
    html(REPORT_HTML)
}

fn html(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
}
