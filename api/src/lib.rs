//! Clarity's HTTP API and the `clarity` command line: configuration, authentication, the
//! routes, the deadline scheduler, catalogue seeding, and the process roles (`serve`, `relay`,
//! `consume`, `all`).

pub mod access_log;
pub mod audit;
pub mod auth;
pub mod bench;

pub mod cli;
pub mod client_address;
pub mod config;
pub mod error;
pub mod extract;
pub mod held_back;
pub mod integrity_worker;
pub mod leaderboard;
pub mod limits;
pub mod openapi;
pub mod routes;
pub mod scheduler;
pub mod schemas;
pub mod seed;
pub mod simulate;
pub mod state;

use std::time::Duration;

use clarity_consumers::outbox_relay::{self, RelayConfig};
use clarity_consumers::projection_runner;
use clarity_projections::Projection;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;
use uuid::Uuid;

use crate::auth::Role;
use crate::config::Config;
use crate::state::AppState;

/// The embedded migrations (one timeline for the whole database).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens the connection pool.
pub async fn connect(config: &Config) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(config.db_pool_size)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&config.database_url)
        .await?)
}

/// Creates the database if it does not exist and applies pending migrations.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    if !Postgres::database_exists(&config.database_url).await? {
        Postgres::create_database(&config.database_url).await?;
        info!("created database");
    }
    let pool = connect(config).await?;
    MIGRATOR.run(&pool).await?;
    pool.close().await;
    Ok(())
}

/// Serves the HTTP API (and runs the deadline scheduler and the integrity analysis workers)
/// until `shutdown`.
pub async fn serve(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&state.config.listen).await?;
    serve_on(listener, state, shutdown).await
}

/// Serves on an already-bound listener (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    info!(address = %listener.local_addr()?, "API listening");
    let scheduler = tokio::spawn(scheduler::run(state.clone(), shutdown.clone()));
    let workers: Vec<_> = (0..state.config.integrity_workers)
        .map(|_| tokio::spawn(integrity_worker::run(state.clone(), shutdown.clone())))
        .collect();
    let app = routes::router(state);
    // The peer address tells `/metrics` whether a scraper without a token is on this host.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
    .await?;
    shutdown.cancel();
    scheduler.await?;
    for worker in workers {
        worker.await?;
    }
    Ok(())
}

/// Runs the outbox relay until `shutdown`.
pub async fn relay(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    outbox_relay::run(
        &config.database_url,
        &config.kafka(),
        RelayConfig::default(),
        shutdown,
    )
    .await
}

/// Runs the given projections until `shutdown`: one consumer per topic, feeding that topic's
/// projections.
pub async fn consume(
    config: &Config,
    pool: PgPool,
    projections: &[Projection],
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut by_feed: Vec<(clarity_projections::Feed, Vec<Projection>)> = Vec::new();
    for &projection in projections {
        match by_feed
            .iter_mut()
            .find(|(feed, _)| *feed == projection.feed())
        {
            Some((_, list)) => list.push(projection),
            None => by_feed.push((projection.feed(), vec![projection])),
        }
    }
    let mut tasks = JoinSet::new();
    for (_, group) in by_feed {
        let (pool, kafka, shutdown) = (pool.clone(), config.kafka(), shutdown.clone());
        let consumer = config.consumer();
        tasks.spawn(async move {
            projection_runner::run(pool, &kafka, group, consumer, shutdown).await
        });
    }
    join_all(tasks, &shutdown).await
}

/// Every role in one process: migrations, topics, API + scheduler, relay, all projections.
pub async fn run_all(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    migrate(&config).await?;
    config.kafka().ensure_topics().await?;
    let pool = connect(&config).await?;
    let state = AppState::new(pool.clone(), config.clone())?;
    let mut tasks = JoinSet::new();
    let s = shutdown.clone();
    tasks.spawn(async move { serve(state, s).await });
    let (c, s) = (config.clone(), shutdown.clone());
    tasks.spawn(async move { relay(&c, s).await });
    let (c, s) = (config.clone(), shutdown.clone());
    tasks.spawn(async move { consume(&c, pool, &Projection::ALL, s).await });
    join_all(tasks, &shutdown).await
}

/// Waits for every task; the first failure cancels the others and is returned.
async fn join_all(
    mut tasks: JoinSet<anyhow::Result<()>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut first_error = None;
    while let Some(result) = tasks.join_next().await {
        let result = result.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(error) = result {
            shutdown.cancel();
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A bootstrapped organization and its first admin's API key.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub org_id: Uuid,
    pub admin_member_id: Uuid,
    pub admin_api_key: String,
}

/// Creates an organization with one admin member and returns the admin's API key.
pub async fn create_organization(
    pool: &PgPool,
    name: &str,
    admin_name: &str,
    admin_email: &str,
) -> anyhow::Result<NewOrganization> {
    let org_id = Uuid::now_v7();
    sqlx::query("INSERT INTO organizations (id, name) VALUES ($1, $2)")
        .bind(org_id)
        .bind(name)
        .execute(pool)
        .await?;
    let admin = routes::members::insert_member(pool, org_id, admin_name, admin_email, Role::Admin)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
    Ok(NewOrganization {
        org_id,
        admin_member_id: admin.member_id,
        admin_api_key: admin.api_key,
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
