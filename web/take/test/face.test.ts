// The pure parts of the face checks (web/take/src/face.ts): the similarity sent, what one frame
// gives, the cadence (with fake timers: nothing here waits on real time) and the stop on a
// withdrawal, against the real capture library with an in-memory queue.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Capture } from "../../capture/src/capture";
import { MemoryStorage } from "../../capture/src/storage";
import {
  DEFAULT_INTERVAL_MS,
  distance,
  effectiveInterval,
  FaceLoop,
  faceMonitored,
  frameOutcome,
  MIN_INTERVAL_MS,
  MODEL_ID,
  MODEL_VERSION,
  REFERENCE_RETRY_MS,
  similarityFromDistance,
  type Detection,
  type FaceCheckData,
  type Timers,
} from "../src/face";

/** A unit vector along axis `i`, turned by `angle` towards axis `i + 1` (128-d like face-api's). */
function descriptor(angle = 0, i = 0): Float32Array {
  const v = new Float32Array(128);
  v[i] = Math.cos(angle);
  v[i + 1] = Math.sin(angle);
  return v;
}

function face(score: number, d: Float32Array = descriptor()): Detection {
  return { score, descriptor: d };
}

/** Timers that run only when told, recording every delay asked for. */
class FakeTimers implements Timers {
  delays: number[] = [];
  private pending = new Map<number, () => void>();
  private next = 1;
  set(fn: () => void, ms: number): unknown {
    this.delays.push(ms);
    const id = this.next++;
    this.pending.set(id, fn);
    return id;
  }
  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  get count(): number {
    return this.pending.size;
  }
  /** Runs every due callback and lets the frame it starts finish. */
  async fire(): Promise<void> {
    const due = [...this.pending.values()];
    this.pending.clear();
    for (const fn of due) fn();
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }
}

test("the similarity is 1 − euclidean distance, clamped to [0, 1]", () => {
  assert.equal(similarityFromDistance(0), 1);
  assert.equal(similarityFromDistance(0.35), 0.65);
  assert.equal(similarityFromDistance(0.6), 0.4);
  assert.equal(similarityFromDistance(1.4), 0);
  assert.equal(similarityFromDistance(-0.1), 1);
  assert.equal(similarityFromDistance(Number.NaN), 0);
  assert.equal(distance(descriptor(), descriptor()), 0);
  // Two unit vectors at 90°: distance √2, similarity 0.
  assert.ok(Math.abs(distance(descriptor(0), descriptor(Math.PI / 2)) - Math.SQRT2) < 1e-6);
  assert.throws(() => distance([1, 2], [1]), /length/);
});

test("a frame: no face is its own check; the first clear single face is the reference, sent as nothing", () => {
  const none = frameOutcome(null, []);
  assert.deepEqual(none, { kind: "check", check: { similarity: 0, model_id: MODEL_ID, model_version: MODEL_VERSION, face_count: 0, quality: 0 } });
  assert.equal(frameOutcome(null, [face(0.3)]).kind, "wait", "a doubtful face is not a reference");
  const ref = frameOutcome(null, [face(0.9, descriptor(0.2))]);
  assert.equal(ref.kind, "reference");
  assert.ok(ref.kind === "reference" && ref.descriptor instanceof Float32Array && ref.descriptor.length === 128);
  const two = frameOutcome(null, [face(0.9), face(0.7)]);
  assert.deepEqual(two.kind === "check" && two.check, { similarity: 0, model_id: MODEL_ID, model_version: MODEL_VERSION, face_count: 2, quality: 0.9 });
});

test("with a reference: the best-matching face's similarity and detection score, and the face count", () => {
  const reference = descriptor(0);
  const same = frameOutcome(reference, [face(0.8, descriptor(0.3))]);
  assert.equal(same.kind, "check");
  const c = (same as { check: FaceCheckData }).check;
  // chord length 2·sin(0.15) ≈ 0.2989
  assert.ok(Math.abs(c.similarity - (1 - 2 * Math.sin(0.15))) < 1e-6, String(c.similarity));
  assert.equal(c.face_count, 1);
  assert.equal(c.quality, 0.8);
  const other = frameOutcome(reference, [face(0.95, descriptor(0, 10))]);
  assert.equal((other as { check: FaceCheckData }).check.similarity, 0, "another person: distance √2 → 0");
  const both = frameOutcome(reference, [face(0.95, descriptor(0, 10)), face(0.6, descriptor(0.1))]);
  const b = (both as { check: FaceCheckData }).check;
  assert.equal(b.face_count, 2);
  assert.equal(b.quality, 0.6, "the quality is the matching face's");
  assert.ok(b.similarity > 0.9);
  // Only scores: the check has exactly these five keys.
  assert.deepEqual(Object.keys(b).sort(), ["face_count", "model_id", "model_version", "quality", "similarity"]);
});

test("the interval: 30 s by default, never below 1 s", () => {
  assert.equal(effectiveInterval(undefined), DEFAULT_INTERVAL_MS);
  assert.equal(DEFAULT_INTERVAL_MS, 30_000);
  assert.equal(effectiveInterval(5_000), 5_000);
  assert.equal(effectiveInterval(10), MIN_INTERVAL_MS);
  assert.equal(effectiveInterval(Number.NaN), DEFAULT_INTERVAL_MS);
});

test("the cadence: a frame at once, retries every 5 s until a reference, then one per interval", async () => {
  const timers = new FakeTimers();
  const frames: Detection[][] = [[], [face(0.9)], [face(0.9, descriptor(0.1))], [face(0.85, descriptor(0.2))]];
  const sent: FaceCheckData[] = [];
  let sampled = 0;
  const loop = new FaceLoop({
    sample: async () => frames[Math.min(sampled++, frames.length - 1)] as Detection[],
    record: (c) => (sent.push(c), true),
    timers,
  });
  loop.start();
  loop.start(); // a second start changes nothing
  assert.deepEqual(timers.delays, [0]);
  await timers.fire(); // no face: a check, then a retry for the reference
  assert.equal(sent.length, 1);
  assert.equal(sent[0]?.face_count, 0);
  await timers.fire(); // the reference: nothing sent
  assert.equal(sent.length, 1);
  assert.ok(loop.hasReference);
  await timers.fire();
  await timers.fire();
  assert.equal(sent.length, 3);
  assert.deepEqual(timers.delays, [0, REFERENCE_RETRY_MS, DEFAULT_INTERVAL_MS, DEFAULT_INTERVAL_MS, DEFAULT_INTERVAL_MS]);
  assert.ok((sent[1]?.similarity ?? 0) > 0.9 && (sent[2]?.similarity ?? 0) > 0.8);
  loop.stop();
  assert.equal(timers.count, 0, "nothing is left scheduled after stop");
  assert.ok(!loop.hasReference, "the reference is forgotten");
});

test("a frame in flight when the checks stop sends nothing, and nothing is scheduled after", async () => {
  const timers = new FakeTimers();
  let release: (faces: Detection[]) => void = () => {};
  const sent: FaceCheckData[] = [];
  const loop = new FaceLoop({ sample: () => new Promise((r) => (release = r)), record: (c) => (sent.push(c), true), timers, intervalMs: 2_000 });
  loop.start();
  await timers.fire();
  loop.stop();
  release([]);
  for (let i = 0; i < 5; i++) await Promise.resolve();
  assert.equal(sent.length, 0);
  assert.equal(timers.count, 0);
});

test("a failing frame is reported and the next one still comes", async () => {
  const timers = new FakeTimers();
  const errors: unknown[] = [];
  let n = 0;
  const loop = new FaceLoop({
    sample: async () => {
      if (n++ === 0) throw new Error("webgl lost");
      return [];
    },
    record: () => true,
    onError: (e) => errors.push(e),
    timers,
    intervalMs: 3_000,
  });
  loop.start();
  await timers.fire();
  assert.equal(errors.length, 1);
  assert.equal(timers.count, 1);
  await timers.fire();
  assert.equal(loop.sent, 1);
  loop.stop();
});

test("withdrawing face_continuity: the capture refuses the next check and the loop stops", async () => {
  const capture = await Capture.open({
    sessionId: "0b7d0c1e-1f2a-4c3b-9d4e-5f6a7b8c9d0e",
    token: "cst_test",
    storage: new MemoryStorage(),
    baseUrl: "http://127.0.0.1:9", // never reached: nothing is flushed here
    batchDelayMs: 600_000,
    scopes: { keystroke_dynamics: false, face_continuity: true },
  });
  const timers = new FakeTimers();
  const loop = new FaceLoop({ sample: async () => [], record: (c) => capture.faceCheck(c), timers, intervalMs: 1_000 });
  loop.start();
  await timers.fire();
  await timers.fire();
  assert.equal(loop.sent, 2);
  capture.setScopes({ face_continuity: false });
  await timers.fire();
  assert.ok(loop.isStopped);
  assert.equal(timers.count, 0);
  const queued = capture.pendingEvents().filter((e) => e.data.type === "face_check");
  assert.equal(queued.length, 2, "only the checks before the withdrawal are queued");
  for (const e of queued) assert.deepEqual(Object.keys(e.data).sort(), ["face_count", "model_id", "model_version", "quality", "similarity", "type"]);
  capture.close();
});

test("face checks run only where the assessment monitors face continuity", () => {
  assert.equal(faceMonitored({ face_continuity: true, keystroke_dynamics: false }), true);
  assert.equal(faceMonitored({ face_continuity: false }), false);
  assert.equal(faceMonitored(["face_continuity"]), true);
  assert.equal(faceMonitored(undefined), false);
  assert.equal(faceMonitored(null), false);
});
