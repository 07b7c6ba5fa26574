//! The candidate's test-taking page (`/take/{session_id}#token=cst_...`), shipped inside the
//! binary: built from `web/take/` by `node web/build-take.mjs` and committed, so building the
//! server needs no Node. The page is public static content; everything it shows comes from the
//! candidate API, authenticated by the token the page reads from the URL fragment (never sent
//! to the server as part of an address).

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::state::AppState;

const HTML: &str = include_str!("../../assets/take/take.html");
const JS: &[u8] = include_bytes!("../../assets/take/take.js");
const CSS: &[u8] = include_bytes!("../../assets/take/take.css");
/// Face continuity's on-device model (face-api with tfjs), imported by take.js only when face
/// checks start (docs/decisions/0023-face-continuity-on-the-device.md).
const FACE_JS: &[u8] = include_bytes!("../../assets/take/take-face.js");

/// The three models face checks use, copied from `@vladmandic/face-api` 1.7.15 by
/// `node web/build-take.mjs`: served from here, never fetched from another origin.
const MODELS: &[(&str, &[u8])] = &[
    (
        "tiny_face_detector_model-weights_manifest.json",
        include_bytes!("../../assets/take/models/tiny_face_detector_model-weights_manifest.json"),
    ),
    (
        "tiny_face_detector_model.bin",
        include_bytes!("../../assets/take/models/tiny_face_detector_model.bin"),
    ),
    (
        "face_landmark_68_model-weights_manifest.json",
        include_bytes!("../../assets/take/models/face_landmark_68_model-weights_manifest.json"),
    ),
    (
        "face_landmark_68_model.bin",
        include_bytes!("../../assets/take/models/face_landmark_68_model.bin"),
    ),
    (
        "face_recognition_model-weights_manifest.json",
        include_bytes!("../../assets/take/models/face_recognition_model-weights_manifest.json"),
    ),
    (
        "face_recognition_model.bin",
        include_bytes!("../../assets/take/models/face_recognition_model.bin"),
    ),
];

/// No third-party origin, no inline script or style, no framing. `blob:` media and images are
/// for the face-continuity camera preview (on the device only).
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/// The assets' URLs carry their content hash (`?v=`), so they may be cached for good; the ETag
/// (the same hash) answers a revalidation without the body.
static JS_ETAG: LazyLock<HeaderValue> = LazyLock::new(|| etag(JS));
static CSS_ETAG: LazyLock<HeaderValue> = LazyLock::new(|| etag(CSS));
static FACE_JS_ETAG: LazyLock<HeaderValue> = LazyLock::new(|| etag(FACE_JS));
static MODEL_ETAGS: LazyLock<Vec<HeaderValue>> =
    LazyLock::new(|| MODELS.iter().map(|(_, bytes)| etag(bytes)).collect());

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
        .route(
            "/take/assets/take-face.js",
            get(|headers: HeaderMap| async move {
                asset(
                    &headers,
                    FACE_JS,
                    "text/javascript; charset=utf-8",
                    &FACE_JS_ETAG,
                )
            }),
        )
        .route("/take/assets/models/{file}", get(model))
}

/// A model file, by its exact name (no other file is reachable). Cached for a year like the other
/// assets: an upgrade of face-api that changes a model must also move `MODELS_URL`
/// (web/take/src/face.ts) so that browsers fetch the new files.
async fn model(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = MODELS.iter().position(|(name, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content_type = if file.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    asset(&headers, MODELS[i].1, content_type, &MODEL_ETAGS[i])
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
