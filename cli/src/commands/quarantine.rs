//! `clarity quarantine list|show|retry`: the operator's runbook for held-back records
//! (docs/operations.md): list → show → fix the cause → retry.

use clap::Subcommand;
use clarity_consumers::quarantine::{self, Entry, Outcome, RetryOptions, Scope, Selector, Stage};
use clarity_projections::Projection;

use clarity_api::config::Config;

/// `clarity quarantine …`
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined records, newest first: id, where it was stopped (projection or relay),
    /// coordinates, kind, SQLSTATE, session, error. Unresolved ones unless `--all`.
    List {
        /// Only this session's records.
        #[arg(long)]
        session: Option<uuid::Uuid>,
        /// Also the resolved ones (kept as evidence), with who resolved them and how.
        #[arg(long)]
        all: bool,
    },
    /// Show quarantined records in full: coordinates, projection or relay, kind, SQLSTATE, the
    /// error (first and latest), session, times, retries, and the payload (pretty JSON when it
    /// is JSON, escaped otherwise).
    Show {
        /// An id from `list`, or `topic/partition@offset`.
        #[arg(required = true)]
        records: Vec<Selector>,
        /// The whole payload (otherwise the first 16 KiB).
        #[arg(long)]
        full: bool,
    },
    /// Re-apply quarantined records once their cause is fixed (a migration, a code fix, a broker
    /// setting): each through its projection's own apply, in its stream's order, with the
    /// records held behind it; relay events are published again. An applied record's row is
    /// marked resolved (kept); a refused one stays quarantined with the new error. Exits
    /// non-zero when a record is still refused or could not be tried.
    Retry {
        /// Ids from `list`, or `topic/partition@offset`.
        records: Vec<Selector>,
        /// Every quarantined record of this session (projections and relay).
        #[arg(long, conflicts_with_all = ["records", "projection", "relay"])]
        session: Option<uuid::Uuid>,
        /// Every record this projection set aside.
        #[arg(long, conflicts_with_all = ["records", "relay"])]
        projection: Option<String>,
        /// Every event the relay set aside.
        #[arg(long, conflicts_with = "records")]
        relay: bool,
        /// Apply in a transaction and roll it back (relay events: check, do not publish).
        #[arg(long)]
        dry_run: bool,
        /// Who retries (recorded on resolved rows); `$USER` by default.
        #[arg(long)]
        by: Option<String>,
    },
}

/// Runs a `clarity quarantine` command.
pub async fn run(config: &Config, command: QuarantineCommand) -> anyhow::Result<()> {
    let pool = crate::connect(config).await?;
    match command {
        QuarantineCommand::List { session, all } => {
            let entries = quarantine::list(&pool, session, all).await?;
            if entries.is_empty() {
                println!("no quarantined records");
            }
            for entry in &entries {
                println!("{}", list_line(entry));
            }
            Ok(())
        }
        QuarantineCommand::Show { records, full } => {
            let mut found = 0;
            for selector in &records {
                for detail in quarantine::show(&pool, selector).await? {
                    found += 1;
                    print_detail(&detail, full);
                }
            }
            anyhow::ensure!(found > 0, "no quarantined record matches");
            Ok(())
        }
        QuarantineCommand::Retry {
            records,
            session,
            projection,
            relay,
            dry_run,
            by,
        } => {
            let scope = match (session, projection, relay) {
                (Some(session), _, _) => Scope::Session(session),
                (None, Some(name), _) => Scope::Projection(Projection::from_name(&name).ok_or_else(|| {
                    anyhow::anyhow!("unknown projection `{name}` (known: catalogue, sessions, replay)")
                })?),
                (None, None, true) => Scope::Relay,
                (None, None, false) if !records.is_empty() => Scope::Records(records),
                _ => anyhow::bail!(
                    "name records (ids or topic/partition@offset), or --session, --projection or --relay"
                ),
            };
            let options = RetryOptions {
                dry_run,
                by: by
                    .or_else(|| std::env::var("USER").ok())
                    .unwrap_or_else(|| "an operator".into()),
                projection: config.projections(),
            };
            let lines = quarantine::retry(&pool, &config.kafka(), &scope, &options).await?;
            if lines.is_empty() {
                println!("nothing to retry");
            }
            let mut failed = 0;
            for line in &lines {
                if !line.outcome.succeeded() {
                    failed += 1;
                }
                println!(
                    "{:>6}  {:<20} {}  {}",
                    line.id,
                    line.stage.to_string(),
                    line.coordinates,
                    describe(&line.outcome)
                );
            }
            if dry_run {
                println!("(dry run: nothing was changed)");
            }
            anyhow::ensure!(
                failed == 0,
                "{failed} record(s) still quarantined (see above)"
            );
            Ok(())
        }
    }
}

fn list_line(entry: &Entry) -> String {
    let status = match &entry.resolved {
        None => String::new(),
        Some(r) => format!("  [resolved {} by {}: {}]", r.at, r.by, r.how),
    };
    format!(
        "{:>6}  {}  {:<20} {}  {}  sqlstate={}  session={}  retries={}{status}\n        {}",
        entry.id,
        entry.rejected_at,
        entry.stage.to_string(),
        entry.coordinates,
        entry.kind,
        entry.sqlstate.as_deref().unwrap_or("-"),
        entry.stream.as_deref().unwrap_or("-"),
        entry.retries,
        entry.reason,
    )
}

const SHOWN_BYTES: usize = 16 * 1024;

fn print_detail(detail: &quarantine::Detail, full: bool) {
    let e = &detail.entry;
    println!("id           {}", e.id);
    match &e.stage {
        Stage::Projection(name) => println!("projection   {name}"),
        Stage::Relay(name) => println!("relay        {name} (never reached the topic)"),
    }
    println!("coordinates  {}", e.coordinates);
    println!("kind         {}", e.kind);
    println!("sqlstate     {}", e.sqlstate.as_deref().unwrap_or("-"));
    println!("session      {}", e.stream.as_deref().unwrap_or("-"));
    println!("set aside    {}", e.rejected_at);
    println!("last refused {}", detail.refused_at);
    println!("retries      {}", e.retries);
    println!("error        {}", e.reason);
    if detail.first_reason != e.reason {
        println!("first error  {}", detail.first_reason);
    }
    match &e.resolved {
        Some(r) => println!("resolved     {} by {} ({})", r.at, r.by, r.how),
        None => println!("resolved     no (held back)"),
    }
    if let Some(time) = detail.record_time {
        println!("record time  {time}");
    }
    if let Some(key) = &detail.key {
        println!("key          {}", quarantine::render_payload(key));
    }
    if let Some(headers) = &detail.headers {
        println!("headers      {headers}");
    }
    for note in &detail.notes {
        println!("note         {note}");
    }
    match &detail.payload {
        Some(payload) => {
            let shown = if full || payload.len() <= SHOWN_BYTES {
                &payload[..]
            } else {
                &payload[..SHOWN_BYTES]
            };
            println!("payload      ({} bytes)", payload.len());
            if shown.len() < payload.len() {
                // A cut JSON document is no longer JSON: it is shown escaped.
                println!("{}", quarantine::render_payload(shown));
                println!(
                    "… {} more bytes (--full shows everything)",
                    payload.len() - shown.len()
                );
            } else {
                println!("{}", quarantine::render_payload(shown));
            }
        }
        None => println!("payload      (not stored)"),
    }
    println!();
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Applied { caught_up: 0 } => "applied; resolved".into(),
        Outcome::Applied { caught_up } => {
            format!("applied; resolved ({caught_up} later records of its session chained after it)")
        }
        Outcome::Published => "published; resolved".into(),
        Outcome::WouldApply => "would apply".into(),
        Outcome::WouldPublish => "would be published".into(),
        Outcome::StillRefused { reason, sqlstate } => format!(
            "still refused (sqlstate {}): {reason}",
            sqlstate.as_deref().unwrap_or("-")
        ),
        Outcome::Waiting { behind } => {
            format!("not tried: held behind {behind}, still quarantined")
        }
        Outcome::Skipped { why } => format!("not tried: {why}"),
        Outcome::AlreadyResolved => "already resolved".into(),
    }
}
