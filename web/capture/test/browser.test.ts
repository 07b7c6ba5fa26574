// The page listeners of `attach`, on stand-in window and document objects (Node's EventTarget):
// which DOM events become which telemetry, and that a tab-away is recorded once however many
// signals announce it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { attach } from "../src/browser";
import { Capture } from "../src/capture";
import { MemoryStorage } from "../src/storage";
import { eventually, ManualClock } from "./helpers";

class FakeDocument extends EventTarget {
  visibilityState: "visible" | "hidden" = "visible";
  focused = true;
  hasFocus(): boolean {
    return this.focused;
  }
}

function key(type: string, key: string, code: string): Event {
  return Object.assign(new Event(type), { key, code, repeat: false });
}

test("keys, focus, visibility, page hide and coming online reach the capture", async () => {
  const win = new EventTarget();
  const doc = new FakeDocument();
  const editor = new EventTarget();
  const keepalive: boolean[] = [];
  const storage = new MemoryStorage();
  const clock = new ManualClock();
  const capture = await Capture.open({
    sessionId: "s",
    token: "t",
    storage,
    clock,
    batchDelayMs: 1e9,
    batchEvents: 1e9,
    fetch: (_input, init) => {
      keepalive.push(init?.keepalive === true);
      return new Promise(() => {}); // never answers
    },
  });
  const detach = attach(capture, {
    keyTarget: editor,
    window: win as unknown as Window,
    document: doc as unknown as Document,
  });
  editor.dispatchEvent(key("keydown", "x", "KeyX"));
  // Tab moves the focus before its key-up: heard on the window.
  win.dispatchEvent(key("keyup", "x", "KeyX"));
  // Switching tabs: the window blurs and the document hides; one focus_lost.
  doc.focused = false;
  win.dispatchEvent(new Event("blur"));
  doc.visibilityState = "hidden";
  doc.dispatchEvent(new Event("visibilitychange"));
  // Back: visible and focused; one focus_regained.
  doc.visibilityState = "visible";
  doc.focused = true;
  doc.dispatchEvent(new Event("visibilitychange"));
  win.dispatchEvent(new Event("focus"));
  const types = capture.pendingEvents().map((e) => e.data.type);
  assert.deepEqual(types, ["keystroke", "focus_lost", "focus_regained"]);
  const [stroke] = capture.pendingEvents();
  assert.ok(stroke?.data.type === "keystroke" && stroke.data.up_ms !== undefined);
  // Page hide: stored, then sent with keepalive.
  clock.advance(1);
  await eventually(() => storage.size("s") === 3);
  win.dispatchEvent(new Event("pagehide"));
  assert.deepEqual(keepalive, [true]);
  // The network is back: a normal request at once, without waiting for the batch timer.
  win.dispatchEvent(new Event("online"));
  assert.deepEqual(keepalive, [true, false]);
  detach();
  editor.dispatchEvent(key("keydown", "y", "KeyY"));
  assert.deepEqual(capture.pendingEvents().map((e) => e.data.type), types);
  capture.close();
});
