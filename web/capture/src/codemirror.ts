/**
 * CodeMirror 6 adapter: a `Transaction`'s changes and user event turned into edits, and its
 * selection into a cursor, typed structurally so this library does not depend on CodeMirror.
 *
 * CodeMirror counts positions in UTF-16 code units, as the wire does, so positions are passed
 * through untouched. A transaction may change several ranges at once (multiple cursors, auto-
 * closed brackets): its changes are listed in document order, each at its position in the
 * document as the previous ones of the same transaction left it (`fromB`), so applying the edits
 * one after another gives the transaction's new document.
 *
 * Wiring, once per editor view showing `file`:
 *
 * ```ts
 * EditorView.updateListener.of((update) => {
 *   for (const tr of update.transactions) captureTransaction(capture, file, tr);
 * });
 * ```
 */

import type { EditOrigin } from "./wire";
import type { Replacement } from "./text";

/** The part of CodeMirror's `Text` used here. */
export interface CmText {
  toString(): string;
}

/** The part of CodeMirror's `ChangeSet` used here. */
export interface CmChangeSet {
  iterChanges(
    f: (fromA: number, toA: number, fromB: number, toB: number, inserted: CmText) => void,
    individual?: boolean,
  ): void;
}

/** The part of CodeMirror's `SelectionRange` used here. */
export interface CmSelectionRange {
  anchor: number;
  head: number;
}

/** The part of CodeMirror's `EditorSelection` used here. */
export interface CmSelection {
  main: CmSelectionRange;
}

/** The part of CodeMirror's `Transaction` used here. */
export interface CmTransaction {
  changes: CmChangeSet;
  docChanged: boolean;
  /** Set when the transaction set a selection explicitly. */
  selection?: CmSelection | undefined;
  /** `true` for `event` itself and its sub-events (`"input"` matches `"input.type"`). */
  isUserEvent(event: string): boolean;
}

/**
 * How user events map to origins: the first entry whose event the transaction is (sub-events
 * included) wins; a transaction with none of them (a programmatic change) is `other`.
 */
export const CM_ORIGINS: ReadonlyArray<readonly [string, EditOrigin]> = [
  ["input.type", "typed"],
  ["input.paste", "paste"],
  // Dropped text was not typed; the server tells text moved within the workspace (like an
  // internal paste) from text brought in.
  ["input.drop", "drop"],
  ["move.drop", "drop"],
  // Duplicating or moving lines brings existing text, not typing.
  ["input.copyline", "paste"],
  ["move.line", "paste"],
  ["input.complete", "autocomplete"],
  ["undo", "undo"],
  ["redo", "redo"],
  ["delete.cut", "other"],
  // Enter with auto-indent, indentation, comments, deletions by key: caused by a key press.
  ["input", "typed"],
  ["delete", "typed"],
  ["indent", "typed"],
  ["comment", "typed"],
];

/** The origin of a transaction's edits. */
export function originOf(
  tr: Pick<CmTransaction, "isUserEvent">,
  table: ReadonlyArray<readonly [string, EditOrigin]> = CM_ORIGINS,
): EditOrigin {
  for (const [event, origin] of table) {
    if (tr.isUserEvent(event)) return origin;
  }
  return "other";
}

/** The replacements of a transaction, in order, each at its position after the previous ones. */
export function replacementsOf(tr: Pick<CmTransaction, "changes" | "docChanged">): Replacement[] {
  const out: Replacement[] = [];
  if (!tr.docChanged) return out;
  tr.changes.iterChanges((fromA, toA, fromB, _toB, inserted) => {
    out.push({ position: fromB, deleted: toA - fromA, inserted: inserted.toString() });
  });
  return out;
}

/** A transaction as edits with their origin. */
export function editsFromTransaction(
  tr: CmTransaction,
  table: ReadonlyArray<readonly [string, EditOrigin]> = CM_ORIGINS,
): Array<Replacement & { origin: EditOrigin }> {
  const replacements = replacementsOf(tr);
  if (replacements.length === 0) return [];
  const origin = originOf(tr, table);
  return replacements.map((r) => ({ ...r, origin }));
}

/**
 * The cursor a selection-only transaction moved to (`position` the head, `selection_end` the
 * anchor when something is selected), or `null`. Cursor moves caused by an edit are implied by
 * the edit and not sent.
 */
export function cursorFromTransaction(
  tr: CmTransaction,
): { position: number; selection_end?: number } | null {
  if (tr.docChanged || !tr.selection) return null;
  const { anchor, head } = tr.selection.main;
  return anchor === head ? { position: head } : { position: head, selection_end: anchor };
}

/** What `captureTransaction` calls: satisfied by `Capture`. */
export interface TransactionSink {
  edit(file: string, position: number, deleted: number, inserted: string, origin: EditOrigin): boolean;
  cursor(file: string, position: number, selectionEnd?: number): boolean;
}

/** Captures one transaction of the editor showing `file`: its edits, or its cursor move. */
export function captureTransaction(
  sink: TransactionSink,
  file: string,
  tr: CmTransaction,
  table: ReadonlyArray<readonly [string, EditOrigin]> = CM_ORIGINS,
): void {
  for (const e of editsFromTransaction(tr, table)) {
    sink.edit(file, e.position, e.deleted, e.inserted, e.origin);
  }
  const cursor = cursorFromTransaction(tr);
  if (cursor) sink.cursor(file, cursor.position, cursor.selection_end);
}
