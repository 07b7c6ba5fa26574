//! The hostile side of the chaos test: every request the API must refuse, with the status and
//! the stable code it must refuse it with.

use chrono::Utc;
use clarity_tests::{Client, Reply};
use reqwest::Method;
use serde_json::{json, Value};

use super::Candidate;

/// A request body.
pub enum Body {
    Json(Value),
    /// Bytes with a content type (none: no `Content-Type` header).
    Raw(Option<&'static str>, Vec<u8>),
}

/// A request that must be refused, and how.
pub struct Hostile {
    pub name: &'static str,
    pub path: String,
    /// `None`: no `Authorization` header.
    pub token: Option<String>,
    pub body: Body,
    pub status: u16,
    pub code: &'static str,
    /// For 422 `invalid_events`: the per-event codes any of which is right.
    pub details: &'static [&'static str],
}

fn events_body(events: Vec<Value>) -> Body {
    Body::Json(json!({ "events": events }))
}

fn keystroke(seq: Value, ts: Value) -> Value {
    json!({"seq": seq, "ts": ts, "data": {"type": "keystroke", "down_ms": 1.0, "key_class": "letter"}})
}

fn edit(seq: u64, position: Value, deleted: Value, inserted: &str, file: &str) -> Value {
    json!({"seq": seq, "ts": Utc::now(), "data": {"type": "edit", "file": file, "position": position, "deleted": deleted, "inserted": inserted, "origin": "typed"}})
}

/// Every hostile telemetry request, for the session's next `seq` `n`.
pub fn hostile_telemetry(
    me: &Candidate,
    peer: &Candidate,
    stranger: &Candidate,
    n: u64,
) -> Vec<Hostile> {
    let path = format!("/v1/sessions/{}/telemetry", me.session);
    let now = json!(Utc::now());
    let valid = || keystroke(json!(n), json!(Utc::now()));
    let h = |name, body, status, code, details| Hostile {
        name,
        path: path.clone(),
        token: Some(me.token.clone()),
        body,
        status,
        code,
        details,
    };
    let invalid = |name, events: Vec<Value>, details| {
        h(name, events_body(events), 422, "invalid_events", details)
    };
    let raw = |text: String| Body::Raw(Some("application/json"), text.into_bytes());
    let megabyte = "x".repeat(1_100_000);
    let long_path = "d/".repeat(300) + "f.py";
    vec![
        invalid(
            "timestamp in the year -5000",
            vec![keystroke(json!(n), json!("-5000-01-01T00:00:00Z"))],
            &["invalid_event", "timestamp_too_early"],
        ),
        invalid(
            "NUL in edited text",
            vec![edit(n, json!(0), json!(0), "a\u{0}b", "main.py")],
            &["invalid_text"],
        ),
        invalid(
            "NUL in a path",
            vec![edit(n, json!(0), json!(0), "a", "ma\u{0}in.py")],
            &["invalid_file"],
        ),
        invalid(
            "NUL in a created file",
            vec![
                json!({"seq": n, "ts": now, "data": {"type": "file_created", "file": "b.py", "content": "\u{0}"}}),
            ],
            &["invalid_text"],
        ),
        h(
            "a 1.1 MB string",
            events_body(vec![edit(n, json!(0), json!(0), &megabyte, "main.py")]),
            413,
            "batch_too_large",
            &[],
        ),
        invalid(
            "seq 2^63",
            vec![keystroke(json!(1u64 << 63), now.clone())],
            &["invalid_seq"],
        ),
        invalid(
            "seq 2^64 - 1",
            vec![keystroke(json!(u64::MAX), now.clone())],
            &["invalid_seq"],
        ),
        h(
            "seq 2^64",
            raw(format!(
                r#"{{"events": [{{"seq": 18446744073709551616, "ts": {now}, "data": {{"type": "focus_lost"}}}}]}}"#
            )),
            422,
            "invalid_events",
            &["invalid_event"],
        ),
        invalid(
            "a negative position",
            vec![edit(n, json!(-1), json!(0), "a", "main.py")],
            &["negative_position"],
        ),
        invalid(
            "an edit past the end of the file",
            vec![edit(n, json!(i64::MAX), json!(0), "x", "main.py")],
            &["position_out_of_range"],
        ),
        invalid(
            "deleting past the end of the file",
            vec![edit(n, json!(0), json!(i64::MAX), "", "main.py")],
            &["position_out_of_range"],
        ),
        invalid(
            "a cursor past the end of the file",
            vec![
                json!({"seq": n, "ts": now, "data": {"type": "cursor", "file": "main.py", "position": i64::MAX}}),
            ],
            &["position_out_of_range"],
        ),
        invalid(
            "an edit to a file never created",
            vec![edit(n, json!(0), json!(0), "boo", "ghost.py")],
            &["unknown_file"],
        ),
        invalid(
            "creating a file that exists",
            vec![
                json!({"seq": n, "ts": now, "data": {"type": "file_created", "file": "main.py", "content": ""}}),
            ],
            &["file_exists"],
        ),
        invalid(
            "a negative length",
            vec![edit(n, json!(0), json!(-5), "", "main.py")],
            &["negative_length"],
        ),
        invalid(
            "a negative cursor",
            vec![
                json!({"seq": n, "ts": now, "data": {"type": "cursor", "file": "main.py", "position": -3}}),
            ],
            &["negative_position"],
        ),
        invalid(
            "a position beyond i64",
            vec![edit(n, json!(1u64 << 63), json!(0), "a", "main.py")],
            &["invalid_event"],
        ),
        invalid(
            "a position of 1e300",
            vec![edit(n, json!(1e300), json!(0), "a", "main.py")],
            &["invalid_event"],
        ),
        invalid(
            "an unknown event field",
            vec![{
                let mut e = valid();
                e["priority"] = json!("high");
                e
            }],
            &["invalid_event"],
        ),
        invalid(
            "an unknown data field",
            vec![{
                let mut e = valid();
                e["data"]["color"] = json!("red");
                e
            }],
            &["invalid_event"],
        ),
        invalid(
            "an unknown event type",
            vec![json!({"seq": n, "ts": now, "data": {"type": "teleport"}})],
            &["invalid_event"],
        ),
        invalid(
            "seq as a string",
            vec![keystroke(json!(n.to_string()), now.clone())],
            &["invalid_event"],
        ),
        invalid(
            "a timestamp that is a number",
            vec![keystroke(json!(n), json!(1_700_000_000))],
            &["invalid_event"],
        ),
        invalid(
            "seq 0",
            vec![keystroke(json!(0), now.clone())],
            &["invalid_seq"],
        ),
        invalid(
            "a timestamp a day ahead",
            vec![keystroke(
                json!(n),
                json!(Utc::now() + chrono::Duration::days(1)),
            )],
            &["timestamp_in_future"],
        ),
        invalid(
            "a timestamp before the session started",
            vec![keystroke(json!(n), json!("2001-01-01T00:00:00Z"))],
            &["timestamp_before_session"],
        ),
        invalid(
            "seq not increasing",
            vec![valid(), valid()],
            &["sequence_not_increasing"],
        ),
        invalid(
            "a negative key time",
            vec![
                json!({"seq": n, "ts": now, "data": {"type": "keystroke", "down_ms": -1.0, "key_class": "letter"}}),
            ],
            &["invalid_timing"],
        ),
        invalid(
            "a face similarity of 2",
            vec![
                json!({"seq": n, "ts": now, "data": {"type": "face_check", "similarity": 2.0, "model_id": "m", "model_version": "1", "face_count": 1, "quality": 0.5}}),
            ],
            &["out_of_range"],
        ),
        invalid(
            "a path out of the workspace",
            vec![edit(n, json!(0), json!(0), "a", "../etc/passwd")],
            &["invalid_file"],
        ),
        invalid(
            "a 600-byte path",
            vec![edit(n, json!(0), json!(0), "a", &long_path)],
            &["invalid_file"],
        ),
        invalid(
            "five valid events and a NUL",
            (0..6)
                .map(|i| {
                    let text = if i == 5 { "\u{0}" } else { "y" };
                    edit(n + i, json!(0), json!(0), text, "main.py")
                })
                .collect(),
            &["invalid_text"],
        ),
        h(
            "an unknown top-level field",
            Body::Json(json!({"events": [valid()], "client": "evil"})),
            422,
            "invalid_body",
            &[],
        ),
        h(
            "events that are a string",
            Body::Json(json!({"events": "all of them"})),
            422,
            "invalid_body",
            &[],
        ),
        h(
            "a null body",
            Body::Json(Value::Null),
            422,
            "invalid_body",
            &[],
        ),
        h(
            "an empty batch",
            events_body(vec![]),
            422,
            "empty_batch",
            &[],
        ),
        h(
            "1001 events",
            events_body(
                (0..1001)
                    .map(|i| keystroke(json!(n + i), now.clone()))
                    .collect(),
            ),
            413,
            "batch_too_large",
            &[],
        ),
        h(
            "a sequence gap",
            events_body(vec![keystroke(json!(n + 5), now.clone())]),
            409,
            "sequence_gap",
            &[],
        ),
        h(
            "truncated JSON",
            raw(r#"{"events": [{"seq": 1,"#.to_string()),
            400,
            "malformed_json",
            &[],
        ),
        h(
            "binary garbage",
            Body::Raw(Some("application/json"), vec![0x00, 0xff, 0xfe, 0x7b, 0x0a]),
            400,
            "malformed_json",
            &[],
        ),
        h(
            "JSON nested 10,000 deep",
            raw(format!(
                r#"{{"events": {}{}}}"#,
                "[".repeat(10_000),
                "]".repeat(10_000)
            )),
            400,
            "malformed_json",
            &[],
        ),
        h(
            "text/plain",
            Body::Raw(
                Some("text/plain"),
                json!({"events": [valid()]}).to_string().into_bytes(),
            ),
            415,
            "unsupported_media_type",
            &[],
        ),
        h(
            "a form",
            Body::Raw(
                Some("application/x-www-form-urlencoded"),
                b"events=1".to_vec(),
            ),
            415,
            "unsupported_media_type",
            &[],
        ),
        h(
            "no content type",
            Body::Raw(None, json!({"events": [valid()]}).to_string().into_bytes()),
            415,
            "unsupported_media_type",
            &[],
        ),
        Hostile {
            token: Some(peer.token.clone()),
            ..h(
                "another session's token",
                events_body(vec![valid()]),
                404,
                "not_found",
                &[],
            )
        },
        Hostile {
            token: Some(stranger.token.clone()),
            ..h(
                "another organization's session token",
                events_body(vec![valid()]),
                404,
                "not_found",
                &[],
            )
        },
        Hostile {
            token: Some(format!("cst_{}_{}", me.session, "0".repeat(64))),
            ..h(
                "a forged token",
                events_body(vec![valid()]),
                401,
                "unauthenticated",
                &[],
            )
        },
        Hostile {
            token: None,
            ..h(
                "no Authorization header",
                events_body(vec![valid()]),
                401,
                "unauthenticated",
                &[],
            )
        },
        Hostile {
            path: "/v1/sessions/not-a-uuid/telemetry".into(),
            ..h(
                "a session id that is not a uuid",
                events_body(vec![valid()]),
                400,
                "invalid_path",
                &[],
            )
        },
    ]
}

/// Sends a request; 5xx and transport errors are the caller's to judge.
pub async fn send(
    client: &Client,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &Body,
) -> anyhow::Result<Reply> {
    let mut req = client
        .http
        .request(method, format!("{}{path}", client.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req = match body {
        Body::Json(v) => req.json(v),
        Body::Raw(content_type, bytes) => {
            let req = match content_type {
                Some(ct) => req.header("content-type", *ct),
                None => req,
            };
            req.body(bytes.clone())
        }
    };
    let res = req.send().await?;
    let status = res.status().as_u16();
    let bytes = res.bytes().await?;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Ok(Reply { status, body })
}

/// The reply, or `None` with the problem noted: every request must be answered.
pub fn answered(
    reply: anyhow::Result<Reply>,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<Reply> {
    match reply {
        Ok(r) => Some(r),
        Err(error) => {
            problems.push(format!("{what}: no answer: {error:#}"));
            None
        }
    }
}

/// Checks a refused request's answer: its status, its code, and for `invalid_events` each
/// event's reason.
pub fn judge(
    name: &str,
    reply: &Reply,
    status: u16,
    code: &str,
    details: &[&str],
) -> Option<String> {
    if reply.status != status || reply.code() != code {
        return Some(format!(
            "{name}: expected {status} {code}, got {} {}",
            reply.status, reply.body
        ));
    }
    if !details.is_empty() {
        let codes: Vec<&str> = reply.body["error"]["details"]
            .as_array()
            .map(|d| d.iter().filter_map(|e| e["code"].as_str()).collect())
            .unwrap_or_default();
        if codes.is_empty() || !codes.iter().all(|c| details.contains(c)) {
            return Some(format!(
                "{name}: expected per-event codes among {details:?}, got {codes:?}"
            ));
        }
    }
    None
}
