/**
 * The telemetry wire contract, mirrored from the Rust types that define it:
 * `domain/src/telemetry.rs` (`TelemetryEvent`, `TelemetryData`, `KeyClass`, `EditOrigin`),
 * `domain/src/telemetry/batch.rs` (`TelemetryBatch`, `EventRejection`) and
 * `api/src/routes/telemetry.rs` (`IngestResult`), as published in `docs/schemas/openapi.json`.
 *
 * Field names, optionality and the `type` tags are exactly the server's: the API refuses unknown
 * fields in a request (422 `invalid_events`), so nothing may be added here that the server does
 * not know. `test/wire.test.ts` checks these lists against the committed JSON Schemas.
 */

/** Classes of keys; the character itself is never recorded. */
export type KeyClass =
  | "letter"
  | "digit"
  | "whitespace"
  | "punctuation"
  | "enter"
  | "backspace"
  | "delete"
  | "navigation"
  | "modifier"
  | "other";

/** Every key class, in the Rust enum's order. */
export const KEY_CLASSES: readonly KeyClass[] = [
  "letter",
  "digit",
  "whitespace",
  "punctuation",
  "enter",
  "backspace",
  "delete",
  "navigation",
  "modifier",
  "other",
];

/**
 * Where the text of an edit came from, as the editor knows it. `drop` (drag and drop) is text
 * brought in like a paste (the server tells an internal move from an external one by content);
 * `redo` restores remembered text like `undo`.
 */
export type EditOrigin = "typed" | "paste" | "autocomplete" | "undo" | "other" | "drop" | "redo";

/** Every edit origin, in the Rust enum's order. */
export const EDIT_ORIGINS: readonly EditOrigin[] = ["typed", "paste", "autocomplete", "undo", "other", "drop", "redo"];

/** A key press: key-down and key-up on the client's monotonic clock, in milliseconds. */
export interface KeystrokeData {
  type: "keystroke";
  down_ms: number;
  /** Missing when the client never saw the key-up; never before `down_ms`. */
  up_ms?: number;
  key_class: KeyClass;
}

/** Text replaced in a file: `deleted` UTF-16 code units at `position` replaced by `inserted`. */
export interface EditData {
  type: "edit";
  file: string;
  position: number;
  deleted: number;
  inserted: string;
  origin: EditOrigin;
}

/** A file was created, optionally with content. */
export interface FileCreatedData {
  type: "file_created";
  file: string;
  content?: string;
}

/** A file was renamed. */
export interface FileRenamedData {
  type: "file_renamed";
  file: string;
  new_file: string;
}

/** A file was deleted. */
export interface FileDeletedData {
  type: "file_deleted";
  file: string;
}

/** The editor window lost focus (tab-away). */
export interface FocusLostData {
  type: "focus_lost";
}

/** The editor window regained focus. */
export interface FocusRegainedData {
  type: "focus_regained";
}

/** Cursor moved or a selection changed (UTF-16 positions). */
export interface CursorData {
  type: "cursor";
  file: string;
  position: number;
  selection_end?: number;
}

/** The candidate ran code or tests. */
export interface CodeRunData {
  type: "code_run";
  command: string;
  exit_code: number;
  tests_passed?: number;
  tests_failed?: number;
  duration_ms: number;
}

/** A face check computed on the client: a score, never an image or an embedding. */
export interface FaceCheckData {
  type: "face_check";
  /** Similarity to the reference captured at start, 0..=1. */
  similarity: number;
  model_id: string;
  model_version: string;
  face_count: number;
  /** Image quality estimate, 0..=1. */
  quality: number;
}

/** The payload of a telemetry event, tagged by `type` (Rust `TelemetryData`). */
export type TelemetryData =
  | KeystrokeData
  | EditData
  | FileCreatedData
  | FileRenamedData
  | FileDeletedData
  | FocusLostData
  | FocusRegainedData
  | CursorData
  | CodeRunData
  | FaceCheckData;

/** A telemetry kind: the `type` of its data. */
export type TelemetryKind = TelemetryData["type"];

/** Every kind, in the order of Rust's `TelemetryData::KINDS`. */
export const KINDS: readonly TelemetryKind[] = [
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

/** One client-numbered telemetry event (Rust `TelemetryEvent`). */
export interface TelemetryEvent {
  /** 1, 2, 3, ... with no gaps within a session. */
  seq: number;
  /** Wall-clock time of the event, RFC 3339 (`Date.prototype.toISOString`). */
  ts: string;
  data: TelemetryData;
}

/** The request body of `POST /v1/sessions/{session_id}/telemetry`. */
export interface TelemetryBatch {
  events: TelemetryEvent[];
}

/** The 200 answer: what happened to a batch. */
export interface IngestResult {
  /** Events produced to the broker and acknowledged. */
  accepted: number;
  /** Events skipped because they were already acknowledged (a retried batch). */
  duplicates: number;
  /** The highest acknowledged `seq` of the session. */
  last_seq: number;
}

/** Why one event of a refused batch was refused (`details` of 422 `invalid_events`). */
export interface EventRejection {
  index: number;
  seq: number | null;
  code: string;
  message: string;
}

/** The body of every error response. */
export interface ErrorBody {
  error: {
    /** Stable, machine-readable code (snake_case). */
    code: string;
    message: string;
    details?: unknown;
  };
}

/** Limits the server applies, with their defaults (`api/src/config.rs`, `domain/src/telemetry`). */
export const SERVER_LIMITS = {
  /** `CLARITY_MAX_BATCH_EVENTS`: most events in one batch. */
  maxBatchEvents: 1000,
  /** `CLARITY_MAX_BATCH_BYTES`: largest batch body. */
  maxBatchBytes: 1_048_576,
  /** `MAX_RECORD_BYTES`: largest event as a CloudEvent record. */
  maxRecordBytes: 900_000,
  /** `MAX_PATH_CHARS`: longest file path, in Unicode scalar values. */
  maxPathChars: 512,
  /** `code_run.command` limit, in Unicode scalar values. */
  maxCommandChars: 4096,
  /** `CLARITY_MAX_CLOCK_SKEW_SECONDS`: how far past the server's clock a `ts` may be. */
  maxClockSkewMs: 30_000,
  /** The earliest `ts` any client may send (2000-01-01). */
  earliestTimestampMs: 946_684_800_000,
} as const;

/** The path of the ingestion endpoint for a session. */
export function telemetryPath(sessionId: string): string {
  return `/v1/sessions/${encodeURIComponent(sessionId)}/telemetry`;
}
