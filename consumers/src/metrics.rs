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
