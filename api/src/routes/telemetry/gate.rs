//! The per-session gate of telemetry ingestion: what a session has recorded so far (events,
//! bytes, its workspace's files and their lengths) and the rules a new batch must keep.
//!
//! The gate is kept in the session's cursor row (`telemetry_cursors`) and moves with `last_seq`,
//! only after the broker acknowledged a batch. A batch is checked against the gate as it was
//! read before producing; two racing copies of one batch are checked against the same state and
//! only the first to move the cursor moves the gate.
//!
//! The workspace rules are the replay engine's (`clarity_projections::replay_engine`): an edit
//! or a cursor names a file that exists, at a position inside it (UTF-16 code units, as browser
//! editors count); a file is created, or renamed onto, a path that is free. What the engine
//! would flag as an anomaly after the fact is refused here with a reason, so a client learns of
//! its bug at once and the replay stays faithful.

use std::collections::BTreeMap;

use clarity_domain::telemetry::{TelemetryData, TelemetryEvent};
use serde::{Deserialize, Serialize};

/// The caps of one session.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_events: i64,
    pub max_bytes: i64,
    pub max_workspace_units: i64,
    pub max_files: usize,
}

/// What a session has recorded so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub events: i64,
    pub bytes: i64,
    /// Each file of the workspace and its length in UTF-16 code units.
    pub files: BTreeMap<String, i64>,
    /// The workspace is unknown: the session's telemetry began before the gate kept files (an
    /// upgrade mid-session). Its workspace rules are left to the replay engine; the caps on
    /// events and bytes still hold.
    #[serde(skip)]
    pub legacy: bool,
}

/// Why a batch was refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// One event breaks a workspace rule: its index in the batch, a stable code and a message.
    Event {
        index: usize,
        code: &'static str,
        message: String,
    },
    /// The batch would take the session past one of its caps.
    Cap { code: &'static str, message: String },
}

impl Gate {
    /// The gate as stored in the session's cursor row (`files` NULL: begun before the gate kept
    /// files, unless nothing was recorded yet).
    pub fn from_row(
        last_seq: i64,
        events: i64,
        bytes: i64,
        files: Option<BTreeMap<String, i64>>,
    ) -> Self {
        Self {
            events,
            bytes,
            legacy: files.is_none() && last_seq > 0,
            files: files.unwrap_or_default(),
        }
    }
}

fn units(text: &str) -> i64 {
    text.encode_utf16().count() as i64
}

impl Gate {
    /// Admits `batch` (events with the size of each as a record) or says why not; on success
    /// `self` is the gate after the batch. On refusal `self` is unspecified: callers check a copy.
    pub fn admit(
        &mut self,
        batch: &[(&TelemetryEvent, usize)],
        limits: &Limits,
    ) -> Result<(), Refusal> {
        let events = self.events + batch.len() as i64;
        if events > limits.max_events {
            return Err(Refusal::Cap {
                code: "session_event_limit",
                message: format!(
                    "a session records at most {} telemetry events; this one has {} and the batch holds {}",
                    limits.max_events,
                    self.events,
                    batch.len()
                ),
            });
        }
        let bytes = self.bytes + batch.iter().map(|(_, size)| *size as i64).sum::<i64>();
        if bytes > limits.max_bytes {
            return Err(Refusal::Cap {
                code: "session_byte_limit",
                message: format!(
                    "a session records at most {} bytes of telemetry; this batch would take it to {bytes}",
                    limits.max_bytes
                ),
            });
        }
        if !self.legacy {
            self.admit_workspace(batch, limits)?;
        }
        self.events = events;
        self.bytes = bytes;
        Ok(())
    }

    fn admit_workspace(
        &mut self,
        batch: &[(&TelemetryEvent, usize)],
        limits: &Limits,
    ) -> Result<(), Refusal> {
        for (index, (event, _)) in batch.iter().enumerate() {
            self.apply(&event.data)
                .map_err(|(code, message)| Refusal::Event {
                    index,
                    code,
                    message,
                })?;
        }
        if self.files.len() > limits.max_files {
            return Err(Refusal::Cap {
                code: "workspace_too_many_files",
                message: format!("a workspace holds at most {} files", limits.max_files),
            });
        }
        let size: i64 = self.files.values().sum();
        if size > limits.max_workspace_units {
            return Err(Refusal::Cap {
                code: "workspace_too_large",
                message: format!(
                    "a workspace holds at most {} characters (UTF-16 units) in all its files; this batch would make it {size}",
                    limits.max_workspace_units
                ),
            });
        }
        Ok(())
    }

    fn length(&self, file: &str) -> Result<i64, (&'static str, String)> {
        self.files.get(file).copied().ok_or_else(|| {
            (
                "unknown_file",
                format!("`{file}` does not exist; send `file_created` first"),
            )
        })
    }

    fn within(file: &str, length: i64, field: &str, at: i64) -> Result<(), (&'static str, String)> {
        if (0..=length).contains(&at) {
            Ok(())
        } else {
            Err((
                "position_out_of_range",
                format!("`{field}` {at} is outside `{file}` ({length} units long)"),
            ))
        }
    }

    fn free(&self, file: &str) -> Result<(), (&'static str, String)> {
        if self.files.contains_key(file) {
            Err(("file_exists", format!("`{file}` already exists")))
        } else {
            Ok(())
        }
    }

    fn apply(&mut self, data: &TelemetryData) -> Result<(), (&'static str, String)> {
        match data {
            TelemetryData::Edit {
                file,
                position,
                deleted,
                inserted,
                ..
            } => {
                let length = self.length(file)?;
                Self::within(file, length, "position", *position)?;
                Self::within(
                    file,
                    length,
                    "position + deleted",
                    position.saturating_add(*deleted),
                )?;
                self.files
                    .insert(file.clone(), length - deleted + units(inserted));
            }
            TelemetryData::Cursor {
                file,
                position,
                selection_end,
            } => {
                let length = self.length(file)?;
                Self::within(file, length, "position", *position)?;
                if let Some(end) = selection_end {
                    Self::within(file, length, "selection_end", *end)?;
                }
            }
            TelemetryData::FileCreated { file, content } => {
                self.free(file)?;
                self.files.insert(file.clone(), units(content));
            }
            TelemetryData::FileRenamed { file, new_file } => {
                let length = self.length(file)?;
                self.free(new_file)?;
                self.files.remove(file);
                self.files.insert(new_file.clone(), length);
            }
            TelemetryData::FileDeleted { file } => {
                self.length(file)?;
                self.files.remove(file);
            }
            TelemetryData::Keystroke { .. }
            | TelemetryData::FocusLost {}
            | TelemetryData::FocusRegained {}
            | TelemetryData::CodeRun { .. }
            | TelemetryData::FaceCheck { .. } => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use clarity_domain::telemetry::EditOrigin;

    const LIMITS: Limits = Limits {
        max_events: 10,
        max_bytes: 1000,
        max_workspace_units: 20,
        max_files: 2,
    };

    fn event(seq: u64, data: TelemetryData) -> TelemetryEvent {
        TelemetryEvent {
            seq,
            ts: Utc::now(),
            data,
        }
    }

    fn created(file: &str, content: &str) -> TelemetryData {
        TelemetryData::FileCreated {
            file: file.into(),
            content: content.into(),
        }
    }

    fn edit(file: &str, position: i64, deleted: i64, inserted: &str) -> TelemetryData {
        TelemetryData::Edit {
            file: file.into(),
            position,
            deleted,
            inserted: inserted.into(),
            origin: EditOrigin::Typed,
        }
    }

    fn admit(gate: &mut Gate, data: Vec<TelemetryData>) -> Result<(), Refusal> {
        let events: Vec<TelemetryEvent> = data
            .into_iter()
            .enumerate()
            .map(|(i, d)| event(i as u64 + 1, d))
            .collect();
        let batch: Vec<(&TelemetryEvent, usize)> = events.iter().map(|e| (e, 10)).collect();
        gate.admit(&batch, &LIMITS)
    }

    fn code(result: Result<(), Refusal>) -> &'static str {
        match result {
            Ok(()) => "ok",
            Err(Refusal::Event { code, .. } | Refusal::Cap { code, .. }) => code,
        }
    }

    #[test]
    fn the_workspace_follows_creates_edits_renames_and_deletes_in_utf16_units() {
        let mut gate = Gate::default();
        admit(
            &mut gate,
            vec![
                created("a.py", "é😀"),  // 1 + 2 units
                edit("a.py", 3, 0, "x"), // at the end
                edit("a.py", 0, 1, ""),  // delete é
                TelemetryData::FileRenamed {
                    file: "a.py".into(),
                    new_file: "b.py".into(),
                },
            ],
        )
        .unwrap();
        assert_eq!(gate.files, BTreeMap::from([("b.py".to_string(), 3)]));
        assert_eq!((gate.events, gate.bytes), (4, 40));
        admit(
            &mut gate,
            vec![TelemetryData::FileDeleted {
                file: "b.py".into(),
            }],
        )
        .unwrap();
        assert!(gate.files.is_empty());
    }

    #[test]
    fn an_edit_or_cursor_in_a_file_never_created_is_refused() {
        let mut gate = Gate::default();
        assert_eq!(
            code(admit(&mut gate, vec![edit("main.py", 0, 0, "x")])),
            "unknown_file"
        );
        let mut gate = Gate::default();
        let cursor = TelemetryData::Cursor {
            file: "main.py".into(),
            position: 0,
            selection_end: None,
        };
        assert_eq!(code(admit(&mut gate, vec![cursor])), "unknown_file");
    }

    #[test]
    fn positions_outside_the_file_and_taken_paths_are_refused_with_the_event_index() {
        let mut gate = Gate::default();
        let result = admit(
            &mut gate,
            vec![created("a.py", "abc"), edit("a.py", 2, 2, "")],
        );
        assert_eq!(
            result,
            Err(Refusal::Event {
                index: 1,
                code: "position_out_of_range",
                message: "`position + deleted` 4 is outside `a.py` (3 units long)".into()
            })
        );
        let mut gate = Gate::default();
        assert_eq!(
            code(admit(
                &mut gate,
                vec![created("a.py", ""), created("a.py", "")]
            )),
            "file_exists"
        );
        let mut gate = Gate::default();
        assert_eq!(
            code(admit(
                &mut gate,
                vec![created("a.py", ""), edit("a.py", -1, 0, "")]
            )),
            "position_out_of_range"
        );
    }

    #[test]
    fn caps_on_events_bytes_files_and_workspace_size() {
        let mut gate = Gate::default();
        let many = vec![TelemetryData::FocusLost {}; 11];
        assert_eq!(code(admit(&mut gate, many)), "session_event_limit");
        let mut gate = Gate {
            bytes: 995,
            ..Gate::default()
        };
        assert_eq!(
            code(admit(&mut gate, vec![TelemetryData::FocusLost {}])),
            "session_byte_limit"
        );
        let mut gate = Gate::default();
        let three = vec![created("a", ""), created("b", ""), created("c", "")];
        assert_eq!(code(admit(&mut gate, three)), "workspace_too_many_files");
        let mut gate = Gate::default();
        let large = vec![
            created("a", &"x".repeat(15)),
            edit("a", 15, 0, &"y".repeat(6)),
        ];
        assert_eq!(code(admit(&mut gate, large)), "workspace_too_large");
        // Exactly at the caps is fine.
        let mut gate = Gate::default();
        admit(&mut gate, vec![created("a", &"x".repeat(20))]).unwrap();
    }

    #[test]
    fn a_session_begun_before_the_gate_kept_files_is_only_capped() {
        let mut gate = Gate {
            legacy: true,
            ..Gate::default()
        };
        admit(&mut gate, vec![edit("main.py", 7, 0, "x")]).unwrap();
        assert_eq!(gate.events, 1);
        let many = vec![TelemetryData::FocusLost {}; 10];
        assert_eq!(code(admit(&mut gate, many)), "session_event_limit");
    }
}
