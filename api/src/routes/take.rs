//! The candidate's test-taking page (`/take/{session_id}#token=cst_...`), shipped inside the
//! binary: built from `web/take/` by `node web/build-take.mjs` and committed, so building the
//! server needs no Node. The page is public static content; everything it shows comes from the
//! candidate API, authenticated by the token the page reads from the URL fragment (never sent
//! to the server as part of an address).

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::state::AppState;

const HTML: &str = include_str!("../../assets/take/take.html");
const JS: &[u8] = include_bytes!("../../assets/take/take.js");
const CSS: &[u8] = include_bytes!("../../assets/take/take.css");

/// No third-party origin, no inline script or style, no framing. `blob:` media and images are
/// for the face-continuity camera preview (on the device only).
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/// The assets' URLs carry their content hash (`?v=`), so they may be cached for good; the ETag
/// (the same hash) answers a revalidation without the body.
static JS_ETAG: LazyLock<HeaderValue> = LazyLock::new(|| etag(JS));
static CSS_ETAG: LazyLock<HeaderValue> = LazyLock::new(|| etag(CSS));

fn etag(bytes: &[u8]) -> HeaderValue {
    let digest = hex::encode(Sha256::digest(bytes));
    HeaderValue::from_str(&format!("\"{}\"", &digest[..16]))
        .expect("a hex ETag is a valid header value")
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/take/{session_id}", get(page))
        .route(
            "/take/assets/take.js",
            get(|headers: HeaderMap| async move {
                asset(&headers, JS, "text/javascript; charset=utf-8", &JS_ETAG)
            }),
        )
        .route(
            "/take/assets/take.css",
            get(|headers: HeaderMap| async move {
                asset(&headers, CSS, "text/css; charset=utf-8", &CSS_ETAG)
            }),
        )
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        HTML,
    )
}

fn asset(
    headers: &HeaderMap,
    body: &'static [u8],
    content_type: &'static str,
    etag: &HeaderValue,
) -> Response {
    let cache = (
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if headers.get(header::IF_NONE_MATCH) == Some(etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [cache, (header::ETAG, etag.clone())],
        )
            .into_response();
    }
    (
        [
            cache,
            (header::ETAG, etag.clone()),
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        ],
        body,
    )
        .into_response()
}
