/**
 * The capture: numbers what the candidate does, stores it, and sends it in batches until the
 * server acknowledged it.
 *
 * Guarantees, and how:
 * - **Contiguous `seq`, across reloads.** Numbers are given in capture order and stored with the
 *   event ([`QueueStorage`]); a new instance continues after the highest stored or acknowledged
 *   number, so none is skipped or reused.
 * - **Nothing is sent before it is stored.** So the server never holds a `seq` the queue could
 *   forget and number again (except when storage fails; see `storageError`).
 * - **Nothing is dropped or renumbered silently.** Events leave the queue only when the server
 *   acknowledged them (`last_seq`). A refusal that retrying cannot fix stops sending (state
 *   `stopped`, with the server's code) and keeps the queue; capture goes on into the queue.
 * - **Order the server's analyses rely on.** A key press is numbered at key-down, before the
 *   edit it causes, and sent once its key-up is known; a throttled cursor is numbered before any
 *   later event, so it is valid in the workspace it was taken in.
 * - **Events the server would refuse are not queued** ([`checkData`], [`WorkspaceShape`]): one
 *   refused event would block every later one. They are counted and reported instead.
 */

import { backoffDelay, parseRetryAfter, retryAfterDelay, type BackoffOptions } from "./backoff";
import { keyClass } from "./keys";
import { Cell, type Observable } from "./observable";
import { OverheadMeter, type OverheadSummary } from "./overhead";
import type { QueueMeta, QueueStorage } from "./storage";
import { jsonBytes, splitText } from "./text";
import { encodeBatch, sendBatch, type Outcome, type Problem, type TransportOptions } from "./transport";
import { checkData, WorkspaceShape, type Refusal } from "./validate";
import type { EditOrigin, TelemetryData, TelemetryEvent } from "./wire";

/** The connection as the candidate should see it. */
export type ConnectionState = "online" | "retrying" | "offline" | "stopped";

/** The capture's state, for a connection indicator. */
export interface CaptureStatus {
  state: ConnectionState;
  /** Events captured and not yet acknowledged (as of the last change of this status). */
  pending: number;
  /** The highest `seq` numbered. */
  lastSeq: number;
  /** The highest `seq` the server acknowledged. */
  ackedSeq: number;
  /** When the next attempt is due (wall-clock ms), while `retrying` or `offline`. */
  retryAt: number | null;
  /** Why the last attempt failed (`retrying`, `offline`) or why sending stopped (`stopped`). */
  problem: Problem | null;
  /** Events refused at capture (never queued), and the latest refusal. */
  refused: number;
  lastRefusal: (Refusal & { kind: string }) | null;
  /** Set when the queue could not be stored: events are then held, and sent, from memory only. */
  storageError: string | null;
}

/** What the candidate agreed to (the session's consent scopes). */
export interface Scopes {
  keystroke_dynamics: boolean;
  face_continuity: boolean;
}

/** Clocks and timers, injectable for tests. */
export interface Clock {
  /** Monotonic ms since `timeOrigin` (`performance.now()`). */
  now(): number;
  /** Wall-clock ms at which `now()` was 0 (`performance.timeOrigin`). */
  timeOrigin: number;
  /** Wall-clock ms since the epoch (`Date.now()`). */
  wallNow(): number;
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The browser's clocks. */
export const browserClock: Clock = {
  now: () => performance.now(),
  timeOrigin: typeof performance !== "undefined" ? performance.timeOrigin : 0,
  wallNow: () => Date.now(),
  setTimeout: (f, ms) => setTimeout(f, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** How to build a capture. */
export interface CaptureOptions {
  sessionId: string;
  /** The candidate session token (`cst_...`). */
  token: string;
  storage: QueueStorage;
  /** Origin (and prefix) of the Clarity API; `""` (the default) for the page's own. */
  baseUrl?: string;
  /**
   * The highest `seq` the server acknowledged, from the server (on resume, and on another
   * device): queued events up to it are dropped as delivered, numbering continues after it.
   */
  serverAckedSeq?: number;
  /**
   * The workspace at `serverAckedSeq` (file → content or UTF-16 length), to check edits against
   * as the server will. Without it, only the per-event checks run.
   */
  files?: Iterable<[string, string | number]>;
  /** Consent scopes; both default to `true`. */
  scopes?: Partial<Scopes>;
  /** Send when this many events are ready (50). */
  batchEvents?: number;
  /** ... or when the oldest unsent event is this old, in ms (1,000). */
  batchDelayMs?: number;
  /** Most events in one request (1,000, the server's default cap; halved on 413). */
  maxBatchEvents?: number;
  /** Largest batch body in bytes (512 KiB; the server takes 1 MiB). */
  maxBatchBytes?: number;
  /** Text longer than this many JSON bytes is split over several events (256 KiB). */
  maxEventTextBytes?: number;
  /** At most one cursor event per this many ms; the latest position wins (250). */
  cursorThrottleMs?: number;
  /** A key held longer than this, in ms, is sent without its key-up (5,000). */
  keyHoldMs?: number;
  backoff?: BackoffOptions;
  /** Request timeout in ms (35,000). */
  requestTimeoutMs?: number;
  /** Server clock minus client clock, in ms, to stamp `ts` with (learnt from `Date` answers too). */
  clockOffsetMs?: number;
  /** Called with every event refused at capture. */
  onRefused?: (kind: string, refusal: Refusal) => void;
  fetch?: typeof fetch;
  clock?: Clock;
  random?: () => number;
}

/** One queued event. */
interface Entry {
  event: TelemetryEvent;
  /** A key press waiting for its key-up: not sendable yet. */
  open: boolean;
  /** Some version of it is in storage. */
  stored: boolean;
  /** Changed since last stored. */
  dirty: boolean;
  /** Sent at least once (or loaded from storage, where a previous page may have sent it). */
  sent: boolean;
  /** `clock.now()` when captured. */
  at: number;
  /** Its JSON's UTF-8 size (0: not measured yet). */
  bytes: number;
}

/** The subset of `KeyboardEvent` read (never `key` beyond its class). */
export interface KeyLike {
  key: string;
  code?: string;
  repeat?: boolean;
  /** `Event.timeStamp`: ms on the `performance.now()` clock. */
  timeStamp?: number;
}

const PERMANENT = "stopped";

/** The capture library's entry point. */
export class Capture {
  private readonly entries: Entry[] = [];
  private readonly openKeys = new Map<string, Entry>();
  private readonly statusCell: Cell<CaptureStatus>;
  private readonly meter = new OverheadMeter();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly transport: TransportOptions;
  private readonly workspace: WorkspaceShape | null;
  private scopes: Scopes;
  private lastSeq: number;
  private ackedSeq: number;
  private readonly monoEpochMs: number;
  private clockOffsetMs: number;
  private batchCap: number;
  private failures = 0;
  private inFlight = false;
  private stopped = false;
  private closed = false;
  private flushWanted = false;
  private retryTimer: unknown = null;
  private wakeTimer: unknown = null;
  private wakeAt = Infinity;
  private persistScheduled = false;
  private persisting = false;
  private persistAgain = false;
  private keepaliveInFlight = false;
  private io: Promise<void> = Promise.resolve();
  private storageError: string | null = null;
  private refused = 0;
  private lastRefusal: (Refusal & { kind: string }) | null = null;
  private cursorPending: TelemetryData | null = null;
  private cursorTimer: unknown = null;
  private lastCursorAt = -Infinity;
  private drainWaiters: Array<() => void> = [];
  private batches = 0;
  private batchedEvents = 0;
  private requests = 0;

  private constructor(
    private readonly options: CaptureOptions,
    meta: QueueMeta,
    loaded: TelemetryEvent[],
  ) {
    this.clock = options.clock ?? browserClock;
    this.random = options.random ?? Math.random;
    this.transport = {
      baseUrl: options.baseUrl ?? "",
      sessionId: options.sessionId,
      token: options.token,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      timeoutMs: options.requestTimeoutMs ?? 35_000,
    };
    this.scopes = { keystroke_dynamics: true, face_continuity: true, ...options.scopes };
    this.clockOffsetMs = options.clockOffsetMs ?? 0;
    this.batchCap = Math.min(options.maxBatchEvents ?? 1000, 1000);
    this.monoEpochMs = meta.monoEpochMs;
    this.ackedSeq = meta.ackedSeq;
    this.lastSeq = meta.lastSeq;
    this.workspace = options.files ? new WorkspaceShape(options.files) : null;
    const now = this.clock.now();
    for (const event of loaded) {
      this.workspace?.apply(event.data);
      this.entries.push({ event, open: false, stored: true, dirty: false, sent: true, at: now, bytes: 0 });
    }
    this.statusCell = new Cell(this.snapshot("online"));
  }

  /**
   * Opens the capture of a session over `storage`: loads what a previous page left, drops what
   * the server acknowledged, and starts sending what is left.
   */
  static async open(options: CaptureOptions): Promise<Capture> {
    const clock = options.clock ?? browserClock;
    const stored = await options.storage.load(options.sessionId);
    const meta: QueueMeta = stored.meta ?? { lastSeq: 0, ackedSeq: 0, monoEpochMs: Math.floor(clock.timeOrigin) };
    const ackedSeq = Math.max(meta.ackedSeq, options.serverAckedSeq ?? 0);
    const events = stored.events.filter((e) => e.seq > ackedSeq);
    const lastStored = stored.events.at(-1)?.seq ?? 0;
    const resumed: QueueMeta = {
      monoEpochMs: meta.monoEpochMs,
      ackedSeq,
      lastSeq: Math.max(meta.lastSeq, lastStored, ackedSeq),
    };
    const capture = new Capture(options, resumed, events);
    await options.storage.ack(options.sessionId, ackedSeq, resumed).catch((e: unknown) => capture.storageFailed(e));
    capture.flushWanted = events.length > 0;
    capture.pump();
    return capture;
  }

  /** The connection state and queue counters, observable. */
  get status(): Observable<CaptureStatus> {
    return this.statusCell;
  }

  /** The events captured and not yet acknowledged, in `seq` order (copies). */
  pendingEvents(): TelemetryEvent[] {
    return this.entries.map((e) => structuredCloneEvent(e.event));
  }

  /** The capture path's cost per captured event (p50 / p99 / max, in ms). */
  overhead(): OverheadSummary {
    return this.meter.summary();
  }

  /** Requests sent, and batch sizes, for reporting. */
  traffic(): { requests: number; batches: number; events: number; meanBatch: number } {
    return {
      requests: this.requests,
      batches: this.batches,
      events: this.batchedEvents,
      meanBatch: this.batches === 0 ? 0 : this.batchedEvents / this.batches,
    };
  }

  // ---- capture -------------------------------------------------------------------------------

  /** A key went down (capture phase, before the editor handles it). */
  keyDown(e: KeyLike): boolean {
    const t0 = this.clock.now();
    let ok = false;
    if (this.scopes.keystroke_dynamics) {
      const down = this.mono(e.timeStamp);
      const id = e.code || e.key;
      const held = this.openKeys.get(id);
      if (held) this.closeKey(id, held, undefined);
      const data: TelemetryData = { type: "keystroke", down_ms: down, key_class: keyClass(e.key) };
      // An auto-repeat has no key-up of its own: sent at once.
      const entry = this.enqueue(data, !e.repeat);
      if (entry && !e.repeat) this.openKeys.set(id, entry);
      ok = entry !== null;
    }
    this.meter.record(this.clock.now() - t0);
    return ok;
  }

  /** A key came up. */
  keyUp(e: KeyLike): void {
    const t0 = this.clock.now();
    const id = e.code || e.key;
    const entry = this.openKeys.get(id);
    if (entry) this.closeKey(id, entry, this.mono(e.timeStamp));
    this.meter.record(this.clock.now() - t0);
  }

  /** `deleted` UTF-16 units at `position` of `file` replaced by `inserted`. */
  edit(file: string, position: number, deleted: number, inserted: string, origin: EditOrigin): boolean {
    return this.timed(() => {
      const max = this.options.maxEventTextBytes ?? 256 * 1024;
      const pieces = jsonBytes(inserted) <= max ? [inserted] : splitText(inserted, max);
      let at = position;
      let ok = true;
      pieces.forEach((piece, i) => {
        const data: TelemetryData = { type: "edit", file, position: at, deleted: i === 0 ? deleted : 0, inserted: piece, origin };
        ok = this.enqueue(data) !== null && ok;
        at += piece.length;
      });
      return ok;
    });
  }

  /** A file was created (with its content; a long content continues in `other` edits). */
  fileCreated(file: string, content = ""): boolean {
    return this.timed(() => {
      const pieces = splitText(content, this.options.maxEventTextBytes ?? 256 * 1024);
      const [first = "", ...rest] = pieces;
      let ok = this.enqueue({ type: "file_created", file, content: first }) !== null;
      let at = first.length;
      for (const piece of rest) {
        ok = this.enqueue({ type: "edit", file, position: at, deleted: 0, inserted: piece, origin: "other" }) !== null && ok;
        at += piece.length;
      }
      return ok;
    });
  }

  /** A file was renamed. */
  fileRenamed(file: string, newFile: string): boolean {
    return this.timed(() => this.enqueue({ type: "file_renamed", file, new_file: newFile }) !== null);
  }

  /** A file was deleted. */
  fileDeleted(file: string): boolean {
    return this.timed(() => this.enqueue({ type: "file_deleted", file }) !== null);
  }

  /** The page lost focus (keys held now will not report their key-up here). */
  focusLost(): boolean {
    return this.timed(() => {
      for (const [id, entry] of [...this.openKeys]) this.closeKey(id, entry, undefined);
      return this.enqueue({ type: "focus_lost" }) !== null;
    });
  }

  /** The page regained focus. */
  focusRegained(): boolean {
    return this.timed(() => this.enqueue({ type: "focus_regained" }) !== null);
  }

  /**
   * The cursor (and selection end) in `file`, throttled: at most one event per
   * `cursorThrottleMs`, the latest position winning; a pending one is numbered before any later
   * event, so it is never sent after an edit that could make it invalid.
   */
  cursor(file: string, position: number, selectionEnd?: number): boolean {
    return this.timed(() => {
      const data: TelemetryData =
        selectionEnd === undefined || selectionEnd === position
          ? { type: "cursor", file, position }
          : { type: "cursor", file, position, selection_end: selectionEnd };
      const wait = this.options.cursorThrottleMs ?? 250;
      const now = this.clock.now();
      if (this.cursorPending === null && now - this.lastCursorAt >= wait) {
        this.lastCursorAt = now;
        return this.enqueue(data) !== null;
      }
      this.cursorPending = data;
      if (this.cursorTimer === null) {
        this.cursorTimer = this.clock.setTimeout(() => {
          this.cursorTimer = null;
          this.releaseCursor();
        }, Math.max(0, this.lastCursorAt + wait - now));
      }
      return true;
    });
  }

  /** The candidate ran code or tests. */
  codeRun(run: { command: string; exit_code: number; duration_ms: number; tests_passed?: number; tests_failed?: number }): boolean {
    return this.timed(() => this.enqueue({ type: "code_run", ...run }) !== null);
  }

  /** A face check computed on the device (only with the `face_continuity` scope). */
  faceCheck(check: { similarity: number; model_id: string; model_version: string; face_count: number; quality: number }): boolean {
    if (!this.scopes.face_continuity) return false;
    return this.timed(() => this.enqueue({ type: "face_check", ...check }) !== null);
  }

  /** Changes the consent scopes (a withdrawal stops that capture from now on). */
  setScopes(scopes: Partial<Scopes>): void {
    this.scopes = { ...this.scopes, ...scopes };
    if (!this.scopes.keystroke_dynamics) {
      for (const [id, entry] of [...this.openKeys]) this.closeKey(id, entry, undefined);
    }
  }

  // ---- sending -------------------------------------------------------------------------------

  /**
   * Sends everything captured so far now (open key presses go without their key-up) and
   * resolves once it is acknowledged or sending stopped. While offline it waits for the network.
   */
  flush(): Promise<CaptureStatus> {
    this.releaseAll();
    this.flushWanted = true;
    const drained = new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    this.pump();
    this.checkDrained();
    return drained.then(() => this.statusCell.get());
  }

  /**
   * The page is being hidden or unloaded: stores what is not stored yet and sends what is
   * stored with `keepalive` (at most `keepaliveBytes`, under the browser's 64 KiB), so it can
   * arrive after the page is gone. Anything left is sent by the next page from storage.
   */
  flushOnHide(keepaliveBytes = 60 * 1024): void {
    this.releaseAll();
    this.persist();
    // `visibilitychange` and `pagehide` often come together: one keepalive request at a time
    // (the browser's 64 KiB budget is shared by all of them in flight).
    if (this.stopped || this.keepaliveInFlight) return;
    const batch = this.readyBatch(keepaliveBytes);
    if (batch.length === 0) return;
    for (const e of batch) e.sent = true;
    this.requests++;
    this.keepaliveInFlight = true;
    void sendBatch(this.transport, encodeBatch(batch.map((e) => e.event)), true).then((outcome) => {
      this.keepaliveInFlight = false;
      // The normal loop retries failures; only acknowledgements and stops matter here.
      if (outcome.kind === "acked") {
        this.acked(outcome, batch);
        this.checkDrained();
      } else if (outcome.kind === "stop") {
        this.stop(outcome.problem);
      }
    });
  }

  /** Retries now instead of waiting (the browser reports it is back online). */
  retryNow(): void {
    if (this.retryTimer !== null) {
      this.clock.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.flushWanted = true;
    this.pump();
  }

  /**
   * Sends again after a stop, e.g. with a new token after `session_token_expired`; the queue
   * was kept.
   */
  restart(token?: string): void {
    if (token !== undefined) this.transport.token = token;
    this.stopped = false;
    this.failures = 0;
    this.setStatus("online", null);
    this.retryNow();
  }

  /** Stops timers and sending (the queue stays in storage). */
  close(): void {
    this.closed = true;
    for (const t of [this.retryTimer, this.wakeTimer, this.cursorTimer]) if (t !== null) this.clock.clearTimeout(t);
    this.retryTimer = this.wakeTimer = this.cursorTimer = null;
  }

  // ---- internals -----------------------------------------------------------------------------

  private timed(f: () => boolean): boolean {
    const t0 = this.clock.now();
    try {
      return f();
    } finally {
      this.meter.record(this.clock.now() - t0);
    }
  }

  /** ms on the session's monotonic clock for a `performance.now()` reading. */
  private mono(timeStamp: number | undefined): number {
    const t = this.clock.timeOrigin + (timeStamp ?? this.clock.now()) - this.monoEpochMs;
    return Math.max(0, Math.round(t * 1000) / 1000);
  }

  private enqueue(data: TelemetryData, open = false): Entry | null {
    if (data.type !== "cursor") this.releaseCursor();
    const refusal = checkData(data) ?? this.workspace?.check(data) ?? null;
    if (refusal) {
      this.refused++;
      this.lastRefusal = { kind: data.type, ...refusal };
      this.options.onRefused?.(data.type, refusal);
      this.publish();
      return null;
    }
    this.workspace?.apply(data);
    const event: TelemetryEvent = {
      seq: ++this.lastSeq,
      ts: new Date(this.clock.wallNow() + this.clockOffsetMs).toISOString(),
      data,
    };
    const entry: Entry = { event, open, stored: false, dirty: true, sent: false, at: this.clock.now(), bytes: 0 };
    this.entries.push(entry);
    // Sending is checked when the entry is stored (`persist`), the count trigger included.
    this.schedulePersist();
    this.schedule(entry.at + (open ? this.keyHoldMs() : this.batchDelayMs()));
    return entry;
  }

  private closeKey(id: string, entry: Entry, up: number | undefined): void {
    this.openKeys.delete(id);
    if (!entry.open) return;
    const data = entry.event.data;
    if (up !== undefined && data.type === "keystroke") data.up_ms = Math.max(up, data.down_ms);
    entry.open = false;
    entry.dirty = true;
    this.schedulePersist();
    this.schedule(entry.at + this.batchDelayMs());
  }

  private releaseCursor(): void {
    const data = this.cursorPending;
    if (data === null) return;
    this.cursorPending = null;
    if (this.cursorTimer !== null) {
      this.clock.clearTimeout(this.cursorTimer);
      this.cursorTimer = null;
    }
    this.lastCursorAt = this.clock.now();
    this.enqueue(data);
  }

  private releaseAll(): void {
    this.releaseCursor();
    for (const [id, entry] of [...this.openKeys]) this.closeKey(id, entry, undefined);
  }

  private keyHoldMs(): number {
    return this.options.keyHoldMs ?? 5000;
  }

  private batchDelayMs(): number {
    return this.options.batchDelayMs ?? 1000;
  }

  /** Leading entries that may be sent: closed, and stored (unless storage is failing). */
  private readyCount(): number {
    let n = 0;
    for (const e of this.entries) {
      if (e.open || !(e.stored || this.storageError !== null)) break;
      n++;
    }
    return n;
  }

  private readyBatch(maxBytes: number): Entry[] {
    const ready = Math.min(this.readyCount(), this.batchCap, 1000);
    const out: Entry[] = [];
    let bytes = 12; // {"events":[]}
    for (let i = 0; i < ready; i++) {
      const e = this.entries[i]!;
      // Measured when first sent, not on the capture path.
      if (e.bytes === 0) e.bytes = eventBytes(e.event);
      if (out.length > 0 && bytes + e.bytes + 1 > maxBytes) break;
      bytes += e.bytes + 1;
      out.push(e);
    }
    return out;
  }

  /** Wakes `pump` at `at` (monotonic ms) unless it is due earlier anyway. */
  private schedule(at: number): void {
    if (this.closed || at >= this.wakeAt) return;
    if (this.wakeTimer !== null) this.clock.clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = this.clock.setTimeout(() => {
      this.wakeTimer = null;
      this.wakeAt = Infinity;
      this.pump();
    }, Math.max(0, at - this.clock.now()));
  }

  /** Sends the next batch if one is due and nothing is in flight. */
  private pump(): void {
    if (this.closed || this.stopped || this.inFlight || this.retryTimer !== null) return;
    const now = this.clock.now();
    // A key held too long goes without its key-up rather than hold everything after it.
    const first = this.entries.find((e) => e.open);
    if (first && now - first.at >= this.keyHoldMs()) {
      for (const [id, entry] of [...this.openKeys]) if (now - entry.at >= this.keyHoldMs()) this.closeKey(id, entry, undefined);
    }
    const ready = this.readyCount();
    if (ready === 0) {
      if (first) this.schedule(first.at + this.keyHoldMs());
      return;
    }
    const oldest = this.entries[0]!.at;
    const due = this.flushWanted || ready >= (this.options.batchEvents ?? 50) || now - oldest >= this.batchDelayMs();
    if (!due) {
      this.schedule(oldest + this.batchDelayMs());
      return;
    }
    void this.send(this.readyBatch(this.options.maxBatchBytes ?? 512 * 1024));
  }

  private async send(batch: Entry[]): Promise<void> {
    this.inFlight = true;
    const firstAttempt = batch.map((e) => !e.sent);
    for (const e of batch) e.sent = true;
    this.requests++;
    let outcome: Outcome;
    try {
      outcome = await sendBatch(this.transport, encodeBatch(batch.map((e) => e.event)));
    } finally {
      this.inFlight = false;
    }
    if (this.closed) return;
    switch (outcome.kind) {
      case "acked": {
        this.batches++;
        this.batchedEvents += batch.length;
        // Duplicates are a prefix of the batch. A duplicate this client never sent before
        // means the server holds other events under these numbers (another device, lost
        // storage): stop rather than let the server drop them as copies.
        const dups = Math.min(outcome.result.duplicates, batch.length);
        const conflict = firstAttempt.slice(0, dups).some(Boolean) || outcome.result.last_seq > this.lastSeq;
        this.acked(outcome, batch);
        if (conflict) {
          this.stop({
            status: 200,
            code: "sequence_conflict",
            message: `the server already held seq ${batch[0]!.event.seq}..${outcome.result.last_seq} from elsewhere; resume from its acknowledged seq`,
            details: outcome.result,
          });
          return;
        }
        this.failures = 0;
        this.setStatus("online", null);
        break;
      }
      case "retry": {
        this.failures++;
        const after = parseRetryAfter(outcome.retryAfter, this.clock.wallNow());
        const wait = after !== null ? retryAfterDelay(after, this.random()) : backoffDelay(this.failures, this.random(), this.options.backoff);
        this.retryTimer = this.clock.setTimeout(() => {
          this.retryTimer = null;
          this.flushWanted = true;
          this.pump();
        }, wait);
        this.setStatus(outcome.offline ? "offline" : "retrying", outcome.problem, this.clock.wallNow() + wait);
        return;
      }
      case "shrink":
        if (batch.length === 1) {
          this.stop(outcome.problem);
          return;
        }
        this.batchCap = Math.max(1, Math.floor(batch.length / 2));
        this.flushWanted = true;
        break;
      case "stop":
        this.stop(outcome.problem);
        return;
    }
    this.pump();
    this.checkDrained();
  }

  /** Everything up to the server's `last_seq` is delivered: out of the queue and storage. */
  private acked(outcome: Extract<Outcome, { kind: "acked" }>, batch: Entry[]): void {
    if (outcome.serverDateMs !== null) {
      // `Date` has 1 s resolution: only a clearly wrong client clock is corrected.
      const offset = outcome.serverDateMs - this.clock.wallNow();
      if (Math.abs(offset) > 5000) this.clockOffsetMs = offset;
    }
    const last = Math.min(outcome.result.last_seq, this.lastSeq, batch.at(-1)!.event.seq);
    if (last <= this.ackedSeq) return;
    this.ackedSeq = last;
    let n = 0;
    while (n < this.entries.length && this.entries[n]!.event.seq <= last) n++;
    this.entries.splice(0, n);
    const meta = this.meta();
    this.io = this.io.then(() => this.options.storage.ack(this.options.sessionId, last, meta)).catch((e: unknown) => this.storageFailed(e));
    if (this.entries.length === 0) this.flushWanted = false;
    this.publish();
  }

  private stop(problem: Problem): void {
    this.stopped = true;
    this.setStatus(PERMANENT, problem);
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.entries.length > 0 && !this.stopped) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private meta(): QueueMeta {
    return { lastSeq: this.lastSeq, ackedSeq: this.ackedSeq, monoEpochMs: this.monoEpochMs };
  }

  private schedulePersist(): void {
    if (this.persistScheduled) return;
    this.persistScheduled = true;
    this.clock.setTimeout(() => {
      this.persistScheduled = false;
      this.persist();
    }, 0);
  }

  /** Stores every changed entry in one storage transaction, after earlier storage work. */
  private persist(): void {
    if (this.persisting) {
      // Stored when the write in progress completes (see `finally` below).
      this.persistAgain = true;
      return;
    }
    const dirty = this.entries.filter((e) => e.dirty);
    if (dirty.length === 0) return;
    for (const e of dirty) e.dirty = false;
    const events = dirty.map((e) => e.event);
    const meta = this.meta();
    this.persisting = true;
    this.io = this.io
      .then(() => this.options.storage.put(this.options.sessionId, events, meta))
      .then(
        () => {
          for (const e of dirty) e.stored = true;
          if (this.storageError !== null) {
            this.storageError = null;
            this.publish();
          }
        },
        (error: unknown) => {
          for (const e of dirty) e.dirty = true;
          this.storageFailed(error);
          // Try again later; meanwhile events are sent from memory.
          this.clock.setTimeout(() => this.persist(), 1000);
        },
      )
      .finally(() => {
        this.persisting = false;
        if (this.persistAgain) {
          this.persistAgain = false;
          this.persist();
        }
        this.pump();
      });
  }

  private storageFailed(error: unknown): void {
    this.storageError = String(error);
    this.publish();
  }

  private snapshot(state: ConnectionState, problem: Problem | null = null, retryAt: number | null = null): CaptureStatus {
    return {
      state,
      pending: this.entries.length,
      lastSeq: this.lastSeq,
      ackedSeq: this.ackedSeq,
      retryAt,
      problem,
      refused: this.refused,
      lastRefusal: this.lastRefusal,
      storageError: this.storageError,
    };
  }

  private setStatus(state: ConnectionState, problem: Problem | null, retryAt: number | null = null): void {
    this.statusCell.set(this.snapshot(state, problem, retryAt));
  }

  /** Publishes the counters with the current state. */
  private publish(): void {
    const s = this.statusCell.get();
    this.statusCell.set(this.snapshot(s.state, s.problem, s.retryAt));
  }
}

function eventBytes(event: TelemetryEvent): number {
  // Exact UTF-8 size of the JSON; computed once per event, off the key-down path for keys.
  return new TextEncoder().encode(JSON.stringify(event)).length;
}

function structuredCloneEvent(event: TelemetryEvent): TelemetryEvent {
  return JSON.parse(JSON.stringify(event)) as TelemetryEvent;
}
