//! Synthetic key-press timing: honest typists and timing adversaries.
//!
//! **Honest typists** ([`honest`]) draw per-person parameters from realistic ranges and then type
//! with:
//! - log-normal inter-key intervals (IKIs) around a per-person median, with a heavier tail (a small
//!   share of presses get an extra log-normal delay: a look at the screen, a reach for a rare key);
//! - a hidden *fluent / hesitant* state that persists for a few to a few dozen keys, and a slow
//!   drift of speed (fatigue, boilerplate vs. thinking): this is what gives human IKIs their
//!   positive serial correlation;
//! - digraph effects by key class (shifted punctuation, digits and Enter are slower, a space after a
//!   letter is quick, a Backspace comes after a reaction delay);
//! - pauses of seconds at a statement start (the first key of a line) and shorter ones at word
//!   starts;
//! - log-normal hold times (70–130 ms median per person) slightly longer when hesitant; fast
//!   typists roll over (the next key goes down before the previous one is released);
//! - very rarely a missing key-up (focus changed while the key was held).
//!
//! `CoarseTimer` is a typical typist seen through a browser whose `performance.now()` is rounded
//! to 1 ms, 16.67 ms or 100 ms: the *absolute* down and up times are rounded, so two key-downs in
//! one tick give a gap of 0 and holds become 0 or one tick.
//!
//! **Adversaries** ([`adversary`]), by increasing difficulty: a constant interval, uniform jitter,
//! independent human-like log-normal sampling, sampling per key-class pair from a human-like
//! table, and a replay of another session's recorded timing (cycled when it runs out).
//!
//! Everything is drawn from the caller's seeded [`StdRng`], so traces are reproducible.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::Rng;

use super::{log_normal, normal, KeyContext, KeyTiming, Typist};
use clarity_domain::telemetry::{KeyClass, TelemetryData, TelemetryEvent};

/// Honest typing profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HonestTyping {
    /// A typical developer: ~150–250 ms median IKI within bursts.
    Typical,
    /// A fast touch typist: ~90–130 ms median IKI, frequent rollover.
    Fast,
    /// A slow hunt-and-peck typist: 300–600 ms median IKI, almost no rollover.
    Slow,
    /// A non-native writer: typical speed, longer and more frequent pauses, more hesitation.
    NonNative,
    /// A typical typist behind a coarse browser timer (1, 16.67 or 100 ms grid).
    CoarseTimer,
}

impl HonestTyping {
    /// Every profile, for evaluations.
    pub const ALL: [HonestTyping; 5] = [
        Self::Typical,
        Self::Fast,
        Self::Slow,
        Self::NonNative,
        Self::CoarseTimer,
    ];

    /// A stable name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Typical => "typical",
            Self::Fast => "fast",
            Self::Slow => "slow",
            Self::NonNative => "non_native",
            Self::CoarseTimer => "coarse_timer",
        }
    }

    /// The share of words an honest typist of this profile mistypes and corrects (for
    /// [`keystroke_trace_with_corrections`]).
    pub fn correction_rate(self) -> f64 {
        match self {
            Self::NonNative => 0.08,
            Self::Slow => 0.05,
            _ => 0.03,
        }
    }
}

/// Timing adversaries, by increasing difficulty.
#[derive(Debug, Clone, PartialEq)]
pub enum TimingAdversary {
    /// A fixed gap between key-downs and a fixed (or missing) hold.
    ConstantInterval,
    /// Gap and hold uniform in a range; the key is released before the next press.
    UniformJitter,
    /// I.i.d. log-normal gaps and holds with human medians and spreads; no state, no context
    /// pauses, a few random long pauses. Half of these bots are sequential (each key released
    /// before the next press, as simple automation does), half let presses overlap.
    IndependentHumanLike,
    /// I.i.d. given the key-class pair, from a human-like table (which includes the slow pairs
    /// after Enter and at word starts).
    PerKeyPair,
    /// Reproduces a recorded sequence of key timings exactly, cycling if it runs out.
    Replay(Vec<KeyTiming>),
}

impl TimingAdversary {
    /// A stable name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ConstantInterval => "constant_interval",
            Self::UniformJitter => "uniform_jitter",
            Self::IndependentHumanLike => "independent_human_like",
            Self::PerKeyPair => "per_key_pair",
            Self::Replay(_) => "replay",
        }
    }
}

/// Multiplier of the IKI for typing `key` after `previous` (human digraph effects by class).
pub fn class_factor(previous: Option<KeyClass>, key: KeyClass) -> f64 {
    use KeyClass::*;
    let into = match key {
        Letter => 1.0,
        Whitespace => 0.9,
        Digit => 1.3,
        Punctuation => 1.35,
        Enter => 1.25,
        Backspace => 1.6,
        Delete | Navigation | Modifier | Other => 1.5,
    };
    let from = match previous {
        Some(Punctuation) | Some(Digit) => 1.15,
        Some(Backspace) => 1.25,
        Some(Enter) => 1.1,
        _ => 1.0,
    };
    // Repeated Backspace presses are quick (autorepeat-like bursts).
    if previous == Some(Backspace) && key == Backspace {
        return 0.8;
    }
    into * from
}

fn clamp_gap(gap: f64) -> f64 {
    gap.max(8.0)
}

/// An honest typist: see the module documentation.
#[derive(Debug, Clone)]
struct HumanTypist {
    median_iki: f64,
    sigma: f64,
    hesitant_factor: f64,
    hesitant_sigma: f64,
    p_enter_hesitant: f64,
    p_leave_hesitant: f64,
    hesitant: bool,
    drift: f64,
    drift_rho: f64,
    drift_sd: f64,
    tail_p: f64,
    tail_median: f64,
    statement_pause: f64,
    statement_pause_p: f64,
    word_pause: f64,
    word_pause_p: f64,
    long_pause_p: f64,
    hold_median: f64,
    hold_sigma: f64,
    hold_drift: f64,
    p_missing_up: f64,
    /// Timer grid in ms (`None`: sub-millisecond timer).
    grid: Option<f64>,
    /// Unrounded clock and the last reported (rounded) key-down, for coarse timers.
    clock: f64,
    last_reported: f64,
}

impl HumanTypist {
    fn draw(kind: HonestTyping, rng: &mut StdRng) -> Self {
        let (median_iki, sigma, statement_pause, word_pause_p) = match kind {
            HonestTyping::Typical | HonestTyping::CoarseTimer => (
                rng.random_range(150.0..250.0),
                rng.random_range(0.32..0.45),
                rng.random_range(800.0..2500.0),
                rng.random_range(0.2..0.5),
            ),
            HonestTyping::Fast => (
                rng.random_range(90.0..130.0),
                rng.random_range(0.3..0.42),
                rng.random_range(600.0..1800.0),
                rng.random_range(0.15..0.4),
            ),
            HonestTyping::Slow => (
                rng.random_range(300.0..600.0),
                rng.random_range(0.35..0.55),
                rng.random_range(1500.0..4000.0),
                rng.random_range(0.3..0.6),
            ),
            HonestTyping::NonNative => (
                rng.random_range(170.0..300.0),
                rng.random_range(0.38..0.55),
                rng.random_range(2000.0..6000.0),
                rng.random_range(0.4..0.7),
            ),
        };
        let hold_median = match kind {
            HonestTyping::Fast => rng.random_range(70.0..110.0),
            _ => rng.random_range(75.0..130.0),
        };
        let grid = match kind {
            HonestTyping::CoarseTimer => Some(match rng.random_range(0..3) {
                0 => 1.0,
                1 => 50.0 / 3.0,
                _ => 100.0,
            }),
            _ => None,
        };
        let long_pause_p = match kind {
            HonestTyping::NonNative => rng.random_range(0.01..0.025),
            _ => rng.random_range(0.003..0.012),
        };
        Self {
            median_iki,
            sigma,
            hesitant_factor: rng.random_range(1.5..2.6),
            hesitant_sigma: sigma + rng.random_range(0.05..0.2),
            p_enter_hesitant: rng.random_range(0.02..0.07),
            p_leave_hesitant: rng.random_range(0.07..0.2),
            hesitant: false,
            drift: 0.0,
            drift_rho: rng.random_range(0.96..0.995),
            drift_sd: rng.random_range(0.03..0.07),
            tail_p: rng.random_range(0.02..0.06),
            tail_median: rng.random_range(1.8..3.5),
            statement_pause,
            statement_pause_p: rng.random_range(0.6..0.95),
            word_pause: rng.random_range(0.3..0.9),
            word_pause_p,
            long_pause_p,
            hold_median,
            hold_sigma: rng.random_range(0.15..0.3),
            hold_drift: 0.0,
            p_missing_up: rng.random_range(0.0..0.003),
            grid,
            clock: rng.random_range(0.0..1.0) * grid.unwrap_or(1.0) * 0.5,
            last_reported: 0.0,
        }
    }

    fn raw_key(&mut self, rng: &mut StdRng, context: KeyContext) -> KeyTiming {
        // Hidden state: fluent or hesitant, persisting for a while.
        if self.hesitant {
            if rng.random::<f64>() < self.p_leave_hesitant {
                self.hesitant = false;
            }
        } else if rng.random::<f64>() < self.p_enter_hesitant {
            self.hesitant = true;
        }
        // Slow drift of speed.
        self.drift = self.drift_rho * self.drift + self.drift_sd * normal(rng);
        self.hold_drift = 0.99 * self.hold_drift + 0.02 * normal(rng);

        let (factor, sigma) = if self.hesitant {
            (self.hesitant_factor, self.hesitant_sigma)
        } else {
            (1.0, self.sigma)
        };
        let median = self.median_iki * factor * self.drift.exp();
        let mut gap = log_normal(rng, median, sigma) * class_factor(context.previous, context.key);
        if rng.random::<f64>() < self.tail_p {
            gap += log_normal(rng, self.median_iki * self.tail_median, 0.5);
        }
        if context.statement_start && rng.random::<f64>() < self.statement_pause_p {
            gap += log_normal(rng, self.statement_pause, 0.8);
        } else if context.word_start && rng.random::<f64>() < self.word_pause_p {
            gap += log_normal(rng, self.median_iki * self.word_pause, 0.7);
        }
        if rng.random::<f64>() < self.long_pause_p {
            gap += log_normal(rng, 4000.0, 0.9);
        }
        let hold = if rng.random::<f64>() < self.p_missing_up {
            None
        } else {
            let class = match context.key {
                KeyClass::Whitespace | KeyClass::Enter => 1.12,
                KeyClass::Backspace => 0.9,
                _ => 1.0,
            };
            let state = if self.hesitant { 1.08 } else { 1.0 };
            Some(
                (log_normal(rng, self.hold_median, self.hold_sigma)
                    * class
                    * state
                    * self.hold_drift.exp())
                .max(25.0),
            )
        };
        KeyTiming {
            gap_ms: clamp_gap(gap),
            hold_ms: hold,
        }
    }
}

impl Typist for HumanTypist {
    fn next_key(&mut self, rng: &mut StdRng, context: KeyContext) -> KeyTiming {
        let raw = self.raw_key(rng, context);
        let Some(grid) = self.grid else {
            return raw;
        };
        // Round the absolute times as a coarse browser timer does.
        let round = |t: f64| (t / grid).round() * grid;
        self.clock += raw.gap_ms;
        let down = round(self.clock);
        let gap = down - self.last_reported;
        self.last_reported = down;
        KeyTiming {
            gap_ms: gap,
            hold_ms: raw.hold_ms.map(|h| round(self.clock + h) - down),
        }
    }

    fn timer_grid(&self) -> Option<f64> {
        self.grid
    }
}

/// An honest typist of the given profile, with per-person parameters drawn from `rng`.
pub fn honest(kind: HonestTyping, rng: &mut StdRng) -> Box<dyn Typist + Send> {
    Box::new(HumanTypist::draw(kind, rng))
}

#[derive(Debug, Clone)]
struct ConstantInterval {
    gap: f64,
    hold: Option<f64>,
}

impl Typist for ConstantInterval {
    fn next_key(&mut self, _rng: &mut StdRng, _context: KeyContext) -> KeyTiming {
        KeyTiming {
            gap_ms: self.gap,
            hold_ms: self.hold,
        }
    }
}

#[derive(Debug, Clone)]
struct UniformJitter {
    release_to_press: (f64, f64),
    hold: (f64, f64),
}

impl Typist for UniformJitter {
    fn next_key(&mut self, rng: &mut StdRng, _context: KeyContext) -> KeyTiming {
        let hold = rng.random_range(self.hold.0..self.hold.1);
        // Sequential automation: press, release, wait, press. The gap covers the hold.
        let gap = hold + rng.random_range(self.release_to_press.0..self.release_to_press.1);
        KeyTiming {
            gap_ms: gap,
            hold_ms: Some(hold),
        }
    }
}

#[derive(Debug, Clone)]
struct IndependentHumanLike {
    median: f64,
    sigma: f64,
    hold_median: f64,
    hold_sigma: f64,
    long_pause_p: f64,
    /// Sequential automation: each key is released before the next one goes down.
    sequential: bool,
    pending_gap: Option<f64>,
}

impl IndependentHumanLike {
    fn draw_gap(&self, rng: &mut StdRng) -> f64 {
        let mut gap = log_normal(rng, self.median, self.sigma);
        if rng.random::<f64>() < self.long_pause_p {
            gap += log_normal(rng, 2500.0, 0.8);
        }
        clamp_gap(gap)
    }
}

impl Typist for IndependentHumanLike {
    fn next_key(&mut self, rng: &mut StdRng, _context: KeyContext) -> KeyTiming {
        let gap = match self.pending_gap.take() {
            Some(gap) => gap,
            None => self.draw_gap(rng),
        };
        let mut hold = log_normal(rng, self.hold_median, self.hold_sigma).max(20.0);
        if self.sequential {
            // Released before the next press, which is drawn now and comes at least 5 ms later.
            let next = self.draw_gap(rng);
            hold = hold.min((next - 5.0).max(1.0));
            self.pending_gap = Some(next);
        }
        KeyTiming {
            gap_ms: gap,
            hold_ms: Some(hold),
        }
    }
}

#[derive(Debug, Clone)]
struct PerKeyPair {
    median: f64,
    sigma: f64,
    line_start_pause: f64,
    word_start_factor: f64,
    hold_median: f64,
    hold_sigma: f64,
}

impl Typist for PerKeyPair {
    fn next_key(&mut self, rng: &mut StdRng, context: KeyContext) -> KeyTiming {
        // The table is keyed by the class pair only: the bot sees the keys, not the meaning.
        let mut median = self.median * class_factor(context.previous, context.key);
        let mut sigma = self.sigma;
        match (context.previous, context.key) {
            (Some(KeyClass::Enter), _) => {
                median += self.line_start_pause;
                sigma += 0.3;
            }
            (Some(KeyClass::Whitespace | KeyClass::Punctuation), KeyClass::Letter) => {
                median *= self.word_start_factor;
                sigma += 0.1;
            }
            _ => {}
        }
        KeyTiming {
            gap_ms: clamp_gap(log_normal(rng, median, sigma)),
            hold_ms: Some(log_normal(rng, self.hold_median, self.hold_sigma).max(20.0)),
        }
    }
}

#[derive(Debug, Clone)]
struct Replay {
    timings: Vec<KeyTiming>,
    next: usize,
}

impl Typist for Replay {
    fn next_key(&mut self, _rng: &mut StdRng, _context: KeyContext) -> KeyTiming {
        if self.timings.is_empty() {
            return KeyTiming {
                gap_ms: 150.0,
                hold_ms: Some(90.0),
            };
        }
        let timing = self.timings[self.next % self.timings.len()];
        self.next += 1;
        timing
    }
}

/// A timing adversary of the given kind, with its parameters drawn from `rng`.
pub fn adversary(kind: TimingAdversary, rng: &mut StdRng) -> Box<dyn Typist + Send> {
    match kind {
        TimingAdversary::ConstantInterval => {
            let gap: f64 = rng.random_range(60.0..220.0);
            let hold = if rng.random::<bool>() {
                Some(rng.random_range(10.0..(gap * 0.6).min(90.0)))
            } else {
                None
            };
            Box::new(ConstantInterval { gap, hold })
        }
        TimingAdversary::UniformJitter => {
            let lo = rng.random_range(30.0..120.0);
            let hi = lo + rng.random_range(60.0..250.0);
            let hold_lo = rng.random_range(20.0..70.0);
            let hold_hi = hold_lo + rng.random_range(10.0..60.0);
            Box::new(UniformJitter {
                release_to_press: (lo, hi),
                hold: (hold_lo, hold_hi),
            })
        }
        TimingAdversary::IndependentHumanLike => Box::new(IndependentHumanLike {
            median: rng.random_range(150.0..250.0),
            sigma: rng.random_range(0.4..0.6),
            hold_median: rng.random_range(70.0..130.0),
            hold_sigma: rng.random_range(0.15..0.3),
            long_pause_p: rng.random_range(0.0..0.02),
            sequential: rng.random::<bool>(),
            pending_gap: None,
        }),
        TimingAdversary::PerKeyPair => Box::new(PerKeyPair {
            median: rng.random_range(150.0..250.0),
            sigma: rng.random_range(0.35..0.5),
            line_start_pause: rng.random_range(800.0..2500.0),
            word_start_factor: rng.random_range(1.2..1.8),
            hold_median: rng.random_range(70.0..130.0),
            hold_sigma: rng.random_range(0.15..0.3),
        }),
        TimingAdversary::Replay(timings) => Box::new(Replay { timings, next: 0 }),
    }
}

/// The key class of a typed character.
pub fn key_class(c: char) -> KeyClass {
    match c {
        '\n' => KeyClass::Enter,
        c if c.is_whitespace() => KeyClass::Whitespace,
        c if c.is_ascii_digit() => KeyClass::Digit,
        c if c.is_alphabetic() => KeyClass::Letter,
        _ => KeyClass::Punctuation,
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Keystroke events for typing `text` in order, with no corrections. See
/// [`keystroke_trace_with_corrections`].
pub fn keystroke_trace(
    rng: &mut StdRng,
    typist: &mut dyn Typist,
    text: &str,
    start: DateTime<Utc>,
) -> Vec<TelemetryEvent> {
    keystroke_trace_with_corrections(rng, typist, text, start, 0.0)
}

/// Keystroke events for typing `text`: `seq` from 1, key classes from the characters (`'\n'`
/// Enter, whitespace, digits, letters, everything else punctuation), `down_ms` on a clock that
/// starts at 0 at `start` (so `ts = start + down_ms`).
///
/// With `correction_rate > 0`, that share of words gets a typo: one to three wrong characters are
/// typed, then erased with Backspace, before the word continues. Contexts: `statement_start` is the
/// first key of a line, `word_start` the first character of a word. Leading indentation of a line
/// is taken as the editor's auto-indent and produces no key presses.
pub fn keystroke_trace_with_corrections(
    rng: &mut StdRng,
    typist: &mut dyn Typist,
    text: &str,
    start: DateTime<Utc>,
    correction_rate: f64,
) -> Vec<TelemetryEvent> {
    let mut events = Vec::with_capacity(text.len() + text.len() / 8);
    let mut down = 0.0_f64;
    let mut previous: Option<KeyClass> = None;
    let mut previous_char: Option<char> = None;
    let mut press = |rng: &mut StdRng,
                     key: KeyClass,
                     previous: Option<KeyClass>,
                     statement_start: bool,
                     word_start: bool,
                     events: &mut Vec<TelemetryEvent>| {
        let timing = typist.next_key(
            rng,
            KeyContext {
                key,
                previous,
                statement_start,
                word_start,
            },
        );
        down += timing.gap_ms.max(0.0);
        let seq = events.len() as u64 + 1;
        events.push(TelemetryEvent {
            seq,
            ts: start + Duration::microseconds((down * 1000.0).round() as i64),
            data: TelemetryData::Keystroke {
                down_ms: down,
                up_ms: timing.hold_ms.map(|h| down + h.max(0.0)),
                key_class: key,
            },
        });
    };
    let mut at_line_start = true;
    for c in text.chars() {
        if at_line_start && (c == ' ' || c == '\t') {
            // Auto-indented by the editor: no key press.
            continue;
        }
        let key = key_class(c);
        let mut statement_start = at_line_start;
        at_line_start = c == '\n';
        let word_start = is_word_char(c) && !previous_char.is_some_and(is_word_char);
        if word_start && correction_rate > 0.0 && rng.random::<f64>() < correction_rate {
            // A typo somewhere in the word: wrong letters, then as many Backspaces.
            let wrong = rng.random_range(1..=3);
            let mut prev = previous;
            for i in 0..wrong {
                press(
                    rng,
                    KeyClass::Letter,
                    prev,
                    statement_start && i == 0,
                    i == 0,
                    &mut events,
                );
                prev = Some(KeyClass::Letter);
            }
            for _ in 0..wrong {
                press(rng, KeyClass::Backspace, prev, false, false, &mut events);
                prev = Some(KeyClass::Backspace);
            }
            previous = prev;
            statement_start = false;
        }
        press(rng, key, previous, statement_start, word_start, &mut events);
        previous = Some(key);
        previous_char = Some(c);
    }
    events
}

/// The key timings recorded in a trace (gap from the previous key-down, hold), in `seq` order: what
/// a replay adversary copies from another session.
pub fn timings_from_events(events: &[TelemetryEvent]) -> Vec<KeyTiming> {
    let mut out = Vec::new();
    let mut last_down: Option<f64> = None;
    for event in events {
        if let TelemetryData::Keystroke { down_ms, up_ms, .. } = &event.data {
            let gap = last_down.map_or(*down_ms, |d| down_ms - d);
            out.push(KeyTiming {
                gap_ms: gap,
                hold_ms: up_ms.map(|u| u - down_ms),
            });
            last_down = Some(*down_ms);
        }
    }
    out
}

const IDENTS: [&str; 24] = [
    "result", "value", "items", "count", "index", "total", "node", "left", "right", "buffer",
    "key", "map", "config", "request", "response", "len", "max_size", "parse", "input", "output",
    "acc", "entry", "queue", "cache",
];
const KEYWORDS: [&str; 10] = [
    "let", "let mut", "if", "for", "while", "return", "match", "fn", "else", "const",
];
const OPS: [&str; 8] = [" + ", " - ", " * ", " == ", " < ", " >= ", " && ", " / "];

fn pick<'a>(rng: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

fn expression(rng: &mut StdRng, depth: u32) -> String {
    match rng.random_range(0..6) {
        0 => rng.random_range(0..1000).to_string(),
        1 if depth < 2 => format!(
            "{}{}{}",
            expression(rng, depth + 1),
            pick(rng, &OPS),
            expression(rng, depth + 1)
        ),
        2 if depth < 2 => format!("{}({})", pick(rng, &IDENTS), expression(rng, depth + 1)),
        3 => format!("{}.{}()", pick(rng, &IDENTS), pick(rng, &IDENTS)),
        4 => format!("{}[{}]", pick(rng, &IDENTS), pick(rng, &IDENTS)),
        _ => pick(rng, &IDENTS).to_string(),
    }
}

/// Code-like text of about `chars` characters: Rust-flavoured statements on indented lines, for
/// typing experiments (identifiers, digits, operators, brackets, newlines).
pub fn code_like_text(rng: &mut StdRng, chars: usize) -> String {
    let mut text = String::with_capacity(chars + 80);
    let mut depth = 0usize;
    while text.len() < chars {
        let indent = "    ".repeat(depth);
        let line = match rng.random_range(0..10) {
            0..=3 => format!(
                "{} {} = {};",
                pick(rng, &KEYWORDS[..2]),
                pick(rng, &IDENTS),
                expression(rng, 0)
            ),
            4 | 5 if depth < 3 => {
                depth += 1;
                format!("{} {} {{", pick(rng, &KEYWORDS[2..5]), expression(rng, 0))
            }
            6 if depth > 0 => {
                depth -= 1;
                "}".to_string()
            }
            7 => format!("{}.push({});", pick(rng, &IDENTS), expression(rng, 1)),
            8 => format!("// {} the {}", pick(rng, &IDENTS), pick(rng, &IDENTS)),
            _ => format!("{} = {};", pick(rng, &IDENTS), expression(rng, 0)),
        };
        let indent = if line == "}" {
            "    ".repeat(depth)
        } else {
            indent
        };
        text.push_str(&indent);
        text.push_str(&line);
        text.push('\n');
    }
    while depth > 0 {
        depth -= 1;
        text.push_str(&"    ".repeat(depth));
        text.push_str("}\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rand::SeedableRng;

    use super::*;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    fn keystrokes(events: &[TelemetryEvent]) -> Vec<(f64, Option<f64>, KeyClass)> {
        events
            .iter()
            .map(|e| match e.data {
                TelemetryData::Keystroke {
                    down_ms,
                    up_ms,
                    key_class,
                } => (down_ms, up_ms, key_class),
                _ => panic!("only keystrokes expected"),
            })
            .collect()
    }

    fn trace(kind: HonestTyping, seed: u64) -> Vec<TelemetryEvent> {
        let mut rng = StdRng::seed_from_u64(seed);
        let text = code_like_text(&mut rng, 1500);
        let mut typist = honest(kind, &mut rng);
        keystroke_trace(&mut rng, typist.as_mut(), &text, start())
    }

    fn overlap_share(events: &[TelemetryEvent]) -> f64 {
        let keys = keystrokes(events);
        let overlaps = keys
            .windows(2)
            .filter(|w| w[0].1.is_some_and(|up| w[1].0 < up))
            .count();
        overlaps as f64 / (keys.len() - 1) as f64
    }

    #[test]
    fn the_same_seed_gives_the_same_trace() {
        // Arrange / Act
        let (a, b) = (
            trace(HonestTyping::Typical, 1),
            trace(HonestTyping::Typical, 1),
        );

        // Assert
        assert_eq!(a, b);
        assert_ne!(a, trace(HonestTyping::Typical, 2));
    }

    #[test]
    fn a_trace_numbers_keystrokes_from_one_with_times_consistent_with_down_ms() {
        // Arrange
        let mut rng = StdRng::seed_from_u64(3);
        let mut typist = honest(HonestTyping::Fast, &mut rng);

        // Act
        let events = keystroke_trace(&mut rng, typist.as_mut(), "let x = 1;\n    y", start());

        // Assert: indentation after a newline is auto-indent, not typed.
        let classes: Vec<KeyClass> = keystrokes(&events).iter().map(|k| k.2).collect();
        use KeyClass::*;
        assert_eq!(
            classes,
            vec![
                Letter,
                Letter,
                Letter,
                Whitespace,
                Letter,
                Whitespace,
                Punctuation,
                Whitespace,
                Digit,
                Punctuation,
                Enter,
                Letter
            ]
        );
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            let TelemetryData::Keystroke { down_ms, up_ms, .. } = e.data else {
                unreachable!()
            };
            assert_eq!(
                (e.ts - start()).num_microseconds(),
                Some((down_ms * 1000.0).round() as i64)
            );
            assert!(up_ms.is_none_or(|u| u >= down_ms));
        }
        assert!(keystrokes(&events).windows(2).all(|w| w[1].0 > w[0].0));
    }

    #[test]
    fn corrections_add_backspaces() {
        // Arrange
        let mut rng = StdRng::seed_from_u64(4);
        let text = code_like_text(&mut rng, 2000);
        let mut typist = honest(HonestTyping::NonNative, &mut rng);

        // Act
        let events =
            keystroke_trace_with_corrections(&mut rng, typist.as_mut(), &text, start(), 0.1);

        // Assert
        let backspaces = keystrokes(&events)
            .iter()
            .filter(|k| k.2 == KeyClass::Backspace)
            .count();
        assert!(backspaces > 20);
        assert_eq!(
            events.len() - 2 * backspaces,
            text.len()
                - text
                    .lines()
                    .map(|l| l.len() - l.trim_start().len())
                    .sum::<usize>()
        );
    }

    #[test]
    fn honest_medians_follow_the_profile() {
        // Arrange
        let median_gap = |kind| {
            let keys = keystrokes(&trace(kind, 5));
            let mut gaps: Vec<f64> = keys.windows(2).map(|w| w[1].0 - w[0].0).collect();
            gaps.sort_by(f64::total_cmp);
            gaps[gaps.len() / 2]
        };

        // Act
        let (fast, typical, slow) = (
            median_gap(HonestTyping::Fast),
            median_gap(HonestTyping::Typical),
            median_gap(HonestTyping::Slow),
        );

        // Assert
        assert!(fast < typical && typical < slow, "{fast} {typical} {slow}");
        assert!((80.0..200.0).contains(&fast) && (300.0..900.0).contains(&slow));
    }

    #[test]
    fn fast_typists_roll_over_more_than_slow_ones() {
        // Arrange / Act
        let fast = overlap_share(&trace(HonestTyping::Fast, 6));
        let slow = overlap_share(&trace(HonestTyping::Slow, 6));

        // Assert
        assert!(fast > 0.08 && slow < 0.05, "{fast} {slow}");
    }

    #[test]
    fn a_coarse_timer_puts_every_time_on_its_grid() {
        for seed in 0..6 {
            // Arrange / Act
            let keys = keystrokes(&trace(HonestTyping::CoarseTimer, 10 + seed));

            // Assert: some grid in {1, 16.67, 100} holds every time.
            let on = |g: f64, v: f64| ((v / g) - (v / g).round()).abs() < 1e-6;
            let fits = |g: f64| {
                keys.iter()
                    .all(|k| on(g, k.0) && k.1.is_none_or(|u| on(g, u)))
            };
            assert!(fits(1.0) || fits(50.0 / 3.0) || fits(100.0));
        }
    }

    #[test]
    fn a_replay_adversary_reproduces_the_recorded_timing_and_cycles() {
        // Arrange
        let source = trace(HonestTyping::Typical, 7);
        let timings = timings_from_events(&source);
        let mut rng = StdRng::seed_from_u64(8);
        let mut typist = adversary(TimingAdversary::Replay(timings.clone()), &mut rng);
        let text = code_like_text(&mut rng, timings.len() + 400);

        // Act
        let replay =
            timings_from_events(&keystroke_trace(&mut rng, typist.as_mut(), &text, start()));

        // Assert
        let close = |a: &KeyTiming, b: &KeyTiming| {
            (a.gap_ms - b.gap_ms).abs() < 1e-6
                && match (a.hold_ms, b.hold_ms) {
                    (Some(x), Some(y)) => (x - y).abs() < 1e-6,
                    (x, y) => x == y,
                }
        };
        assert!(replay.len() > timings.len());
        for (i, r) in replay.iter().enumerate().skip(1) {
            assert!(close(r, &timings[i % timings.len()]), "key {i}");
        }
    }

    #[test]
    fn constant_and_jitter_adversaries_never_roll_over() {
        for kind in [
            TimingAdversary::ConstantInterval,
            TimingAdversary::UniformJitter,
        ] {
            // Arrange
            let mut rng = StdRng::seed_from_u64(9);
            let text = code_like_text(&mut rng, 1000);
            let mut typist = adversary(kind, &mut rng);

            // Act
            let events = keystroke_trace(&mut rng, typist.as_mut(), &text, start());

            // Assert
            assert_eq!(overlap_share(&events), 0.0);
        }
    }
}
