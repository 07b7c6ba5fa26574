//! The process roles: each runs until its shutdown token is cancelled, and `all` runs them
//! together. Production runs each role as its own process, scaled on its own.

use std::time::Duration;

use clarity_api::config::Config;
use clarity_api::state::AppState;
use clarity_consumers::outbox_relay::{self, RelayConfig};
use clarity_consumers::scheduler::SchedulerConfig;
use clarity_consumers::{integrity_worker, projection_runner, scheduler};
use clarity_projections::Projection;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

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

/// [`serve`] on an already-bound listener (tests bind port 0): the API, the deadline scheduler
/// and `config.integrity_workers` integrity workers, stopped together.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = &state.config;
    let scheduler = tokio::spawn(scheduler::run(
        state.app.clone(),
        SchedulerConfig {
            interval: config.scheduler_interval(),
            grace: config.expiry_grace(),
        },
        shutdown.clone(),
    ));
    let workers: Vec<_> = (0..config.integrity_workers)
        .map(|_| {
            tokio::spawn(integrity_worker::run(
                state.app.clone(),
                config.integrity_settings(),
                shutdown.clone(),
            ))
        })
        .collect();
    let served = clarity_api::serve_on(listener, state, shutdown.clone()).await;
    shutdown.cancel();
    scheduler.await?;
    for worker in workers {
        worker.await?;
    }
    served
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
