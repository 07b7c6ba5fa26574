//! Operations: liveness, readiness, Prometheus metrics, the OpenAPI document and event schemas.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use rdkafka::producer::Producer;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::error::{ApiError, Result};
use crate::extract::ApiPath;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/schemas/events", get(event_schema_index))
        .route("/v1/schemas/events/{event_type}", get(event_schema))
        .route("/v1/audit/public-key", get(audit_public_key))
}

/// The key that signs audit checkpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPublicKey {
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The 32-byte public key, lowercase hex (`clarity verify --public-key`).
    pub public_key: String,
    /// First 16 hex characters of SHA-256(public key), as in every checkpoint.
    pub key_id: String,
}

/// The public key that signs audit checkpoints, so an auditor can check bundles against a key
/// obtained independently of the bundle (public; 404 `audit_key_not_configured` without a key).
#[utoipa::path(get, path = "/v1/audit/public-key", tag = "ops",
    responses((status = 200, body = AuditPublicKey), (status = 404, body = crate::error::ErrorBody)))]
pub async fn audit_public_key(State(state): State<AppState>) -> Result<Json<AuditPublicKey>> {
    use clarity_domain::audit;
    let key = state.config.audit_signing_key().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "audit_key_not_configured",
            "no audit signing key is configured (CLARITY_AUDIT_SIGNING_KEY)",
        )
    })?;
    Ok(Json(AuditPublicKey {
        algorithm: "Ed25519",
        public_key: audit::public_key_hex(&key),
        key_id: audit::key_id(&key.verifying_key()),
    }))
}

/// Health status.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database and the broker answer.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = Health), (status = 503, body = crate::error::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>> {
    // Unauthenticated: answered from a probe at most `READINESS_TTL` old, so that calling it in a
    // loop costs the database and the broker nothing.
    let cached = state
        .readiness
        .lock()
        .expect("readiness lock")
        .clone()
        .filter(|(at, _)| at.elapsed() < READINESS_TTL);
    let outcome = match cached {
        Some((_, outcome)) => outcome,
        None => {
            let outcome = probe(&state).await;
            *state.readiness.lock().expect("readiness lock") =
                Some((std::time::Instant::now(), outcome.clone()));
            outcome
        }
    };
    match outcome {
        Ok(()) => Ok(Json(Health { status: "ready" })),
        Err((code, message)) => Err(ApiError::unavailable(code, message)),
    }
}

/// How long a readiness probe's answer is reused.
const READINESS_TTL: Duration = Duration::from_secs(2);

/// Whether the database and the broker answer.
async fn probe(state: &AppState) -> std::result::Result<(), (&'static str, String)> {
    sqlx::query("SELECT 1")
        .execute(&state.pool)
        .await
        .map_err(|e| ("database_unavailable", e.to_string()))?;
    let producer = state.producer.clone();
    let topic = state.config.topic_sessions.clone();
    tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(Some(&topic), Duration::from_secs(2))
    })
    .await
    .map_err(|e| ("broker_unavailable", e.to_string()))?
    .map_err(|e| ("broker_unavailable", e.to_string()))?;
    Ok(())
}

/// Whether a scraper at `peer` may ask for the metrics at all: from anywhere when a token is
/// configured (it must then send it), only from this host otherwise.
fn metrics_access(token_configured: bool, peer: std::net::IpAddr) -> bool {
    token_configured || peer.is_loopback()
}

/// Prometheus metrics. With `CLARITY_METRICS_TOKEN` set, scrapers must send it as a bearer
/// token (the metrics are aggregates, but they still describe the business); without it, only
/// a scraper on this host (loopback) gets them: private by default.
async fn metrics(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    client: Option<axum::Extension<crate::client_address::ClientAddress>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    // Behind a trusted proxy on this host the peer is loopback for everyone: use the client.
    let client = client.map_or(peer.ip(), |c| c.0 .0);
    if !metrics_access(state.config.metrics_token.is_some(), client) {
        return ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "metrics_token_required",
            "metrics are served to other hosts only with CLARITY_METRICS_TOKEN set (send it as a bearer token)",
        )
        .into_response();
    }
    if let Some(expected) = &state.config.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        let matches = given.is_some_and(|g| {
            g.len() == expected.len()
                && g.bytes()
                    .zip(expected.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !matches {
            return ApiError::unauthenticated("the metrics endpoint needs the metrics token")
                .into_response();
        }
    }
    // The gauge is process-wide and refreshed from this API's database: one scrape at a time
    // refreshes and reads it, so a scrape never reports another API's quarantine (several APIs
    // over different databases share a process in the end-to-end tests).
    static SCRAPE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let scraping = SCRAPE.lock().await;
    // Read from the tables, so the alert fires and clears whichever process quarantined or
    // retried the records; a failed read leaves the last values (and is logged).
    if let Err(error) = clarity_consumers::quarantine::refresh_gauge(&state.pool).await {
        tracing::warn!(%error, "could not read the quarantine for clarity_quarantine_unresolved");
    }
    let mut body = String::new();
    let encoder = prometheus::TextEncoder::new();
    let encoded = encoder.encode_utf8(&prometheus::gather(), &mut body);
    drop(scraping);
    if let Err(e) = encoded {
        return ApiError::internal(e).into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::ApiDoc::openapi())
}

/// The event types on the topics, each with the path of its JSON Schema.
#[utoipa::path(get, path = "/v1/schemas/events", tag = "ops", responses((status = 200, body = Vec<String>)))]
pub async fn event_schema_index() -> Json<Vec<String>> {
    Json(
        crate::schemas::event_schemas()
            .into_keys()
            .map(|t| format!("/v1/schemas/events/{t}"))
            .collect(),
    )
}

/// The JSON Schema (2020-12) of one event type, e.g. `clarity.Telemetry.edit.v1`.
#[utoipa::path(get, path = "/v1/schemas/events/{event_type}", tag = "ops", params(("event_type" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
pub async fn event_schema(ApiPath(event_type): ApiPath<String>) -> Result<Json<serde_json::Value>> {
    crate::schemas::event_schemas()
        .remove(&event_type)
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "unknown event type"))
}

#[cfg(test)]
mod tests {
    use super::metrics_access;

    #[test]
    fn without_a_token_only_this_host_may_scrape_the_metrics() {
        let here: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let here6: std::net::IpAddr = "::1".parse().unwrap();
        let elsewhere: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        assert!(metrics_access(false, here));
        assert!(metrics_access(false, here6));
        assert!(!metrics_access(false, elsewhere));
        assert!(
            metrics_access(true, elsewhere),
            "with a token, the token decides"
        );
    }
}
