//! Face-check series: honest candidates (including poor lighting and stepping away) and
//! impersonation swaps at a known time.
//!
//! The score model is the one the `clarity-face v1` threshold was calibrated for: genuine pairs
//! on good images score ~N(0.85, 0.05), on poor images (quality < 0.5) ~N(0.6, 0.15); an impostor
//! scores ~N(0.35, 0.12); a look-alike impostor (the hard case) ~N(0.62, 0.08).

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::Rng;

use super::normal;
use clarity_domain::telemetry::{TelemetryData, TelemetryEvent};

/// The model every generated check claims.
pub const MODEL_ID: &str = "clarity-face";
pub const MODEL_VERSION: &str = "1";

/// What the camera sees over the session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaceScenario {
    /// The candidate, in good conditions.
    Honest,
    /// The candidate, with bad lighting or a turned head much of the time.
    PoorConditions,
    /// The candidate, stepping away a few times (short stretches without a face).
    StepsAway,
    /// Someone else takes over at `swap_at` (a fraction of the session).
    Impersonation { swap_at: f64 },
    /// A look-alike takes over at `swap_at` (scores near the threshold).
    LookalikeImpersonation { swap_at: f64 },
}

/// Face checks every ~30 s between `start` and `end`; returns the time of each and its payload.
/// For a swap, also returns the time it happened.
pub fn face_checks(
    rng: &mut StdRng,
    scenario: FaceScenario,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> (Vec<(DateTime<Utc>, TelemetryData)>, Option<DateTime<Utc>>) {
    let total_ms = (end - start).num_milliseconds().max(1);
    let swap = match scenario {
        FaceScenario::Impersonation { swap_at }
        | FaceScenario::LookalikeImpersonation { swap_at } => {
            Some(start + Duration::milliseconds((total_ms as f64 * swap_at) as i64))
        }
        _ => None,
    };
    let mut out = Vec::new();
    let mut t = start + Duration::milliseconds(rng.random_range(5_000..30_000));
    let mut away_until: Option<DateTime<Utc>> = None;
    while t < end {
        let poor = match scenario {
            FaceScenario::PoorConditions => rng.random_bool(0.45),
            _ => rng.random_bool(0.08),
        };
        let quality = if poor {
            rng.random_range(0.15..0.5)
        } else {
            rng.random_range(0.55..0.97)
        };
        if scenario == FaceScenario::StepsAway && away_until.is_none() && rng.random_bool(0.03) {
            away_until = Some(t + Duration::milliseconds(rng.random_range(20_000..100_000)));
        }
        let away = away_until.is_some_and(|u| t < u);
        if !away {
            away_until = None;
        }
        let swapped = swap.is_some_and(|s| t >= s);
        let (mean, sd) = match (scenario, swapped, poor) {
            (FaceScenario::Impersonation { .. }, true, false) => (0.35, 0.12),
            (FaceScenario::Impersonation { .. }, true, true) => (0.3, 0.15),
            (FaceScenario::LookalikeImpersonation { .. }, true, false) => (0.62, 0.08),
            (FaceScenario::LookalikeImpersonation { .. }, true, true) => (0.5, 0.15),
            (_, _, false) => (0.85, 0.05),
            (_, _, true) => (0.6, 0.15),
        };
        let face_count = if away {
            0
        } else if rng.random_bool(0.004) {
            2
        } else if rng.random_bool(0.01) {
            0
        } else {
            1
        };
        let similarity = if face_count == 0 {
            0.0
        } else {
            (mean + sd * normal(rng)).clamp(0.0, 1.0)
        };
        out.push((
            t,
            TelemetryData::FaceCheck {
                similarity,
                model_id: MODEL_ID.into(),
                model_version: MODEL_VERSION.into(),
                face_count,
                quality,
            },
        ));
        t += Duration::milliseconds(rng.random_range(25_000..35_000));
    }
    (out, swap)
}

/// Merges extra timed events into a session's telemetry by time and renumbers `seq` from 1.
pub fn merge(
    events: Vec<TelemetryEvent>,
    extra: Vec<(DateTime<Utc>, TelemetryData)>,
) -> Vec<TelemetryEvent> {
    let mut all: Vec<(DateTime<Utc>, u8, u64, TelemetryData)> = events
        .into_iter()
        .map(|e| (e.ts, 0u8, e.seq, e.data))
        .chain(
            extra
                .into_iter()
                .enumerate()
                .map(|(i, (ts, d))| (ts, 1u8, i as u64, d)),
        )
        .collect();
    // Stable: the session's own order is kept; an extra event goes after events at the same time.
    all.sort_by_key(|a| (a.0, a.1, a.2));
    all.into_iter()
        .enumerate()
        .map(|(i, (ts, _, _, data))| TelemetryEvent {
            seq: i as u64 + 1,
            ts,
            data,
        })
        .collect()
}
