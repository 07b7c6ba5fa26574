// The CodeMirror 6 adapter against synthetic transactions built like CodeMirror's own: a change
// set over the old document (`fromA..toA` replaced, `fromB..toB` in the new one) and user events
// that match their sub-events.

import { test } from "node:test";
import assert from "node:assert/strict";
import { captureTransaction, editsFromTransaction, originOf, type CmTransaction } from "../src/codemirror";
import { applyEvents } from "../src/text";
import type { EditOrigin, TelemetryEvent } from "../src/wire";

interface Change {
  from: number;
  to?: number;
  insert?: string;
}

/** A transaction applying `changes` (positions in `doc`, non-overlapping) with `userEvent`. */
function transaction(doc: string, changes: Change[], userEvent?: string, selection?: [number, number]): CmTransaction & { newDoc: string } {
  const sorted = [...changes].sort((a, b) => a.from - b.from);
  let newDoc = "";
  let at = 0;
  for (const c of sorted) {
    newDoc += doc.slice(at, c.from) + (c.insert ?? "");
    at = c.to ?? c.from;
  }
  newDoc += doc.slice(at);
  return {
    newDoc,
    docChanged: sorted.length > 0,
    ...(selection ? { selection: { main: { anchor: selection[0], head: selection[1] } } } : {}),
    isUserEvent: (event: string) =>
      userEvent !== undefined && (userEvent === event || userEvent.startsWith(event + ".")),
    changes: {
      iterChanges(f) {
        let delta = 0;
        for (const c of sorted) {
          const to = c.to ?? c.from;
          const inserted = c.insert ?? "";
          f(c.from, to, c.from + delta, c.from + delta + inserted.length, { toString: () => inserted });
          delta += inserted.length - (to - c.from);
        }
      },
    },
  };
}

/** The edits of `tr` applied one after another to `doc`. */
function replay(doc: string, tr: CmTransaction): string {
  const events: TelemetryEvent[] = editsFromTransaction(tr).map((e, i) => ({
    seq: i + 1,
    ts: "2026-01-01T00:00:00Z",
    data: { type: "edit", file: "f", position: e.position, deleted: e.deleted, inserted: e.inserted, origin: e.origin },
  }));
  return applyEvents(new Map([["f", doc]]), events).get("f")!;
}

test("user events map to the contract's origins", () => {
  const cases: Array<[string | undefined, EditOrigin]> = [
    ["input.type", "typed"],
    ["input.type.compose", "typed"],
    ["input", "typed"],
    ["input.paste", "paste"],
    ["input.drop", "drop"],
    ["move.drop", "drop"],
    ["input.copyline", "paste"],
    ["move.line", "paste"],
    ["input.complete", "autocomplete"],
    ["undo", "undo"],
    ["redo", "redo"],
    ["delete.backward", "typed"],
    ["delete.forward", "typed"],
    ["delete.selection", "typed"],
    ["delete.cut", "other"],
    ["indent.more", "typed"],
    [undefined, "other"],
    ["select.pointer", "other"],
  ];
  for (const [event, origin] of cases) {
    assert.equal(originOf(transaction("x", [{ from: 0, insert: "y" }], event)), origin, String(event));
  }
});

test("a transaction with several changes gives edits that replay to its new document", () => {
  const doc = "fn main() {\n    let x = 1;\n}\n";
  // Multiple cursors: typing at three places, and a replacement, in one transaction.
  const tr = transaction(doc, [
    { from: 0, insert: "pub " },
    { from: 16, to: 17, insert: "value" },
    { from: 11, insert: "\n    // hi" },
    { from: doc.length, insert: "// end\n" },
  ], "input.type");
  const edits = editsFromTransaction(tr);
  assert.equal(edits.length, 4);
  assert.ok(edits.every((e) => e.origin === "typed"));
  assert.equal(replay(doc, tr), tr.newDoc);
  // Positions are each in the document the previous edits left.
  assert.deepEqual(edits.map((e) => e.position), [0, 15, 30, tr.newDoc.length - 7]);
});

test("positions count UTF-16 code units: an astral character is two", () => {
  const doc = "a😀b";
  const tr = transaction(doc, [{ from: 3, to: 4, insert: "𝄞c" }], "input.paste");
  const [edit] = editsFromTransaction(tr);
  assert.deepEqual(edit, { position: 3, deleted: 1, inserted: "𝄞c", origin: "paste" });
  assert.equal(replay(doc, tr), "a😀𝄞c");
  // Deleting the emoji with Backspace deletes both units.
  const del = transaction("a😀b", [{ from: 1, to: 3 }], "delete.backward");
  assert.deepEqual(editsFromTransaction(del), [{ position: 1, deleted: 2, inserted: "", origin: "typed" }]);
});

test("a selection-only transaction is a cursor; an edit's own cursor move is not sent", () => {
  const calls: string[] = [];
  const sink = {
    edit: (file: string, position: number, deleted: number, inserted: string, origin: EditOrigin) => {
      calls.push(`edit ${file} ${position} ${deleted} ${JSON.stringify(inserted)} ${origin}`);
      return true;
    },
    cursor: (file: string, position: number, selectionEnd?: number) => {
      calls.push(`cursor ${file} ${position} ${selectionEnd ?? "-"}`);
      return true;
    },
  };
  captureTransaction(sink, "a.rs", transaction("abc", [], "select.pointer", [1, 1]));
  captureTransaction(sink, "a.rs", transaction("abc", [], "select", [0, 3]));
  captureTransaction(sink, "a.rs", transaction("abc", [{ from: 3, insert: "d" }], "input.type", [4, 4]));
  captureTransaction(sink, "a.rs", transaction("abcd", [], undefined));
  assert.deepEqual(calls, ["cursor a.rs 1 -", "cursor a.rs 3 0", 'edit a.rs 3 0 "d" typed']);
});
