//! Prometheus metrics of the relay and the projections (registered in the default registry,
//! exposed by the API's `/metrics`).

use std::sync::LazyLock;

use prometheus::{
    register_histogram_vec, register_int_counter_vec, register_int_gauge_vec, HistogramVec,
    IntCounterVec, IntGaugeVec,
};

/// Events published by the outbox relay, by topic.
pub static RELAY_PUBLISHED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "clarity_relay_published_total",
        "Events the outbox relay published",
        &["topic"]
    )
    .expect("metric registers")
});

/// Records applied by each projection (after de-duplication by offset).
pub static PROJECTION_RECORDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "clarity_projection_records_total",
        "Records a projection applied",
        &["projection"]
    )
    .expect("metric registers")
});

/// Consumer lag per consumer group (one per topic) and partition, from librdkafka statistics.
pub static CONSUMER_LAG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "clarity_consumer_lag",
        "Records behind the partition end",
        &["group", "topic", "partition"]
    )
    .expect("metric registers")
});

/// Time to apply and commit one projection batch.
pub static BATCH_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "clarity_projection_batch_seconds",
        "Projection batch apply+commit time",
        &["projection"]
    )
    .expect("metric registers")
});

const AGE_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
];

/// How old records are (since the producer created them) when a consumer receives them from the
/// broker, per topic: the broker's share of the end-to-end lag.
pub static RECORD_AGE_AT_FETCH: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "clarity_consumer_record_age_at_fetch_seconds",
        "Age of a record (now - its create time) when the consumer received it",
        &["topic"],
        AGE_BUCKETS.to_vec()
    )
    .expect("metric registers")
});

/// How old records are when every projection of their topic has committed them: the end-to-end
/// lag from produce to visible in the read models.
pub static RECORD_AGE_AT_COMMIT: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "clarity_projection_record_age_seconds",
        "Age of a record (now - its create time) when all projections of its topic committed it",
        &["topic"],
        AGE_BUCKETS.to_vec()
    )
    .expect("metric registers")
});

/// Records set aside by each projection (`projection_rejects`), by kind: `undecodable` (not a
/// Clarity record), `unappliable` (PostgreSQL refused its data) or `held` (waiting behind one of
/// those, to keep its stream in order). A candidate's acknowledged event is held back until an
/// operator looks at it; alert on `clarity_quarantine_unresolved`, which also clears.
pub static PROJECTION_QUARANTINED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "clarity_projection_quarantined_total",
        "Records a projection set aside instead of applying",
        &["projection", "kind"]
    )
    .expect("metric registers")
});

/// Stored events the relay could never publish (`relay_rejects`): too large for the broker, or
/// not encodable. Alert on any increase.
pub static RELAY_REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "clarity_relay_rejected_total",
        "Stored events the relay set aside instead of publishing",
        &["topic"]
    )
    .expect("metric registers")
});

/// Quarantined records not yet resolved, by stage (`projection`, `relay`), name (the projection,
/// or the relay's checkpoint name) and kind, read from `projection_rejects` and `relay_rejects`
/// when `/metrics` is scraped (so it is right whichever process quarantined or retried them).
/// Alert on `> 0`: it clears when `clarity quarantine retry` resolves them.
pub static QUARANTINE_UNRESOLVED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "clarity_quarantine_unresolved",
        "Quarantined records held back and not yet resolved",
        &["stage", "name", "kind"]
    )
    .expect("metric registers")
});
