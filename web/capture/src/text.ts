/**
 * Text helpers in UTF-16 code units, the unit of every position on the wire (and of JavaScript
 * string indices, CodeMirror and Monaco): an edit computed from two strings, long text cut into
 * pieces that fit a record, and events applied to files (what the page shows after a reload).
 */

import type { TelemetryEvent } from "./wire";

function isHigh(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLow(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/** One replacement: `deleted` units at `position` replaced by `inserted`. */
export interface Replacement {
  position: number;
  deleted: number;
  inserted: string;
}

/**
 * The smallest single replacement that turns `before` into `after`, never cutting a surrogate
 * pair (the server's replay counts an edit inside a pair as an anomaly). For front ends without
 * change descriptions (a plain `<textarea>`); `null` when the texts are equal.
 */
export function diffReplacement(before: string, after: string): Replacement | null {
  if (before === after) return null;
  const shorter = Math.min(before.length, after.length);
  let start = 0;
  while (start < shorter && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  // Do not end the common prefix between the halves of a pair.
  if (start > 0 && isHigh(before.charCodeAt(start - 1))) start--;
  let end = 0;
  while (
    end < shorter - start &&
    before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)
  ) {
    end++;
  }
  if (end > 0 && isLow(before.charCodeAt(before.length - end))) end--;
  return {
    position: start,
    deleted: before.length - start - end,
    inserted: after.slice(start, after.length - end),
  };
}

/** The UTF-8 bytes `text` takes inside a JSON string (escapes included). */
export function jsonBytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) bytes += unitBytes(text, i);
  return bytes;
}

function unitBytes(text: string, i: number): number {
  const unit = text.charCodeAt(i);
  if (unit === 0x22 || unit === 0x5c) return 2; // \" \\
  if (unit < 0x20) return unit === 0x0a || unit === 0x0d || unit === 0x09 || unit === 0x08 || unit === 0x0c ? 2 : 6;
  if (unit < 0x80) return 1;
  if (unit < 0x800) return 2;
  if (isHigh(unit) && i + 1 < text.length && isLow(text.charCodeAt(i + 1))) return 2; // half of 4
  if (isLow(unit) && i > 0 && isHigh(text.charCodeAt(i - 1))) return 2;
  // A lone surrogate is written as a `\uXXXX` escape by JSON.stringify.
  if (isHigh(unit) || isLow(unit)) return 6;
  return 3;
}

/**
 * `text` cut into pieces of at most `maxBytes` JSON bytes each, at code point boundaries, so that
 * one huge paste becomes several events that each fit a record (900,000 bytes on the server).
 */
export function splitText(text: string, maxBytes: number): string[] {
  if (jsonBytes(text) <= maxBytes) return [text];
  const pieces: string[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const cost = unitBytes(text, i);
    const pairStart = isHigh(text.charCodeAt(i)) && i + 1 < text.length && isLow(text.charCodeAt(i + 1));
    const needed = pairStart ? cost + unitBytes(text, i + 1) : cost;
    if (bytes + needed > maxBytes && i > start) {
      pieces.push(text.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += cost;
  }
  pieces.push(text.slice(start));
  return pieces;
}

/**
 * Applies telemetry events to files (name → content), as the server's replay does: edits,
 * creates, renames and deletes. For a reload: the server's reconstruction at its acknowledged
 * `seq`, plus the events still queued here, is what the candidate had in the editor.
 * Throws if an event does not apply (it would have been refused at capture).
 */
export function applyEvents(
  files: ReadonlyMap<string, string>,
  events: readonly TelemetryEvent[],
): Map<string, string> {
  const out = new Map(files);
  for (const { seq, data } of events) {
    switch (data.type) {
      case "edit": {
        const text = out.get(data.file);
        if (text === undefined || data.position + data.deleted > text.length) {
          throw new Error(`event ${seq} does not apply: edit outside \`${data.file}\``);
        }
        out.set(
          data.file,
          text.slice(0, data.position) + data.inserted + text.slice(data.position + data.deleted),
        );
        break;
      }
      case "file_created":
        out.set(data.file, data.content ?? "");
        break;
      case "file_renamed": {
        const text = out.get(data.file);
        if (text === undefined) throw new Error(`event ${seq} does not apply: no \`${data.file}\``);
        out.delete(data.file);
        out.set(data.new_file, text);
        break;
      }
      case "file_deleted":
        out.delete(data.file);
        break;
      default:
        break;
    }
  }
  return out;
}
