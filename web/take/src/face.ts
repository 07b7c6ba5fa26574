/**
 * Face continuity (only with the candidate's `face_continuity` consent, and only when the
 * assessment's `monitoring.face_continuity` is on): the on-device check that the same person
 * stays at the keyboard, reported with `capture.faceCheck(...)`.
 *
 * What runs where (docs/decisions/0023-face-continuity-on-the-device.md):
 * - the camera, the model (face-api's TinyFaceDetector + 68 landmarks + faceRecognitionNet, in
 *   the lazily loaded `take-face.js`) and the reference descriptor stay in this page;
 * - what leaves the device is one `face_check` telemetry event per check: a similarity in [0, 1],
 *   the model's id and version, the number of faces and the detection score. Never an image, a
 *   video frame or a descriptor.
 *
 * The pure parts (distance, similarity mapping, what a frame gives, the cadence) are exported for
 * the unit tests in `take/test/face.test.ts`.
 */

import type { Capture } from "../../capture/src/capture";
import { h } from "./dom";

/** The model that computes the descriptors: scores of another model are not comparable. */
export const MODEL_ID = "face-api.js/faceRecognitionNet";
/** The version of `@vladmandic/face-api` whose models are shipped (web/package.json pins it). */
export const MODEL_VERSION = "1.7.15";
export const DEFAULT_INTERVAL_MS = 30_000;
/** No faster than this, whatever the options say. */
export const MIN_INTERVAL_MS = 1_000;
/** Until a reference is taken, try again this often (or at the interval if shorter). */
export const REFERENCE_RETRY_MS = 5_000;
/** A reference needs exactly one face detected at least this confidently (the server's MIN_QUALITY). */
export const MIN_REFERENCE_QUALITY = 0.5;

/** One face found in a frame: the detector's score and the 128-d descriptor (kept on the device). */
export interface Detection {
  score: number;
  descriptor: ArrayLike<number>;
}

/** The on-device model behind `take-face.js`. */
export interface FaceEngine {
  /** The tfjs backend in use (`webgl` or `cpu`). */
  readonly backend: string;
  detect(video: HTMLVideoElement): Promise<Detection[]>;
}

/** What a face check sends: scores only. */
export interface FaceCheckData {
  similarity: number;
  model_id: string;
  model_version: string;
  face_count: number;
  quality: number;
}

/** Euclidean distance between two descriptors (face-api's own measure). */
export function distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`descriptors differ in length (${a.length} vs ${b.length})`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    sum += d * d;
  }
  return Math.sqrt(sum);
}

/**
 * The similarity sent: 1 − euclidean distance, clamped to [0, 1]. face-api's descriptors are
 * unit-length, so distances run from 0 (identical) to 2; its authors' usual "same person" cut is a
 * distance of 0.6, a similarity of 0.4. The server needs a threshold calibrated for this model id
 * and version before it interprets these scores (integrity/src/face.rs `THRESHOLDS`).
 */
export function similarityFromDistance(d: number): number {
  if (!Number.isFinite(d)) return 0;
  return Math.min(1, Math.max(0, 1 - d));
}

function unit(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}

/** What one frame gives: a new reference, a check to send, or nothing yet. */
export type FrameOutcome =
  | { kind: "reference"; descriptor: Float32Array }
  | { kind: "check"; check: FaceCheckData }
  | { kind: "wait" };

/**
 * - No face: a check with `face_count` 0, similarity 0 and quality 0 (the server reads the
 *   similarity only when exactly one face was seen; "no face" is its own signal).
 * - No reference yet: one face detected with at least MIN_REFERENCE_QUALITY becomes the reference
 *   (nothing is sent: a reference compared with itself says nothing); several faces are sent with
 *   similarity 0; a single doubtful face waits for a better frame.
 * - With a reference: the similarity of the best-matching face, the number of faces, and that
 *   face's detection score as the quality.
 */
export function frameOutcome(reference: ArrayLike<number> | null, faces: readonly Detection[]): FrameOutcome {
  const check = (similarity: number, quality: number): FrameOutcome => ({
    kind: "check",
    check: { similarity: unit(similarity), model_id: MODEL_ID, model_version: MODEL_VERSION, face_count: faces.length, quality: unit(quality) },
  });
  if (faces.length === 0) return check(0, 0);
  if (reference === null) {
    const only = faces[0] as Detection;
    if (faces.length === 1) {
      return only.score >= MIN_REFERENCE_QUALITY ? { kind: "reference", descriptor: Float32Array.from(only.descriptor) } : { kind: "wait" };
    }
    return check(0, Math.max(...faces.map((f) => f.score)));
  }
  let best = faces[0] as Detection;
  let bestSimilarity = -1;
  for (const f of faces) {
    const s = similarityFromDistance(distance(reference, f.descriptor));
    if (s > bestSimilarity) {
      bestSimilarity = s;
      best = f;
    }
  }
  return check(bestSimilarity, best.score);
}

/** The interval actually used: the option, or the default, never below MIN_INTERVAL_MS. */
export function effectiveInterval(ms: number | undefined): number {
  if (ms === undefined || !Number.isFinite(ms)) return DEFAULT_INTERVAL_MS;
  return Math.max(MIN_INTERVAL_MS, Math.round(ms));
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const windowTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface LoopOptions {
  /** One frame's faces (the camera and the model). */
  sample: () => Promise<Detection[]>;
  /** Sends a check; false when the capture refused it (consent withdrawn): the loop stops. */
  record: (check: FaceCheckData) => boolean;
  intervalMs?: number;
  timers?: Timers;
  /** After each frame (for the page's status line). */
  onOutcome?: (outcome: FrameOutcome) => void;
  /** A frame failed (the model threw): the loop goes on at the next tick. */
  onError?: (err: unknown) => void;
}

/**
 * The cadence: a frame at once, then one every `intervalMs` after the previous one ended (never
 * two at a time); while no reference is taken, every REFERENCE_RETRY_MS (or the interval, if
 * shorter). Nothing runs after `stop()`, and a frame in flight when it stops sends nothing.
 */
export class FaceLoop {
  private reference: Float32Array | null = null;
  private handle: unknown = null;
  private stopped = false;
  private running = false;
  readonly intervalMs: number;
  private readonly timers: Timers;
  sent = 0;

  constructor(private readonly options: LoopOptions) {
    this.intervalMs = effectiveInterval(options.intervalMs);
    this.timers = options.timers ?? windowTimers;
  }

  get hasReference(): boolean {
    return this.reference !== null;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  start(): void {
    if (this.stopped || this.running || this.handle !== null) return;
    this.schedule(0);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.handle !== null) this.timers.clear(this.handle);
    this.handle = null;
    this.reference = null; // the reference descriptor is forgotten, not kept
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.handle = this.timers.set(() => {
      this.handle = null;
      void this.tick();
    }, ms);
  }

  /** One frame (exported through the class for the tests). */
  async tick(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    try {
      const faces = await this.options.sample();
      if (this.stopped) return;
      const outcome = frameOutcome(this.reference, faces);
      if (outcome.kind === "reference") this.reference = outcome.descriptor;
      if (outcome.kind === "check") {
        if (!this.options.record(outcome.check)) return this.stop();
        this.sent += 1;
      }
      this.options.onOutcome?.(outcome);
    } catch (err) {
      if (!this.stopped) this.options.onError?.(err);
    } finally {
      this.running = false;
    }
    this.schedule(this.reference === null ? Math.min(REFERENCE_RETRY_MS, this.intervalMs) : this.intervalMs);
  }
}

/** Is face continuity part of this assessment's monitoring (`monitoring.face_continuity`)? */
export function faceMonitored(monitoring: unknown): boolean {
  if (Array.isArray(monitoring)) {
    return monitoring.some((m) => m === "face_continuity" || (m && typeof m === "object" && (m as Record<string, unknown>).scope === "face_continuity"));
  }
  return !!monitoring && typeof monitoring === "object" && (monitoring as Record<string, unknown>).face_continuity === true;
}

declare const __FACE_JS__: string;

/** The lazily loaded model bundle (its URL carries its content hash, set by build-take.mjs). */
export const FACE_JS_URL: string = typeof __FACE_JS__ === "string" ? __FACE_JS__ : "/take/assets/take-face.js";
export const MODELS_URL = "/take/assets/models";

async function loadDefaultEngine(): Promise<FaceEngine> {
  // A variable, not a literal: esbuild leaves this import to the browser (a separate file,
  // fetched only when face checks start).
  const url: string = FACE_JS_URL;
  const mod = (await import(url)) as { createEngine: (modelsUrl: string) => Promise<FaceEngine> };
  return mod.createEngine(MODELS_URL);
}

export interface FaceCheckOptions {
  /** ms between two checks (default 30 s, at least 1 s). */
  intervalMs?: number;
  /** Where the camera preview and its status go. */
  container?: HTMLElement;
  /** Announces a change to the candidate (the page's polite live region). */
  say?: (text: string) => void;
  /** The model (tests inject a fake); by default `take-face.js`, imported on first use. */
  loadEngine?: () => Promise<FaceEngine>;
  /** The camera (tests inject a fake); by default `navigator.mediaDevices.getUserMedia`. */
  getUserMedia?: (constraints: MediaStreamConstraints) => Promise<MediaStream>;
}

/** What the page shows while checks run; read by the browser test. */
export interface FaceState {
  state: "starting" | "loading" | "running" | "no_camera" | "failed" | "stopped";
  backend?: string;
  sent: number;
  reference: boolean;
}

function cameraProblem(err: unknown): string {
  const name = err instanceof DOMException || err instanceof Error ? err.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") return "Camera access was not allowed, so face checks are off. You can keep working normally.";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "No camera was found, so face checks are off. You can keep working normally.";
  if (name === "NotReadableError") return "The camera is in use by another application, so face checks are off. You can keep working normally.";
  return "The camera could not be started, so face checks are off. You can keep working normally.";
}

/**
 * Starts periodic face checks and returns a function that stops them (the camera light goes off,
 * the reference is forgotten). Call it only with the `face_continuity` consent on an assessment
 * that monitors face continuity; `capture.faceCheck` refuses checks once the scope is withdrawn,
 * which also stops the loop.
 */
export function startFaceChecks(capture: Capture, opts: FaceCheckOptions = {}): () => void {
  const state: FaceState = { state: "starting", sent: 0, reference: false };
  const status = h("p", { class: "face-status small-text", role: "status", "data-testid": "face-status" }, "Face checks: starting the camera…");
  const video = h("video", {
    class: "face-video",
    muted: true,
    playsinline: true,
    autoplay: true,
    "aria-label": "Your camera preview (the picture stays on this device)",
    "data-testid": "face-video",
  }) as HTMLVideoElement;
  video.muted = true;
  video.playsInline = true;
  const caption = h("figcaption", { id: "face-cap" }, "Camera preview: face checks run on this device; only a score is sent.");
  const toggle = h("button", { type: "button", class: "small", "aria-pressed": "false", "data-testid": "face-hide" }, "Hide preview");
  const box = h(
    "figure",
    { class: "face-preview", "aria-labelledby": "face-cap", "data-testid": "face-preview" },
    video,
    caption,
    toggle,
    status,
  );
  toggle.addEventListener("click", () => {
    const hidden = box.dataset.hidden !== "true";
    box.dataset.hidden = String(hidden);
    toggle.setAttribute("aria-pressed", String(hidden));
    toggle.textContent = hidden ? "Show preview" : "Hide preview";
  });
  opts.container?.append(box);
  const publish = () => {
    box.dataset.state = state.state;
    (window as unknown as { __clarityFace?: FaceState }).__clarityFace = { ...state };
  };
  publish();

  let stream: MediaStream | null = null;
  let loop: FaceLoop | null = null;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    loop?.stop();
    for (const t of stream?.getTracks() ?? []) t.stop();
    stream = null;
    video.srcObject = null;
    if (state.state === "running" || state.state === "starting" || state.state === "loading") {
      state.state = "stopped";
      status.textContent = "Face checks have stopped; the camera is off.";
    }
    box.querySelector("video")?.remove();
    toggle.remove();
    caption.textContent = "Face checks (camera off)";
    publish();
  };

  void (async () => {
    const gum = opts.getUserMedia ?? ((c: MediaStreamConstraints) => navigator.mediaDevices.getUserMedia(c));
    try {
      stream = await gum({ audio: false, video: { width: { ideal: 320 }, height: { ideal: 240 }, facingMode: "user" } });
    } catch (err) {
      if (stopped) return;
      state.state = "no_camera";
      status.textContent = cameraProblem(err);
      opts.say?.(status.textContent);
      video.remove();
      toggle.remove();
      caption.textContent = "Face checks (camera off)";
      return publish();
    }
    if (stopped) {
      for (const t of stream.getTracks()) t.stop();
      return;
    }
    video.srcObject = stream;
    await video.play().catch(() => {});
    state.state = "loading";
    status.textContent = "Face checks: loading the on-device model…";
    publish();
    let engine: FaceEngine;
    try {
      engine = await (opts.loadEngine ?? loadDefaultEngine)();
    } catch (err) {
      if (stopped) return;
      console.error("face checks: the on-device model could not be loaded", err);
      state.state = "failed";
      status.textContent = "The face-check model could not be loaded, so face checks are off. You can keep working normally.";
      opts.say?.(status.textContent);
      for (const t of stream?.getTracks() ?? []) t.stop();
      video.remove();
      toggle.remove();
      caption.textContent = "Face checks (camera off)";
      return publish();
    }
    if (stopped) return;
    state.state = "running";
    state.backend = engine.backend;
    box.dataset.backend = engine.backend;
    status.textContent = "Face checks: on. Looking for your face…";
    publish();
    loop = new FaceLoop({
      ...(opts.intervalMs !== undefined ? { intervalMs: opts.intervalMs } : {}),
      sample: async () => {
        if (video.readyState < 2) await new Promise((r) => video.addEventListener("loadeddata", r, { once: true }));
        return engine.detect(video);
      },
      record: (check) => {
        const sent = capture.faceCheck(check);
        // Refused: the consent was withdrawn (or the capture closed): the camera goes off too.
        if (!sent) queueMicrotask(stop);
        return sent;
      },
      onOutcome: (o) => {
        state.sent = loop?.sent ?? state.sent;
        state.reference = loop?.hasReference ?? false;
        const at = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        status.textContent =
          o.kind === "reference"
            ? "Face checks: on. Your reference was taken (kept on this device only)."
            : o.kind === "check" && o.check.face_count === 0
              ? `Face checks: on. No face seen at ${at}.`
              : o.kind === "check"
                ? `Face checks: on. Last check at ${at}.`
                : "Face checks: on. Looking for your face…";
        publish();
      },
      onError: (err) => console.error("face checks: a frame failed", err),
    });
    loop.start();
  })();

  return stop;
}
