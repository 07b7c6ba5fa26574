//! The `clarity` binary: configuration → tracing → the chosen role.

fn main() -> anyhow::Result<()> {
    clarity_api::config::load_config_file()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,rdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(clarity_cli::run())
}
