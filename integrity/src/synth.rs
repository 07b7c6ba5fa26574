//! Labelled synthetic sessions for measuring the detectors (`clarity integrity eval`).
//!
//! Honest work and adversaries of increasing difficulty are generated from seeded RNGs, so every
//! number in `docs/integrity-eval.md` is reproducible. The generators model the *process* (timing,
//! edit order, pastes, focus changes, face checks); the code written comes from [`code`].
//!
//! - [`timing`]: key-press timing — honest typists (heavy-tailed, bursty) and timing adversaries
//!   (constant interval, uniform jitter, independent human-like sampling, per-key-pair sampling,
//!   replay of another session's timing).
//! - [`sessions`]: whole editing sessions built from a target text and a typist: honest
//!   authoring (non-linear, corrections, pauses before statements, honest small pastes), a solution
//!   pasted whole, a solution re-typed from a source (transcription).
//! - [`code`]: solutions per task, and copies disguised with renames, reordering and dead code.
//! - [`face`]: face-check series, honest and with an impersonation swap at a known time.

pub mod code;
pub mod face;
pub mod sessions;
pub mod timing;

use rand::rngs::StdRng;

use clarity_domain::telemetry::KeyClass;

/// What the generator knows about the key about to be pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyContext {
    /// The class of the key.
    pub key: KeyClass,
    /// The class of the previous key, if any.
    pub previous: Option<KeyClass>,
    /// The key starts a new statement or line of code (where humans pause to plan).
    pub statement_start: bool,
    /// The key starts a new word (after whitespace or punctuation).
    pub word_start: bool,
}

/// The timing of one key press.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyTiming {
    /// Milliseconds from the previous key-down to this key-down (≥ 0: on a coarse timer two
    /// key-downs can fall in one tick).
    pub gap_ms: f64,
    /// Milliseconds the key was held (`None`: the client never saw the key-up).
    pub hold_ms: Option<f64>,
}

/// A source of key-press timing: an honest typist model or an adversary.
pub trait Typist {
    /// The timing of the next key press.
    fn next_key(&mut self, rng: &mut StdRng, context: KeyContext) -> KeyTiming;

    /// The timer grid (ms) this typist's browser rounds `performance.now()` to, if it is coarse.
    /// Session builders round every absolute key time to it, as the browser would.
    fn timer_grid(&self) -> Option<f64> {
        None
    }
}

/// Box-Muller standard normal sample.
pub fn normal(rng: &mut StdRng) -> f64 {
    use rand::Rng;
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Log-normal sample with the given median and log-space standard deviation.
pub fn log_normal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}
