//! The telemetry vocabulary of the editor client.
//!
//! A client sends batches of events it numbers itself (`seq`, starting at 1, contiguous). Positions
//! in files are **UTF-16 code units** from the start of the file, the unit browser editors
//! (Monaco, CodeMirror) report. Keystroke events carry timing and a key *class*, never the
//! character typed.
//!
//! These types are also how readers decode telemetry records from the topic (and from
//! `session_events`), so they ignore unknown fields: a newer client or producer may add optional
//! fields (docs/events.md, "Versions and evolution"). A batch a client sends is parsed with
//! strict twins of these types (`body`) and validated by [`parse_batch`], so a client still gets
//! a 422 for a field Clarity does not know.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod batch;
mod body;

pub use batch::{
    parse_batch, BatchError, BatchLimits, EventRejection, TelemetryBatch, MAX_RECORD_BYTES,
};

/// One client-numbered telemetry event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TelemetryEvent {
    /// Client sequence number: 1, 2, 3, ... with no gaps within a session.
    #[schema(minimum = 1, maximum = 9_223_372_036_854_775_807_u64)]
    pub seq: u64,
    /// Wall-clock time on the client when the event happened: from 2000 on, not before the
    /// session started and not after the server's clock, each give or take the allowed clock
    /// skew (30 s by default).
    #[schema(pattern = "^[2-9][0-9]{3}-")]
    pub ts: DateTime<Utc>,
    /// What happened.
    pub data: TelemetryData,
}

/// Classes of keys; the character itself is never recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyClass {
    Letter,
    Digit,
    Whitespace,
    Punctuation,
    Enter,
    Backspace,
    Delete,
    Navigation,
    Modifier,
    Other,
}

/// Where the text of an edit came from, as the editor knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EditOrigin {
    Typed,
    Paste,
    Autocomplete,
    Undo,
    /// Any other change (a programmatic one, a cut).
    Other,
    /// Text dropped into the editor by drag and drop (from the page itself or from elsewhere);
    /// from 2026-12 (before, a drop was sent as `paste`).
    Drop,
    /// Text restored by redo; from 2026-12 (before, a redo was sent as `undo`).
    Redo,
}

impl EditOrigin {
    /// Text brought into the workspace rather than written in it: pasted or dropped.
    pub fn is_brought_in(self) -> bool {
        matches!(self, Self::Paste | Self::Drop)
    }

    /// Text restored from the editor's history: undo or redo.
    pub fn is_restored(self) -> bool {
        matches!(self, Self::Undo | Self::Redo)
    }
}

/// The payload of a telemetry event, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TelemetryData {
    /// A key press: key-down and key-up on the client's monotonic clock, in milliseconds.
    Keystroke {
        #[schema(minimum = 0)]
        down_ms: f64,
        /// Missing when the client never saw the key-up; never before `down_ms`.
        #[serde(default)]
        #[schema(minimum = 0)]
        up_ms: Option<f64>,
        key_class: KeyClass,
    },
    /// Text replaced in a file: `deleted` code units at `position` replaced by `inserted`.
    Edit {
        #[schema(
            pattern = "^(?!/)(?!(.*/)?\\.\\.(/|$))[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u001f\\u007f-\\u009f \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$",
            max_length = 512
        )]
        file: String,
        #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
        position: i64,
        #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
        deleted: i64,
        inserted: String,
        origin: EditOrigin,
    },
    /// A file was created, optionally with content.
    FileCreated {
        #[schema(
            pattern = "^(?!/)(?!(.*/)?\\.\\.(/|$))[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u001f\\u007f-\\u009f \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$",
            max_length = 512
        )]
        file: String,
        #[serde(default)]
        content: String,
    },
    /// A file was renamed.
    FileRenamed {
        #[schema(
            pattern = "^(?!/)(?!(.*/)?\\.\\.(/|$))[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u001f\\u007f-\\u009f \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$",
            max_length = 512
        )]
        file: String,
        #[schema(
            pattern = "^(?!/)(?!(.*/)?\\.\\.(/|$))[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u001f\\u007f-\\u009f \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$",
            max_length = 512
        )]
        new_file: String,
    },
    /// A file was deleted.
    FileDeleted {
        #[schema(
            pattern = "^(?!/)(?!(.*/)?\\.\\.(/|$))[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u001f\\u007f-\\u009f \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$",
            max_length = 512
        )]
        file: String,
    },
    /// The editor window lost focus (tab-away).
    FocusLost {},
    /// The editor window regained focus.
    FocusRegained {},
    /// Cursor moved or a selection changed.
    Cursor {
        #[schema(
            pattern = "^(?!/)(?!(.*/)?\\.\\.(/|$))[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u001f\\u007f-\\u009f \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$",
            max_length = 512
        )]
        file: String,
        #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
        position: i64,
        #[serde(default)]
        #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
        selection_end: Option<i64>,
    },
    /// The candidate ran code or tests.
    CodeRun {
        #[schema(max_length = 4096)]
        command: String,
        exit_code: i32,
        #[serde(default)]
        tests_passed: u32,
        #[serde(default)]
        tests_failed: u32,
        duration_ms: u64,
    },
    /// A face check computed on the client: a score, never an image or an embedding.
    FaceCheck {
        /// Similarity to the reference captured at start, 0..=1.
        #[schema(minimum = 0, maximum = 1)]
        similarity: f64,
        #[schema(
            pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
        )]
        model_id: String,
        #[schema(
            pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
        )]
        model_version: String,
        face_count: u32,
        /// Image quality estimate, 0..=1.
        #[schema(minimum = 0, maximum = 1)]
        quality: f64,
    },
}

impl TelemetryData {
    /// The stable snake_case type name used on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Keystroke { .. } => "keystroke",
            Self::Edit { .. } => "edit",
            Self::FileCreated { .. } => "file_created",
            Self::FileRenamed { .. } => "file_renamed",
            Self::FileDeleted { .. } => "file_deleted",
            Self::FocusLost {} => "focus_lost",
            Self::FocusRegained {} => "focus_regained",
            Self::Cursor { .. } => "cursor",
            Self::CodeRun { .. } => "code_run",
            Self::FaceCheck { .. } => "face_check",
        }
    }

    /// Every type name, for documentation and schema generation.
    pub const KINDS: [&'static str; 10] = [
        "keystroke",
        "edit",
        "file_created",
        "file_renamed",
        "file_deleted",
        "focus_lost",
        "focus_regained",
        "cursor",
        "code_run",
        "face_check",
    ];
}

/// Why one telemetry event was refused: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Longest accepted file path, in characters (what JSON Schema's `maxLength` counts).
pub const MAX_PATH_CHARS: usize = 512;

fn check_path(file: &str) -> Result<(), Rejection> {
    if file.trim().is_empty() {
        return Err(Rejection::new("missing_file", "`file` must name a file"));
    }
    if file.chars().count() > MAX_PATH_CHARS
        || file.starts_with('/')
        || file.split('/').any(|s| s == "..")
        || file.chars().any(char::is_control)
    {
        return Err(Rejection::new(
            "invalid_file",
            "`file` must be a relative path of at most 512 characters without `..` or control characters",
        ));
    }
    Ok(())
}

/// Text PostgreSQL can store: no NUL (U+0000), which neither `text` nor `jsonb` accepts — a NUL
/// that reached the log used to stop the projections (issue 11).
fn check_text(value: &str, field: &str) -> Result<(), Rejection> {
    if value.contains('\0') {
        return Err(Rejection::new(
            "invalid_text",
            format!("`{field}` must not contain NUL (U+0000)"),
        ));
    }
    Ok(())
}

/// The earliest `ts` accepted from any client. Sessions are checked against their own start too
/// (by the API, which knows it); this bound keeps every timestamp inside what PostgreSQL stores.
pub fn earliest_timestamp() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(946_684_800, 0).expect("2000-01-01 is a valid timestamp")
}

fn check_unit(value: f64, field: &str) -> Result<(), Rejection> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Rejection::new(
            "out_of_range",
            format!("`{field}` must be between 0 and 1"),
        ))
    }
}

impl TelemetryEvent {
    /// Checks the event on its own: times not in the future (beyond `max_skew`), positions and
    /// lengths non-negative, files named, scores in range.
    pub fn validate(&self, now: DateTime<Utc>, max_skew: Duration) -> Result<(), Rejection> {
        if self.seq == 0 {
            return Err(Rejection::new("invalid_seq", "`seq` starts at 1"));
        }
        if i64::try_from(self.seq).is_err() {
            // Stored as bigint: a larger value would wrap and read as a duplicate.
            return Err(Rejection::new(
                "invalid_seq",
                format!("`seq` is at most {}", i64::MAX),
            ));
        }
        if self.ts > now + max_skew {
            return Err(Rejection::new(
                "timestamp_in_future",
                format!("`ts` {} is after the server's clock {}", self.ts, now),
            ));
        }
        if self.ts < earliest_timestamp() {
            return Err(Rejection::new(
                "timestamp_too_early",
                format!("`ts` {} is before {}", self.ts, earliest_timestamp()),
            ));
        }
        match &self.data {
            TelemetryData::Keystroke { down_ms, up_ms, .. } => {
                if !down_ms.is_finite() || *down_ms < 0.0 {
                    return Err(Rejection::new(
                        "invalid_timing",
                        "`down_ms` must be a non-negative number",
                    ));
                }
                if let Some(up) = up_ms {
                    if !up.is_finite() || up < down_ms {
                        return Err(Rejection::new(
                            "invalid_timing",
                            "`up_ms` must not be before `down_ms`",
                        ));
                    }
                }
            }
            TelemetryData::Edit {
                file,
                position,
                deleted,
                inserted,
                ..
            } => {
                check_path(file)?;
                check_text(inserted, "inserted")?;
                if *position < 0 {
                    return Err(Rejection::new(
                        "negative_position",
                        "`position` must be >= 0",
                    ));
                }
                if *deleted < 0 {
                    return Err(Rejection::new("negative_length", "`deleted` must be >= 0"));
                }
            }
            TelemetryData::FileCreated { file, content } => {
                check_path(file)?;
                check_text(content, "content")?;
            }
            TelemetryData::FileDeleted { file } => check_path(file)?,
            TelemetryData::FileRenamed { file, new_file } => {
                check_path(file)?;
                check_path(new_file)?;
            }
            TelemetryData::Cursor {
                file,
                position,
                selection_end,
            } => {
                check_path(file)?;
                if *position < 0 || selection_end.is_some_and(|s| s < 0) {
                    return Err(Rejection::new(
                        "negative_position",
                        "`position` and `selection_end` must be >= 0",
                    ));
                }
            }
            TelemetryData::CodeRun { command, .. } => {
                if command.chars().count() > 4096 {
                    return Err(Rejection::new(
                        "too_long",
                        "`command` is limited to 4096 characters",
                    ));
                }
                check_text(command, "command")?;
            }
            TelemetryData::FaceCheck {
                similarity,
                quality,
                model_id,
                model_version,
                ..
            } => {
                check_unit(*similarity, "similarity")?;
                check_unit(*quality, "quality")?;
                if model_id.trim().is_empty() || model_version.trim().is_empty() {
                    return Err(Rejection::new(
                        "missing_model",
                        "`model_id` and `model_version` are required",
                    ));
                }
                check_text(model_id, "model_id")?;
                check_text(model_version, "model_version")?;
            }
            TelemetryData::FocusLost {} | TelemetryData::FocusRegained {} => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<TelemetryEvent, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn an_edit_round_trips_through_json() {
        let json = r#"{"seq":3,"ts":"2026-01-01T00:00:00Z","data":{"type":"edit","file":"a.rs","position":4,"deleted":1,"inserted":"é","origin":"paste"}}"#;
        let event = parse(json).unwrap();
        assert_eq!(event.data.kind(), "edit");
        assert_eq!(serde_json::to_string(&event).unwrap(), json);
    }

    #[test]
    fn readers_ignore_fields_a_newer_client_added() {
        let event = parse(
            r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","extra":1,"data":{"type":"cursor","file":"a.rs","position":2,"why":"x"}}"#,
        )
        .unwrap();
        assert_eq!(
            event.data,
            TelemetryData::Cursor {
                file: "a.rs".into(),
                position: 2,
                selection_end: None,
            }
        );
    }

    #[test]
    fn nul_characters_and_timestamps_before_2000_are_rejected_with_codes() {
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let skew = Duration::seconds(30);
        let edit = |file: &str, inserted: &str| TelemetryEvent {
            seq: 1,
            ts: now,
            data: TelemetryData::Edit {
                file: file.into(),
                position: 0,
                deleted: 0,
                inserted: inserted.into(),
                origin: EditOrigin::Typed,
            },
        };
        let code = |e: TelemetryEvent| e.validate(now, skew).err().map(|r| r.code);
        assert_eq!(code(edit("a.py", "fine\ttext\n")), None);
        assert_eq!(code(edit("a.py", "nul\0byte")), Some("invalid_text"));
        assert_eq!(code(edit("a\0.py", "x")), Some("invalid_file"));
        assert_eq!(code(edit("a\u{7}.py", "x")), Some("invalid_file"));
        let ancient = year_start(-5000);
        assert_eq!(
            code(TelemetryEvent {
                seq: 1,
                ts: ancient,
                data: TelemetryData::FocusLost {}
            }),
            Some("timestamp_too_early")
        );
    }

    fn year_start(year: i32) -> DateTime<Utc> {
        chrono::NaiveDate::from_ymd_opt(year, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
    }

    #[test]
    fn negative_positions_missing_files_and_future_times_are_rejected_with_codes() {
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let skew = Duration::seconds(30);
        let edit = |file: &str, position: i64| TelemetryEvent {
            seq: 1,
            ts: now,
            data: TelemetryData::Edit {
                file: file.into(),
                position,
                deleted: 0,
                inserted: "x".into(),
                origin: EditOrigin::Typed,
            },
        };
        assert_eq!(
            edit("a.rs", -1).validate(now, skew).unwrap_err().code,
            "negative_position"
        );
        assert_eq!(
            edit("", 0).validate(now, skew).unwrap_err().code,
            "missing_file"
        );
        assert_eq!(
            edit("../etc/passwd", 0)
                .validate(now, skew)
                .unwrap_err()
                .code,
            "invalid_file"
        );
        let mut future = edit("a.rs", 0);
        future.ts = now + Duration::seconds(31);
        assert_eq!(
            future.validate(now, skew).unwrap_err().code,
            "timestamp_in_future"
        );
        assert!(edit("a.rs", 0).validate(now, skew).is_ok());
    }

    #[test]
    fn face_scores_outside_zero_to_one_are_rejected() {
        let now = Utc::now();
        let ev = TelemetryEvent {
            seq: 1,
            ts: now,
            data: TelemetryData::FaceCheck {
                similarity: 1.5,
                model_id: "m".into(),
                model_version: "1".into(),
                face_count: 1,
                quality: 0.9,
            },
        };
        assert_eq!(
            ev.validate(now, Duration::zero()).unwrap_err().code,
            "out_of_range"
        );
    }
}
