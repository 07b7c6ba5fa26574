import { test } from "node:test";
import assert from "node:assert/strict";
import { languageOf, nameProblem, splitPath, treeOrder } from "../src/files";

const files = ["src/app.py", "README.md"];

test("a new name is refused with a reason when the server would refuse it or it clashes", () => {
  assert.equal(nameProblem("src/util.py", files), null);
  assert.equal(nameProblem("", files), "Enter a file name.");
  assert.equal(nameProblem("   ", files), "Enter a file name.");
  assert.match(nameProblem(" a.py", files)!, /space/);
  assert.match(nameProblem("/etc/passwd", files)!, /relative/);
  assert.match(nameProblem("src/../x.py", files)!, /relative/);
  assert.match(nameProblem("a\u0007b", files)!, /control/);
  assert.match(nameProblem("x".repeat(513), files)!, /512/);
  assert.match(nameProblem("src//a.py", files)!, /empty/);
  assert.match(nameProblem("src/", files)!, /end with/);
  assert.equal(nameProblem("README.md", files), "A file with that name already exists.");
  assert.match(nameProblem("src", files)!, /folder of another file/);
  assert.match(nameProblem("README.md/x", files)!, /inside another file/);
});

test("renaming a file to a free name is allowed, to its own name is not", () => {
  assert.equal(nameProblem("src/main.py", files, "src/app.py"), null);
  assert.match(nameProblem("src/app.py", files, "src/app.py")!, /already the file's name/);
  assert.equal(nameProblem("README.md", files, "src/app.py"), "A file with that name already exists.");
});

test("the tree lists files case-insensitively by path and splits folder from name", () => {
  assert.deepEqual(treeOrder(["b.py", "A/z.py", "a/y.py", "C.md"]), ["a/y.py", "A/z.py", "b.py", "C.md"]);
  assert.deepEqual(splitPath("src/lib/app.py"), { folder: "src/lib/", name: "app.py" });
  assert.deepEqual(splitPath("app.py"), { folder: "", name: "app.py" });
});

test("the editor's language follows the extension", () => {
  assert.equal(languageOf("a/b.PY"), "python");
  assert.equal(languageOf("x.ts"), "typescript");
  assert.equal(languageOf("q.sql"), "sql");
  assert.equal(languageOf("main.go"), "go");
  assert.equal(languageOf("go.mod"), null);
  assert.equal(languageOf("Makefile"), null);
});
