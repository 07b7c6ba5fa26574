import { test } from "node:test";
import assert from "node:assert/strict";
import { applyEvents, diffReplacement, jsonBytes, splitText } from "../src/text";
import type { TelemetryEvent } from "../src/wire";

function apply(text: string, r: { position: number; deleted: number; inserted: string }): string {
  return text.slice(0, r.position) + r.inserted + text.slice(r.position + r.deleted);
}

test("a diff between two texts is one replacement in UTF-16 units that never cuts a surrogate pair", () => {
  // 😀 (U+1F600) and 😁 (U+1F601) share their high surrogate: a naive diff would replace only
  // the low half.
  const before = "let a = '😀';";
  const after = "let a = '😁';";
  const r = diffReplacement(before, after)!;
  assert.deepEqual(r, { position: 9, deleted: 2, inserted: "😁" });
  assert.equal(apply(before, r), after);
  assert.equal(diffReplacement("x", "x"), null);
  for (const [b, a] of [["", "abc"], ["abc", ""], ["a😀b", "a😀😀b"], ["😀😀", "😀"], ["ab", "a\nb"]] as const) {
    const d = diffReplacement(b, a)!;
    assert.equal(apply(b, d), a, `${b} -> ${a}`);
  }
});

test("long text is split at code point boundaries into pieces that fit the byte limit", () => {
  const text = "ab😀\"\n".repeat(1000);
  const pieces = splitText(text, 100);
  assert.equal(pieces.join(""), text);
  for (const p of pieces) {
    assert.ok(jsonBytes(p) <= 100);
    assert.equal(new TextEncoder().encode(JSON.stringify(p)).length - 2, jsonBytes(p));
    // No piece starts with a lone low surrogate.
    assert.ok(!/^[\udc00-\udfff]/.test(p));
  }
  assert.deepEqual(splitText("short", 100), ["short"]);
});

test("events apply to files as the server's replay applies them", () => {
  const ev = (seq: number, data: TelemetryEvent["data"]): TelemetryEvent => ({ seq, ts: "2026-01-01T00:00:00Z", data });
  const files = applyEvents(new Map([["a.py", "print(1)"]]), [
    ev(1, { type: "edit", file: "a.py", position: 6, deleted: 1, inserted: "'😀'", origin: "typed" }),
    ev(2, { type: "file_created", file: "b.py", content: "x" }),
    ev(3, { type: "file_renamed", file: "b.py", new_file: "c.py" }),
    ev(4, { type: "edit", file: "a.py", position: 10, deleted: 0, inserted: "!", origin: "paste" }),
    ev(5, { type: "file_deleted", file: "c.py" }),
  ]);
  assert.deepEqual([...files], [["a.py", "print('😀'!)"]]);
  assert.throws(
    () => applyEvents(new Map([["a.py", "x"]]), [ev(1, { type: "edit", file: "a.py", position: 2, deleted: 0, inserted: "y", origin: "typed" })]),
    /does not apply/,
  );
});
