//! Clarity's HTTP API: routes, authentication, extractors, limits, the one error mapping, the
//! OpenAPI document and the web pages' assets. Commands go through `clarity_app`; the process
//! roles, the command line and the background workers live in `clarity-cli` and
//! `clarity-consumers`.

pub mod access_log;
pub mod audit;
pub mod auth;
pub mod client_address;
pub mod config;
pub mod error;
pub mod extract;
pub mod limits;
pub mod openapi;
pub mod routes;
pub mod schemas;
pub mod state;
pub mod zip;

// The read side's queries, at the paths callers have always used (they live with their
// projections).
pub use clarity_projections::{held_back, leaderboard};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::state::AppState;

/// Serves the HTTP API on an already-bound listener until `shutdown` (the `clarity serve` role
/// adds the background workers around it).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    info!(address = %listener.local_addr()?, "API listening");
    let app = routes::router(state);
    // The peer address tells `/metrics` whether a scraper without a token is on this host.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await?;
    Ok(())
}
