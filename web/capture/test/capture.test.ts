// The capture against a real local HTTP server speaking the telemetry contract: batching,
// numbering across reloads, retries, stops and acknowledgements. Assertions are on what was sent
// and on the schedule asked for, never on how long anything took.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Capture, type CaptureOptions, type ConnectionState } from "../src/capture";
import { MemoryArea, MemoryStorage } from "../src/storage";
import { applyEvents } from "../src/text";
import { eventually, IngestServer, ManualClock, RecordingClock, settle } from "./helpers";

const SESSION = "0b7d0c1e-1f2a-4c3b-9d4e-5f6a7b8c9d0e";

async function open(server: IngestServer, storage: MemoryStorage, extra: Partial<CaptureOptions> = {}): Promise<Capture> {
  return Capture.open({
    sessionId: SESSION,
    token: "cst_test",
    storage,
    baseUrl: server.url,
    batchDelayMs: 60_000,
    clock: new RecordingClock(),
    random: () => 0.5,
    ...extra,
  });
}

function states(capture: Capture): ConnectionState[] {
  const seen: ConnectionState[] = [];
  capture.status.subscribe((s) => {
    if (seen.at(-1) !== s.state) seen.push(s.state);
  });
  return seen;
}

test("a batch goes out when enough events are ready, and the rest on flush", async () => {
  const server = await IngestServer.start();
  const capture = await open(server, new MemoryStorage(), { batchEvents: 5 });
  for (let i = 0; i < 5; i++) capture.focusLost();
  await server.until(() => server.requests.length === 1);
  capture.focusRegained();
  capture.focusLost();
  await capture.flush();
  assert.deepEqual(server.requests.map((b) => b.map((e) => e.seq)), [[1, 2, 3, 4, 5], [6, 7]]);
  assert.equal(server.authorizations[0], "Bearer cst_test");
  assert.deepEqual(capture.traffic(), { requests: 2, batches: 2, events: 7, meanBatch: 3.5 });
  capture.close();
  await server.close();
});

test("a batch goes out when its oldest event is old enough, without a flush", async () => {
  const server = await IngestServer.start();
  const clock = new RecordingClock();
  const capture = await open(server, new MemoryStorage(), { batchEvents: 1000, batchDelayMs: 40, clock });
  capture.focusLost();
  capture.focusRegained();
  await server.until(() => server.stored.length === 2);
  assert.deepEqual(server.requests.map((b) => b.length), [2]);
  assert.ok(clock.delays.some((d) => d > 0 && d <= 40));
  capture.close();
  await server.close();
});

test("numbering continues across a reload over the same storage, with nothing lost or sent twice", async () => {
  const server = await IngestServer.start();
  const storage = new MemoryStorage();
  // The first page: two events delivered, then three captured while the server is down.
  const first = await open(server, storage);
  first.focusLost();
  first.focusRegained();
  await first.flush();
  server.script = (_batch, _req, res) => {
    res.writeHead(503, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: { code: "broker_unavailable", message: "down" } }));
    return "handled";
  };
  first.fileCreated("a.py", "x = 1\n");
  first.edit("a.py", 6, 0, "y = 2\n", "typed");
  first.focusLost();
  await eventually(() => storage.size(SESSION) === 3);
  first.close(); // the tab is gone
  server.script = null;
  // The reloaded page.
  const second = await open(server, storage);
  second.focusRegained();
  await second.flush();
  assert.deepEqual(server.seqs(), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(server.stored.map((e) => e.data.type), ["focus_lost", "focus_regained", "file_created", "edit", "focus_lost", "focus_regained"]);
  assert.equal(storage.size(SESSION), 0);
  assert.equal(second.status.get().ackedSeq, 6);
  second.close();
  await server.close();
});

test("a reload right after the page hides loses nothing, even what storage had not finished writing", async () => {
  const server = await IngestServer.start();
  const area = new MemoryArea();
  const storage = new MemoryStorage(area);
  const down = (_b: unknown, _r: unknown, res: import("node:http").ServerResponse) => {
    res.writeHead(503, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: { code: "broker_unavailable", message: "down" } }));
    return "handled" as const;
  };
  const first = await open(server, storage);
  first.fileCreated("a.py", "");
  first.edit("a.py", 0, 0, "x", "typed");
  await first.flush();
  // The server is unreachable and the page unloads while its storage writes are still pending:
  // they never finish (an unload abandons IndexedDB transactions).
  server.script = down;
  first.edit("a.py", 1, 0, "y", "typed");
  first.fileRenamed("a.py", "b.py");
  storage.abandonWrites = true;
  first.flushOnHide(undefined, true);
  first.close();
  assert.equal(storage.size(SESSION), 0, "nothing reached the asynchronous storage");
  assert.equal(area.items.size, 1, "the spill holds the unstored events");
  // The reloaded page over the same storage.
  storage.abandonWrites = false;
  server.script = null;
  const second = await open(server, storage);
  second.focusLost();
  await second.flush();
  assert.deepEqual(server.seqs(), [1, 2, 3, 4, 5]);
  assert.deepEqual(
    server.stored.map((e) => e.data.type),
    ["file_created", "edit", "edit", "file_renamed", "focus_lost"],
  );
  second.close();
  await server.close();
});

test("a spill is cleared once the page that made it has stored everything after all", async () => {
  const server = await IngestServer.start();
  const area = new MemoryArea();
  const storage = new MemoryStorage(area);
  server.script = () => "process-then-drop";
  const capture = await open(server, storage, { requestTimeoutMs: 60_000 });
  capture.focusLost();
  // Hidden, then shown again (a bfcache restore): the pending write completes normally.
  capture.flushOnHide(undefined, true);
  assert.equal(area.items.size, 1);
  await eventually(() => area.items.size === 0);
  assert.equal(storage.size(SESSION), 1);
  capture.close();
  await server.close();
});

test("on resume the server's acknowledged seq drops what it has and numbering continues after it", async () => {
  const server = await IngestServer.start();
  const storage = new MemoryStorage();
  server.script = () => "process-then-drop"; // stored by the server, the answers lost
  const first = await open(server, storage, { batchEvents: 3, requestTimeoutMs: 60_000 });
  first.focusLost();
  first.focusRegained();
  first.focusLost();
  await server.until(() => server.stored.length === 3);
  first.close();
  server.script = null;
  const second = await open(server, storage, { serverAckedSeq: 3 });
  assert.equal(second.pendingEvents().length, 0);
  second.focusRegained();
  await second.flush();
  assert.deepEqual(server.seqs(), [1, 2, 3, 4]);
  second.close();
  await server.close();
});

test("failures are retried on the backoff schedule until the server takes the batch", async () => {
  const server = await IngestServer.start();
  let failures = 3;
  server.script = (_batch, _req, res) => {
    if (failures-- <= 0) return "default";
    res.writeHead(503, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: { code: "broker_unavailable", message: "retry" } }));
    return "handled";
  };
  const clock = new RecordingClock(0.01);
  const capture = await open(server, new MemoryStorage(), { clock, backoff: { baseMs: 1000, maxMs: 3000 } });
  const seen = states(capture);
  capture.focusLost();
  const status = await capture.flush();
  assert.equal(status.state, "online");
  assert.deepEqual(seen, ["online", "retrying", "online"]);
  // random() = 0.5: three quarters of 1 s, 2 s, then 3 s (the cap).
  const retries = clock.delays.filter((d) => d >= 700 && d < 10_000);
  assert.deepEqual(retries, [750, 1500, 2250]);
  assert.deepEqual(server.seqs(), [1]);
  capture.close();
  await server.close();
});

test("a 429 is retried no sooner than its Retry-After", async () => {
  const server = await IngestServer.start();
  let limited = true;
  server.script = (_batch, _req, res) => {
    if (!limited) return "default";
    limited = false;
    res.writeHead(429, { "Content-Type": "application/json", "Retry-After": "2" });
    res.end(JSON.stringify({ error: { code: "rate_limited", message: "slow down", details: { retry_after_seconds: 2 } } }));
    return "handled";
  };
  const clock = new RecordingClock(0.01);
  const capture = await open(server, new MemoryStorage(), { clock });
  capture.focusLost();
  await capture.flush();
  const wait = clock.delays.find((d) => d >= 1000 && d < 10_000);
  assert.equal(wait, 2100); // 2 s and half of the 10% jitter
  assert.deepEqual(server.seqs(), [1]);
  capture.close();
  await server.close();
});

test("a 401 stops sending with the server's code and keeps the queue for a new token", async () => {
  const server = await IngestServer.start();
  server.token = "cst_new";
  const storage = new MemoryStorage();
  const capture = await open(server, storage);
  capture.focusLost();
  const status = await capture.flush();
  assert.equal(status.state, "stopped");
  assert.equal(status.problem?.status, 401);
  assert.equal(status.problem?.code, "unauthenticated");
  // Capture goes on into the queue; nothing is dropped.
  capture.focusRegained();
  await eventually(() => storage.size(SESSION) === 2);
  assert.equal(server.requests.length, 1);
  capture.restart("cst_new");
  await capture.flush();
  assert.deepEqual(server.seqs(), [1, 2]);
  assert.equal(capture.status.get().state, "online");
  capture.close();
  await server.close();
});

test("permanent refusals stop sending: a sequence gap and a 422", async () => {
  const server = await IngestServer.start();
  server.lastSeq = 0;
  // The client believes the server has 1..5; it has nothing.
  const capture = await open(server, new MemoryStorage(), { serverAckedSeq: 5 });
  capture.focusLost();
  const status = await capture.flush();
  assert.equal(status.state, "stopped");
  assert.equal(status.problem?.code, "sequence_gap");
  assert.deepEqual(status.problem?.details, { expected_seq: 1 });
  assert.equal(capture.pendingEvents()[0]?.seq, 6);
  capture.close();

  server.script = (_b, _r, res) => {
    res.writeHead(422, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: { code: "invalid_events", message: "no", details: [{ index: 0, seq: 1, code: "timestamp_in_future", message: "late" }] } }));
    return "handled";
  };
  const other = await open(server, new MemoryStorage());
  other.focusLost();
  const refused = await other.flush();
  assert.equal(refused.state, "stopped");
  assert.equal(refused.problem?.status, 422);
  assert.equal(other.pendingEvents().length, 1);
  other.close();
  await server.close();
});

test("a retried batch the server already had is acknowledged as duplicates, once", async () => {
  const server = await IngestServer.start();
  let drop = true;
  server.script = () => {
    if (!drop) return "default";
    drop = false;
    return "process-then-drop";
  };
  const clock = new RecordingClock(0.01);
  const capture = await open(server, new MemoryStorage(), { clock });
  const seen = states(capture);
  capture.focusLost();
  capture.focusRegained();
  const status = await capture.flush();
  assert.equal(status.state, "online");
  assert.deepEqual(seen, ["online", "offline", "online"]);
  assert.equal(server.requests.length, 2);
  assert.deepEqual(server.seqs(), [1, 2]);
  assert.equal(status.ackedSeq, 2);
  capture.close();
  await server.close();
});

test("numbers the server holds from elsewhere stop sending instead of being dropped as duplicates", async () => {
  const server = await IngestServer.start();
  // Another device sent 1..3; this one starts without knowing it.
  server.lastSeq = 3;
  const capture = await open(server, new MemoryStorage());
  capture.focusLost();
  capture.focusRegained();
  const status = await capture.flush();
  assert.equal(status.state, "stopped");
  assert.equal(status.problem?.code, "sequence_conflict");
  capture.close();
  await server.close();
});

test("a 413 batch_too_large halves the batch until the server takes it", async () => {
  const server = await IngestServer.start();
  server.maxEvents = 3;
  const capture = await open(server, new MemoryStorage());
  for (let i = 0; i < 10; i++) capture.focusLost();
  await capture.flush();
  assert.deepEqual(server.seqs(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.ok(server.requests.filter((b) => b.length <= 3).length >= 4);
  capture.close();
  await server.close();
});

test("hours of events captured offline are all delivered in order once the network is back", async () => {
  const server = await IngestServer.start();
  const down = await IngestServer.start();
  const unreachable = down.url;
  await down.close(); // nothing listens there now
  const storage = new MemoryStorage();
  const clock = new RecordingClock(0.001);
  const offline = await Capture.open({ sessionId: SESSION, token: "cst_test", storage, baseUrl: unreachable, clock, random: () => 0.5 });
  const seen = states(offline);
  offline.fileCreated("main.py");
  let text = "";
  for (let i = 0; i < 2500; i++) {
    offline.edit("main.py", text.length, 0, "x", "typed");
    text += "x";
  }
  await eventually(() => offline.status.get().state === "offline" && storage.size(SESSION) === 2501);
  assert.deepEqual(seen.slice(0, 2), ["online", "offline"]);
  offline.close();
  // Back online (the reloaded page, pointing at a reachable server).
  const online = await open(server, storage);
  await online.flush();
  assert.equal(server.stored.length, 2501);
  assert.deepEqual(server.seqs(), Array.from({ length: 2501 }, (_, i) => i + 1));
  assert.ok(server.requests.every((b) => b.length <= 1000));
  const files = applyEvents(new Map(), server.stored);
  assert.equal(files.get("main.py"), text);
  online.close();
  await server.close();
});

test("a key press is numbered before the edit it causes and sent with its key-up", async () => {
  const server = await IngestServer.start();
  const capture = await open(server, new MemoryStorage(), { files: [["a.py", ""]] });
  capture.keyDown({ key: "a", code: "KeyA", timeStamp: 100 });
  capture.edit("a.py", 0, 0, "a", "typed");
  capture.keyDown({ key: "Shift", code: "ShiftLeft", timeStamp: 150 });
  capture.keyUp({ key: "a", code: "KeyA", timeStamp: 180 });
  capture.keyDown({ key: "B", code: "KeyB", timeStamp: 200, repeat: true });
  await capture.flush();
  const [key, edit, shift, repeat] = server.stored;
  assert.equal(key?.data.type, "keystroke");
  assert.equal(edit?.data.type, "edit");
  if (key?.data.type !== "keystroke" || shift?.data.type !== "keystroke" || repeat?.data.type !== "keystroke") throw new Error("not keys");
  assert.equal(key.data.key_class, "letter");
  assert.equal(Math.round((key.data.up_ms ?? 0) - key.data.down_ms), 80);
  // Flushed while held: sent without a key-up.
  assert.equal(shift.data.key_class, "modifier");
  assert.equal(shift.data.up_ms, undefined);
  assert.equal(repeat.data.up_ms, undefined);
  // The character never leaves: only the class.
  assert.ok(!JSON.stringify(server.stored).includes('"KeyA"'));
  capture.close();
  await server.close();
});

test("without keystroke consent no key press is captured; without face consent no face check", async () => {
  const server = await IngestServer.start();
  const capture = await open(server, new MemoryStorage(), { scopes: { keystroke_dynamics: false } });
  assert.equal(capture.keyDown({ key: "a" }), false);
  assert.equal(capture.faceCheck({ similarity: 1, model_id: "m", model_version: "1", face_count: 1, quality: 1 }), true);
  capture.setScopes({ face_continuity: false });
  assert.equal(capture.faceCheck({ similarity: 1, model_id: "m", model_version: "1", face_count: 1, quality: 1 }), false);
  await capture.flush();
  assert.deepEqual(server.stored.map((e) => e.data.type), ["face_check"]);
  capture.close();
  await server.close();
});

test("events the server would refuse are not queued, and what follows still flows", async () => {
  const server = await IngestServer.start();
  const refusals: string[] = [];
  const capture = await open(server, new MemoryStorage(), { files: [["a.py", "ab"]], onRefused: (_k, r) => refusals.push(r.code) });
  assert.equal(capture.edit("b.py", 0, 0, "x", "typed"), false);
  assert.equal(capture.edit("a.py", 3, 0, "x", "typed"), false);
  assert.equal(capture.edit("a.py", 0, 0, "\u0000", "paste"), false);
  assert.equal(capture.fileCreated("../x"), false);
  assert.equal(capture.edit("a.py", 2, 0, "c", "typed"), true);
  await capture.flush();
  assert.deepEqual(refusals, ["unknown_file", "position_out_of_range", "invalid_text", "invalid_file"]);
  assert.deepEqual(server.seqs(), [1]);
  assert.equal(capture.status.get().refused, 4);
  capture.close();
  await server.close();
});

test("a huge paste is split into edits that each fit a record and replay to the pasted text", async () => {
  const server = await IngestServer.start();
  const capture = await open(server, new MemoryStorage(), { files: [["a.py", "()"]], maxEventTextBytes: 1000 });
  const block = "línea 😀 \"quoted\"\n".repeat(300);
  capture.edit("a.py", 1, 0, block, "paste");
  await capture.flush();
  assert.ok(server.stored.length > 5);
  assert.ok(server.stored.every((e) => e.data.type === "edit" && e.data.origin === "paste"));
  assert.equal(applyEvents(new Map([["a.py", "()"]]), server.stored).get("a.py"), `(${block})`);
  capture.close();
  await server.close();
});

test("cursor moves are throttled, the latest wins, and a pending one is numbered before the next edit", async () => {
  const clock = new ManualClock();
  const capture = await Capture.open({
    sessionId: SESSION,
    token: "t",
    storage: new MemoryStorage(),
    clock,
    cursorThrottleMs: 250,
    batchDelayMs: 1e9,
    batchEvents: 1e9,
    fetch: () => Promise.reject(new Error("no network in this test")),
    files: [["a.py", "0123456789"]],
  });
  for (let p = 0; p <= 9; p++) {
    capture.cursor("a.py", p);
    clock.advance(10);
  }
  clock.advance(300);
  for (let p = 9; p >= 5; p--) {
    capture.cursor("a.py", p, 9);
    clock.advance(10);
  }
  capture.edit("a.py", 0, 10, "", "typed"); // the pending cursor (5..9) is valid only before this
  clock.advance(1000);
  const cursors = capture.pendingEvents().map((e) => e.data);
  assert.deepEqual(cursors, [
    { type: "cursor", file: "a.py", position: 0 },
    // The trailing one of the first burst, at the end of its throttle window.
    { type: "cursor", file: "a.py", position: 9 },
    // The second burst is still in its window: only its latest, released before the edit.
    { type: "cursor", file: "a.py", position: 5, selection_end: 9 },
    { type: "edit", file: "a.py", position: 0, deleted: 10, inserted: "", origin: "typed" },
  ]);
  capture.close();
});

test("the capture path's own cost is measured per captured event", async () => {
  const server = await IngestServer.start();
  const capture = await open(server, new MemoryStorage(), { files: [["a.py", ""]] });
  for (let i = 0; i < 200; i++) {
    capture.keyDown({ key: "a", code: "KeyA" });
    capture.edit("a.py", i, 0, "a", "typed");
    capture.keyUp({ key: "a", code: "KeyA" });
  }
  const o = capture.overhead();
  assert.equal(o.count, 600);
  assert.ok(o.p50Ms <= o.p99Ms && o.p99Ms <= o.maxMs);
  await capture.flush();
  assert.equal(server.stored.length, 400);
  capture.close();
  await server.close();
});

test("on page hide the stored queue is sent with keepalive", async () => {
  const server = await IngestServer.start();
  const storage = new MemoryStorage();
  const seen: boolean[] = [];
  const capture = await open(server, storage, {
    fetch: (input, init) => {
      seen.push(init?.keepalive === true);
      return fetch(input, init);
    },
  });
  capture.focusLost();
  await eventually(() => storage.size(SESSION) === 1);
  capture.flushOnHide();
  await server.until(() => server.stored.length === 1);
  await eventually(() => capture.status.get().ackedSeq === 1);
  assert.deepEqual(seen, [true]);
  await settle();
  assert.equal(storage.size(SESSION), 0);
  capture.close();
  await server.close();
});

test("when storage fails the status says so and events are sent from memory", async () => {
  const server = await IngestServer.start();
  const storage = new MemoryStorage();
  const capture = await open(server, storage);
  storage.failWith = new Error("QuotaExceededError");
  capture.focusLost();
  await eventually(() => capture.status.get().storageError !== null);
  assert.match(capture.status.get().storageError ?? "", /QuotaExceededError/);
  const status = await capture.flush();
  assert.equal(status.state, "online");
  assert.deepEqual(server.seqs(), [1]);
  storage.failWith = null;
  capture.focusRegained();
  await capture.flush();
  await eventually(() => capture.status.get().storageError === null);
  assert.deepEqual(server.seqs(), [1, 2]);
  capture.close();
  await server.close();
});

test("a keepalive copy that overtakes the request in flight does not count as a conflict", async () => {
  const server = await IngestServer.start();
  const storage = new MemoryStorage();
  let held: (() => void) | null = null;
  server.script = (batch, _req, res) => {
    if (held === null && server.requests.length === 1) {
      // Hold the page's normal request until its keepalive copy has been processed.
      held = () => {
        server.script = null;
        const [status, body] = server.ingest(batch, "Bearer cst_test");
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      };
      return "handled";
    }
    return "default";
  };
  const capture = await open(server, storage, { batchEvents: 2 });
  capture.focusLost();
  capture.focusRegained();
  await server.until(() => server.requests.length === 1);
  capture.flushOnHide(); // the tab is hidden while the batch is in flight
  await server.until(() => server.stored.length === 2);
  (held as (() => void) | null)?.();
  // The held request's answer (all duplicates) has been handled.
  await eventually(() => capture.traffic().batches === 1);
  const status = capture.status.get();
  assert.equal(status.state, "online");
  assert.equal(status.ackedSeq, 2);
  assert.deepEqual(server.seqs(), [1, 2]);
  assert.equal(server.requests.length, 2);
  capture.close();
  await server.close();
});
