//! The strict shape of a telemetry event in a request body.
//!
//! [`TelemetryEvent`] is also how readers decode telemetry records from the topic, so it ignores
//! unknown fields (a newer producer may add some). A client, though, must hear about a field
//! Clarity does not know (a typo, a field of a newer client version), so a batch is parsed into
//! these twins, which deny unknown fields, and converted. The API's generic check (`ApiJson`)
//! cannot do this here: serde_ignored does not see inside internally tagged enums such as
//! `TelemetryData`. The conversion destructures every variant, so a field added to one side and
//! not the other does not compile.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{EditOrigin, KeyClass, TelemetryData, TelemetryEvent};
// Integers may be spelled `41.0`: the same JSON number (crate::whole_number).
use crate::whole_number::{int as whole, opt_int as opt_whole};

/// A telemetry event as a client sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventBody {
    #[serde(deserialize_with = "whole")]
    seq: u64,
    ts: DateTime<Utc>,
    data: DataBody,
}

/// `TelemetryData` as a client sends it (see the domain type for the meaning of each field).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum DataBody {
    Keystroke {
        down_ms: f64,
        #[serde(default)]
        up_ms: Option<f64>,
        key_class: KeyClass,
    },
    Edit {
        file: String,
        #[serde(deserialize_with = "whole")]
        position: i64,
        #[serde(deserialize_with = "whole")]
        deleted: i64,
        inserted: String,
        origin: EditOrigin,
    },
    FileCreated {
        file: String,
        #[serde(default)]
        content: String,
    },
    FileRenamed {
        file: String,
        new_file: String,
    },
    FileDeleted {
        file: String,
    },
    FocusLost {},
    FocusRegained {},
    Cursor {
        file: String,
        #[serde(deserialize_with = "whole")]
        position: i64,
        #[serde(default, deserialize_with = "opt_whole")]
        selection_end: Option<i64>,
    },
    CodeRun {
        command: String,
        #[serde(deserialize_with = "whole")]
        exit_code: i32,
        #[serde(default, deserialize_with = "whole")]
        tests_passed: u32,
        #[serde(default, deserialize_with = "whole")]
        tests_failed: u32,
        #[serde(deserialize_with = "whole")]
        duration_ms: u64,
    },
    FaceCheck {
        similarity: f64,
        model_id: String,
        model_version: String,
        #[serde(deserialize_with = "whole")]
        face_count: u32,
        quality: f64,
    },
}

impl From<EventBody> for TelemetryEvent {
    fn from(body: EventBody) -> Self {
        let EventBody { seq, ts, data } = body;
        Self {
            seq,
            ts,
            data: data.into(),
        }
    }
}

impl From<DataBody> for TelemetryData {
    fn from(body: DataBody) -> Self {
        use DataBody as B;
        match body {
            B::Keystroke {
                down_ms,
                up_ms,
                key_class,
            } => Self::Keystroke {
                down_ms,
                up_ms,
                key_class,
            },
            B::Edit {
                file,
                position,
                deleted,
                inserted,
                origin,
            } => Self::Edit {
                file,
                position,
                deleted,
                inserted,
                origin,
            },
            B::FileCreated { file, content } => Self::FileCreated { file, content },
            B::FileRenamed { file, new_file } => Self::FileRenamed { file, new_file },
            B::FileDeleted { file } => Self::FileDeleted { file },
            B::FocusLost {} => Self::FocusLost {},
            B::FocusRegained {} => Self::FocusRegained {},
            B::Cursor {
                file,
                position,
                selection_end,
            } => Self::Cursor {
                file,
                position,
                selection_end,
            },
            B::CodeRun {
                command,
                exit_code,
                tests_passed,
                tests_failed,
                duration_ms,
            } => Self::CodeRun {
                command,
                exit_code,
                tests_passed,
                tests_failed,
                duration_ms,
            },
            B::FaceCheck {
                similarity,
                model_id,
                model_version,
                face_count,
                quality,
            } => Self::FaceCheck {
                similarity,
                model_id,
                model_version,
                face_count,
                quality,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> serde_json::Result<TelemetryEvent> {
        serde_json::from_str::<EventBody>(json).map(TelemetryEvent::from)
    }

    #[test]
    fn a_request_body_with_an_unknown_field_is_refused_at_any_depth() {
        assert!(parse(
            r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","data":{"type":"focus_lost","why":"x"}}"#
        )
        .is_err());
        assert!(parse(
            r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","extra":1,"data":{"type":"focus_lost"}}"#
        )
        .is_err());
    }

    #[test]
    fn every_kind_parses_into_the_same_event_the_domain_type_reads() {
        let bodies = [
            r#"{"type":"keystroke","down_ms":1.5,"up_ms":2.0,"key_class":"letter"}"#,
            r#"{"type":"edit","file":"a.rs","position":4,"deleted":1,"inserted":"é","origin":"paste"}"#,
            r#"{"type":"file_created","file":"a.rs","content":"x"}"#,
            r#"{"type":"file_renamed","file":"a.rs","new_file":"b.rs"}"#,
            r#"{"type":"file_deleted","file":"a.rs"}"#,
            r#"{"type":"focus_lost"}"#,
            r#"{"type":"focus_regained"}"#,
            r#"{"type":"cursor","file":"a.rs","position":1,"selection_end":3}"#,
            r#"{"type":"code_run","command":"cargo test","exit_code":0,"tests_passed":3,"tests_failed":1,"duration_ms":900}"#,
            r#"{"type":"face_check","similarity":0.9,"model_id":"m","model_version":"1","face_count":1,"quality":0.8}"#,
        ];
        for data in bodies {
            let json = format!(r#"{{"seq":1,"ts":"2026-01-01T00:00:00Z","data":{data}}}"#);
            let strict = parse(&json).unwrap();
            let tolerant: TelemetryEvent = serde_json::from_str(&json).unwrap();
            assert_eq!(strict, tolerant, "{data}");
        }
        assert_eq!(bodies.len(), TelemetryData::KINDS.len());
    }
}
