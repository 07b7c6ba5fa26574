import { test } from "node:test";
import assert from "node:assert/strict";
import { checkData, checkPath, WorkspaceShape } from "../src/validate";

test("what the server refuses is refused locally with the server's code", () => {
  const code = (d: Parameters<typeof checkData>[0]) => checkData(d)?.code ?? "ok";
  assert.equal(code({ type: "edit", file: "a.py", position: 0, deleted: 0, inserted: "nul\u0000", origin: "typed" }), "invalid_text");
  assert.equal(code({ type: "edit", file: "a.py", position: -1, deleted: 0, inserted: "", origin: "typed" }), "negative_position");
  assert.equal(code({ type: "edit", file: "a.py", position: 0.5, deleted: 0, inserted: "", origin: "typed" }), "negative_position");
  assert.equal(code({ type: "keystroke", down_ms: 5, up_ms: 4, key_class: "letter" }), "invalid_timing");
  assert.equal(code({ type: "face_check", similarity: 1.2, model_id: "m", model_version: "1", face_count: 1, quality: 1 }), "out_of_range");
  assert.equal(code({ type: "face_check", similarity: 1, model_id: " ", model_version: "1", face_count: 1, quality: 1 }), "missing_model");
  assert.equal(code({ type: "code_run", command: "x".repeat(4097), exit_code: 0, duration_ms: 1 }), "too_long");
  assert.equal(code({ type: "code_run", command: "😀".repeat(4096), exit_code: 0, duration_ms: 1 }), "ok");
  assert.equal(checkPath("")?.code, "missing_file");
  assert.equal(checkPath("  ")?.code, "missing_file");
  for (const bad of ["/etc/passwd", "a/../b", "..", "a\u0007b", "x".repeat(513)]) assert.equal(checkPath(bad)?.code, "invalid_file", bad);
  for (const good of ["src/main.rs", "a b.py", "ü/😀.txt", "x".repeat(512), "..a/b.."]) assert.equal(checkPath(good), null, good);
});

test("the workspace rules follow creates, edits, renames and deletes in UTF-16 units", () => {
  const w = new WorkspaceShape([["a.py", "é😀"]]);
  const code = (d: Parameters<WorkspaceShape["check"]>[0]) => {
    const r = w.check(d);
    if (!r) w.apply(d);
    return r?.code ?? "ok";
  };
  assert.equal(code({ type: "edit", file: "a.py", position: 3, deleted: 0, inserted: "x", origin: "typed" }), "ok");
  assert.equal(code({ type: "edit", file: "a.py", position: 2, deleted: 3, inserted: "", origin: "typed" }), "position_out_of_range");
  assert.equal(code({ type: "cursor", file: "a.py", position: 4 }), "ok");
  assert.equal(code({ type: "cursor", file: "a.py", position: 0, selection_end: 5 }), "position_out_of_range");
  assert.equal(code({ type: "edit", file: "b.py", position: 0, deleted: 0, inserted: "x", origin: "typed" }), "unknown_file");
  assert.equal(code({ type: "file_created", file: "a.py" }), "file_exists");
  assert.equal(code({ type: "file_renamed", file: "a.py", new_file: "b.py" }), "ok");
  assert.equal(code({ type: "cursor", file: "b.py", position: 4 }), "ok");
  assert.equal(code({ type: "file_deleted", file: "a.py" }), "unknown_file");
  assert.equal(code({ type: "file_deleted", file: "b.py" }), "ok");
  assert.equal(w.files.size, 0);
});
