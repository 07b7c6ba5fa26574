//! `clarity simulate`: creates realistic candidate sessions through the public API, as a demo
//! and as load for tests and benchmarks.
//!
//! A simulated candidate types a solution with human-like timing — log-normal inter-key
//! intervals (median ~170 ms), thinking pauses at line ends, typos corrected with backspace —
//! tabs away once and pastes a block when they come back, runs the tests (failing, then passing),
//! and submits what is in the editor. Keystroke timing lives on the client's monotonic clock
//! (`down_ms`/`up_ms`). With `--realtime` events are sent as they happen and `ts` is their real
//! time; without it everything is sent at once and `ts` is the time of sending.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Options of `clarity simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Base URL of the API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// An admin or hiring-manager API key.
    #[arg(long, env = "CLARITY_API_KEY")]
    pub api_key: String,
    /// How many sessions to create.
    #[arg(long, default_value_t = 3)]
    pub sessions: usize,
    /// Assessment to invite to (default: the built-in REST API Design test).
    #[arg(long, default_value = "c1a71700-0000-4000-8000-000000000001")]
    pub assessment: String,
    /// Random seed, for reproducible sessions.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Send each event when it happens (sessions take a few minutes) instead of all at once.
    #[arg(long)]
    pub realtime: bool,
}

const NAMES: [&str; 8] = [
    "Ada Okafor",
    "Bruno Silva",
    "Chen Wei",
    "Dana Kowalski",
    "Emeka Obi",
    "Farah Haddad",
    "Greta Lind",
    "Hiro Tanaka",
];

const SOLUTION: &str = "from flask import Flask, jsonify, request\n\napp = Flask(__name__)\nORDERS = {}\n\n@app.get(\"/orders/<order_id>\")\ndef get_order(order_id):\n    order = ORDERS.get(order_id)\n    if order is None:\n        return jsonify(error=\"not_found\"), 404\n    return jsonify(order)\n";

const PASTED: &str = "\n@app.post(\"/orders\")\ndef create_order():\n    body = request.get_json(silent=True) or {}\n    if \"sku\" not in body or body.get(\"quantity\", 0) <= 0:\n        return jsonify(error=\"invalid_order\"), 422\n    order_id = str(len(ORDERS) + 1)\n    ORDERS[order_id] = {\"id\": order_id, **body}\n    return jsonify(ORDERS[order_id]), 201\n";

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A log-normal sample with the given median and log-space spread.
fn log_normal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    (median.ln() + sigma * normal(rng)).exp()
}

fn key_class(c: char) -> &'static str {
    match c {
        '\n' => "enter",
        c if c.is_whitespace() => "whitespace",
        c if c.is_ascii_digit() => "digit",
        c if c.is_alphabetic() => "letter",
        _ => "punctuation",
    }
}

/// Builds the telemetry script of one candidate: (events without seq/ts, final file content).
pub fn script(rng: &mut StdRng) -> (Vec<Value>, String) {
    let (timed, content) = timed_script(rng);
    (timed.into_iter().map(|(_, e)| e).collect(), content)
}

/// Like [`script`], with each event's time in milliseconds since the first one.
pub fn timed_script(rng: &mut StdRng) -> (Vec<(i64, Value)>, String) {
    const FILE: &str = "app.py";
    let mut events: Vec<(i64, Value)> = Vec::new();
    let mut doc: Vec<u16> = Vec::new();
    let mut clock = 0.0f64;
    let keystroke = |events: &mut Vec<(i64, Value)>,
                     clock: &mut f64,
                     rng: &mut StdRng,
                     class: &str| {
        *clock += log_normal(rng, 170.0, 0.55);
        let hold = log_normal(rng, 95.0, 0.3);
        // The client's monotonic clock starts when the page loads, a second before the first event.
        let down = 1_000.0 + *clock;
        events.push((*clock as i64, json!({"type": "keystroke", "down_ms": (down * 10.0).round() / 10.0, "up_ms": ((down + hold) * 10.0).round() / 10.0, "key_class": class})));
    };
    events.push((
        0,
        json!({"type": "file_created", "file": FILE, "content": ""}),
    ));
    for (i, c) in SOLUTION.chars().enumerate() {
        if rng.random_bool(0.03) && c.is_alphabetic() {
            // A typo, noticed and corrected.
            let pos = doc.len();
            keystroke(&mut events, &mut clock, rng, "letter");
            events.push((clock as i64, json!({"type": "edit", "file": FILE, "position": pos, "deleted": 0, "inserted": "q", "origin": "typed"})));
            clock += log_normal(rng, 400.0, 0.4);
            keystroke(&mut events, &mut clock, rng, "backspace");
            events.push((clock as i64, json!({"type": "edit", "file": FILE, "position": pos, "deleted": 1, "inserted": "", "origin": "typed"})));
        }
        let pos = doc.len();
        keystroke(&mut events, &mut clock, rng, key_class(c));
        events.push((clock as i64, json!({"type": "edit", "file": FILE, "position": pos, "deleted": 0, "inserted": c.to_string(), "origin": "typed"})));
        let mut buf = [0u16; 2];
        doc.extend_from_slice(c.encode_utf16(&mut buf));
        if c == '\n' {
            if rng.random_bool(0.25) {
                clock += log_normal(rng, 6_000.0, 0.8); // thinking
            }
            events.push((
                clock as i64,
                json!({"type": "cursor", "file": FILE, "position": doc.len()}),
            ));
        }
        if i == SOLUTION.len() / 2 {
            clock += log_normal(rng, 3_000.0, 0.3);
            events.push((clock as i64, json!({"type": "code_run", "command": "pytest -q", "exit_code": 1, "tests_passed": 1, "tests_failed": 2, "duration_ms": 1840})));
        }
    }
    // Tab away for a while, come back, paste a block, run the tests.
    clock += log_normal(rng, 2_000.0, 0.3);
    events.push((clock as i64, json!({"type": "focus_lost"})));
    clock += log_normal(rng, 25_000.0, 0.3);
    events.push((clock as i64, json!({"type": "focus_regained"})));
    clock += log_normal(rng, 1_500.0, 0.3);
    let pos = doc.len();
    events.push((clock as i64, json!({"type": "edit", "file": FILE, "position": pos, "deleted": 0, "inserted": PASTED, "origin": "paste"})));
    clock += log_normal(rng, 20_000.0, 0.2);
    events.push((clock as i64, json!({"type": "code_run", "command": "pytest -q", "exit_code": 0, "tests_passed": 3, "tests_failed": 0, "duration_ms": 1710})));
    (events, format!("{SOLUTION}{PASTED}"))
}

/// Runs the simulation and prints one line per session. With `--realtime` the sessions run
/// concurrently and each event is sent when it happens (a session takes a few minutes), so event
/// times are real and a replay by time shows the true rhythm; otherwise everything is sent at once.
pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut sessions = Vec::new();
    for i in 0..args.sessions {
        let name = NAMES[(args.seed as usize + i) % NAMES.len()];
        let email = format!(
            "{}.{}@candidates.example",
            name.to_lowercase().replace(' ', "."),
            rng.random_range(1000..9999)
        );
        let (script, content) = timed_script(&mut rng);
        sessions.push(simulate_one(&http, &args, name, email, script, content));
    }
    for result in futures::future::join_all(sessions).await {
        result?;
    }
    Ok(())
}

async fn call(
    http: &reqwest::Client,
    api: &str,
    path: String,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let res = http
        .post(format!("{api}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
    Ok(body)
}

async fn simulate_one(
    http: &reqwest::Client,
    args: &SimulateArgs,
    name: &str,
    email: String,
    script: Vec<(i64, Value)>,
    content: String,
) -> anyhow::Result<()> {
    let api = args.api.as_str();
    let invited = call(
        http,
        api,
        "/v1/sessions".into(),
        &args.api_key,
        json!({"assessment_id": args.assessment, "candidate": {"name": name, "email": email}}),
    )
    .await?;
    let id = invited["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let token = invited["candidate_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let consent = json!({"notice_id": clarity_domain::notice::CURRENT, "notice_sha256": clarity_domain::notice::current().sha256(), "scopes": {"keystroke_dynamics": true, "face_continuity": true}});
    call(
        http,
        api,
        format!("/v1/sessions/{id}/consent"),
        &token,
        consent,
    )
    .await?;
    call(
        http,
        api,
        format!("/v1/sessions/{id}/start"),
        &token,
        json!({}),
    )
    .await?;
    if args.realtime {
        println!("session {id}  {name:<14} typing live (review at {api}/review/sessions/{id})");
    }
    let (started, t0) = (std::time::Instant::now(), chrono::Utc::now());
    let mut next = 0;
    while next < script.len() {
        let end = if args.realtime {
            let elapsed = started.elapsed().as_millis() as i64;
            next + script[next..]
                .iter()
                .take_while(|(at, _)| *at <= elapsed)
                .count()
                .min(250)
        } else {
            (next + 250).min(script.len())
        };
        if end > next {
            let events: Vec<Value> = (next..end)
                .map(|i| {
                    let (at, data) = &script[i];
                    let ts = if args.realtime {
                        t0 + chrono::Duration::milliseconds(*at)
                    } else {
                        chrono::Utc::now()
                    };
                    json!({"seq": i + 1, "ts": ts, "data": data})
                })
                .collect();
            call(
                http,
                api,
                format!("/v1/sessions/{id}/telemetry"),
                &token,
                json!({ "events": events }),
            )
            .await?;
            next = end;
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    call(
        http,
        api,
        format!("/v1/sessions/{id}/submit"),
        &token,
        json!({"files": [{"path": "app.py", "content": content}]}),
    )
    .await?;
    println!(
        "session {id}  {name:<14} {} events, submitted",
        script.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_script_rebuilds_the_submitted_file() {
        let (events, content) = script(&mut StdRng::seed_from_u64(1));
        let mut doc: Vec<u16> = Vec::new();
        for e in &events {
            if e["type"] == "edit" {
                let pos = e["position"].as_u64().unwrap() as usize;
                let del = e["deleted"].as_u64().unwrap() as usize;
                let ins: Vec<u16> = e["inserted"].as_str().unwrap().encode_utf16().collect();
                doc.splice(pos..pos + del, ins);
            }
        }
        assert_eq!(String::from_utf16(&doc).unwrap(), content);
        let pastes = events.iter().filter(|e| e["origin"] == "paste").count();
        assert_eq!(pastes, 1);
    }

    #[test]
    fn inter_key_intervals_are_heavy_tailed_around_the_median() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut xs: Vec<f64> = (0..10_000)
            .map(|_| log_normal(&mut rng, 170.0, 0.55))
            .collect();
        xs.sort_by(f64::total_cmp);
        let median = xs[5_000];
        assert!((150.0..190.0).contains(&median), "{median}");
        assert!(xs[9_900] > 2.5 * median, "a heavy right tail");
    }
}
