/**
 * The server's per-event checks (`TelemetryEvent::validate` in `domain/src/telemetry.rs`) and
 * its workspace rules (`api/src/routes/telemetry/gate.rs`), run at capture time.
 *
 * Why here too: a batch is all-or-nothing and `seq` is contiguous, so one event the server
 * refuses blocks every event after it for good. An event that would be refused is kept out of
 * the queue instead, and reported (the front end's bug, or text the contract cannot carry such
 * as U+0000), while everything else keeps flowing.
 */

import type { TelemetryData } from "./wire";
import { SERVER_LIMITS } from "./wire";

/** A local refusal: the server's code for the same problem and a message. */
export interface Refusal {
  code: string;
  message: string;
}

// Rust's `char::is_control`: the Unicode Cc category.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// The whitespace the schema's path pattern excludes as a path's only characters (controls are
// refused on their own).
const BLANK = /^[ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
// `str::trim` for model ids: Unicode White_Space.
const WHITE = /^[\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

/** Unicode scalar values in `text` (what the server's character limits count). */
export function scalarCount(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}

/**
 * Whether `file` is a path the server accepts: relative, at most 512 characters, no `..`
 * segment, no control characters, not blank. `null` when it is; the refusal otherwise. A file
 * tree can call this before it creates or renames a file.
 */
export function checkPath(file: string): Refusal | null {
  if (BLANK.test(file)) return { code: "missing_file", message: "`file` must name a file" };
  if (
    scalarCount(file) > SERVER_LIMITS.maxPathChars ||
    file.startsWith("/") ||
    file.split("/").some((s) => s === "..") ||
    CONTROL.test(file)
  ) {
    return {
      code: "invalid_file",
      message:
        "`file` must be a relative path of at most 512 characters without `..` or control characters",
    };
  }
  return null;
}

function checkText(value: string, field: string): Refusal | null {
  return value.includes("\u0000")
    ? { code: "invalid_text", message: `\`${field}\` must not contain NUL (U+0000)` }
    : null;
}

function isPosition(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function isUnit(value: number): boolean {
  return Number.isFinite(value) && value >= 0 && value <= 1;
}

/** The server's checks of one event on its own, minus the clock (the capture sets `ts`). */
export function checkData(data: TelemetryData): Refusal | null {
  switch (data.type) {
    case "keystroke":
      if (!Number.isFinite(data.down_ms) || data.down_ms < 0) {
        return { code: "invalid_timing", message: "`down_ms` must be a non-negative number" };
      }
      if (data.up_ms !== undefined && !(Number.isFinite(data.up_ms) && data.up_ms >= data.down_ms)) {
        return { code: "invalid_timing", message: "`up_ms` must not be before `down_ms`" };
      }
      return null;
    case "edit":
      return (
        checkPath(data.file) ??
        checkText(data.inserted, "inserted") ??
        (isPosition(data.position)
          ? null
          : { code: "negative_position", message: "`position` must be an integer >= 0" }) ??
        (isPosition(data.deleted)
          ? null
          : { code: "negative_length", message: "`deleted` must be an integer >= 0" })
      );
    case "file_created":
      return checkPath(data.file) ?? checkText(data.content ?? "", "content");
    case "file_deleted":
      return checkPath(data.file);
    case "file_renamed":
      return checkPath(data.file) ?? checkPath(data.new_file);
    case "cursor":
      return (
        checkPath(data.file) ??
        (isPosition(data.position) &&
        (data.selection_end === undefined || isPosition(data.selection_end))
          ? null
          : {
              code: "negative_position",
              message: "`position` and `selection_end` must be integers >= 0",
            })
      );
    case "code_run":
      if (scalarCount(data.command) > SERVER_LIMITS.maxCommandChars) {
        return { code: "too_long", message: "`command` is limited to 4096 characters" };
      }
      if (
        !Number.isInteger(data.exit_code) ||
        data.exit_code < -2147483648 ||
        data.exit_code > 2147483647 ||
        !isPosition(data.duration_ms) ||
        !isU32(data.tests_passed ?? 0) ||
        !isU32(data.tests_failed ?? 0)
      ) {
        return { code: "invalid_event", message: "`code_run` numbers must be integers in range" };
      }
      return checkText(data.command, "command");
    case "face_check":
      if (!isUnit(data.similarity)) {
        return { code: "out_of_range", message: "`similarity` must be between 0 and 1" };
      }
      if (!isUnit(data.quality)) {
        return { code: "out_of_range", message: "`quality` must be between 0 and 1" };
      }
      if (WHITE.test(data.model_id) || WHITE.test(data.model_version)) {
        return { code: "missing_model", message: "`model_id` and `model_version` are required" };
      }
      if (!isU32(data.face_count)) {
        return { code: "invalid_event", message: "`face_count` must be an integer >= 0" };
      }
      return checkText(data.model_id, "model_id") ?? checkText(data.model_version, "model_version");
    case "focus_lost":
    case "focus_regained":
      return null;
  }
}

function isU32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
}

/**
 * The workspace as the server's gate sees it: each file and its length in UTF-16 code units.
 * An edit or cursor must name an existing file at a position inside it; a file is created, or
 * renamed onto, a free path.
 */
export class WorkspaceShape {
  readonly files = new Map<string, number>();

  /** A workspace holding `files` (content, or a length in UTF-16 units). */
  constructor(files: Iterable<[string, string | number]> = []) {
    for (const [name, content] of files) {
      this.files.set(name, typeof content === "string" ? content.length : content);
    }
  }

  /** The refusal the server's gate would give `data` in this workspace, or `null`. */
  check(data: TelemetryData): Refusal | null {
    switch (data.type) {
      case "edit": {
        const length = this.length(data.file);
        if (typeof length !== "number") return length;
        return (
          within(data.file, length, "position", data.position) ??
          within(data.file, length, "position + deleted", data.position + data.deleted)
        );
      }
      case "cursor": {
        const length = this.length(data.file);
        if (typeof length !== "number") return length;
        return (
          within(data.file, length, "position", data.position) ??
          (data.selection_end === undefined
            ? null
            : within(data.file, length, "selection_end", data.selection_end))
        );
      }
      case "file_created":
        return this.free(data.file);
      case "file_renamed": {
        const length = this.length(data.file);
        return typeof length !== "number" ? length : this.free(data.new_file);
      }
      case "file_deleted": {
        const length = this.length(data.file);
        return typeof length !== "number" ? length : null;
      }
      default:
        return null;
    }
  }

  /** Applies an event `check` accepted. */
  apply(data: TelemetryData): void {
    switch (data.type) {
      case "edit":
        this.files.set(
          data.file,
          (this.files.get(data.file) ?? 0) - data.deleted + data.inserted.length,
        );
        break;
      case "file_created":
        this.files.set(data.file, (data.content ?? "").length);
        break;
      case "file_renamed": {
        const length = this.files.get(data.file) ?? 0;
        this.files.delete(data.file);
        this.files.set(data.new_file, length);
        break;
      }
      case "file_deleted":
        this.files.delete(data.file);
        break;
      default:
        break;
    }
  }

  private length(file: string): number | Refusal {
    const length = this.files.get(file);
    return length ?? { code: "unknown_file", message: `\`${file}\` does not exist; send \`file_created\` first` };
  }

  private free(file: string): Refusal | null {
    return this.files.has(file) ? { code: "file_exists", message: `\`${file}\` already exists` } : null;
  }
}

function within(file: string, length: number, field: string, at: number): Refusal | null {
  return at >= 0 && at <= length
    ? null
    : {
        code: "position_out_of_range",
        message: `\`${field}\` ${at} is outside \`${file}\` (${length} units long)`,
      };
}
