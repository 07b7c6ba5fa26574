/**
 * The capture: what the candidate does, turned into telemetry events in the order the server's
 * analyses rely on, and handed to the [`Outbox`] that numbers, stores and sends them.
 *
 * - **A key press is numbered at key-down**, before the edit it causes (the provenance analysis
 *   attributes a typed edit to the key press just before it), and is sent once its key-up is
 *   known — or without it after `keyHoldMs`, on blur, on flush and on page hide.
 * - **A throttled cursor is numbered before any later event**, so it is always valid in the
 *   workspace it was taken in (the server refuses a cursor outside its file).
 * - **Events the server would refuse are not queued** ([`checkData`], [`WorkspaceShape`]): a batch
 *   is all-or-nothing and `seq` contiguous, so one refused event would block every later one for
 *   good. They are counted in the status and reported to `onRefused`.
 * - **Consent scopes**: no key press without `keystroke_dynamics`, no face check without
 *   `face_continuity`; `setScopes` withdraws from then on.
 *
 * Every capture method measures its own duration (`overhead()`): the cost the page pays per
 * event, storage and sending excluded (they run later, off the input path).
 */

import type { BackoffOptions } from "./backoff";
import { keyClass } from "./keys";
import type { Observable } from "./observable";
import { browserClock, Outbox, type CaptureStatus, type Clock, type Entry } from "./outbox";
import { OverheadMeter, type OverheadSummary } from "./overhead";
import type { QueueStorage } from "./storage";
import { jsonBytes, splitText } from "./text";
import { checkData, WorkspaceShape, type Refusal } from "./validate";
import type { EditOrigin, TelemetryData, TelemetryEvent } from "./wire";

export { browserClock } from "./outbox";
export type { CaptureStatus, Clock, ConnectionState } from "./outbox";

/** What the candidate agreed to (the session's consent scopes). */
export interface Scopes {
  keystroke_dynamics: boolean;
  face_continuity: boolean;
}

/** How to build a capture. */
export interface CaptureOptions {
  sessionId: string;
  /** The candidate session token (`cst_...`), sent as `Authorization: Bearer`. */
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
   * The workspace at `serverAckedSeq` (file → content or UTF-16 length), to check events
   * against as the server will. Without it, only the per-event checks run.
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
  /** Request timeout in ms (35,000: past the server's own 30 s limit). */
  requestTimeoutMs?: number;
  /** Server clock minus client clock, in ms, to stamp `ts` with (learnt from `Date` answers too). */
  clockOffsetMs?: number;
  /** Called with every event refused at capture. */
  onRefused?: (kind: string, refusal: Refusal) => void;
  fetch?: typeof fetch;
  clock?: Clock;
  random?: () => number;
}

/** The subset of `KeyboardEvent` read (`key` only to classify it). */
export interface KeyLike {
  key: string;
  code?: string;
  repeat?: boolean;
  /** `Event.timeStamp`: ms on the `performance.now()` clock. */
  timeStamp?: number;
}

/** The capture library's entry point. */
export class Capture {
  private readonly openKeys = new Map<string, Entry>();
  private readonly meter = new OverheadMeter();
  private readonly workspace: WorkspaceShape | null;
  private scopes: Scopes;
  private cursorPending: TelemetryData | null = null;
  private cursorTimer: unknown = null;
  private lastCursorAt = -Infinity;

  private constructor(
    private readonly options: CaptureOptions,
    private readonly clock: Clock,
    private readonly outbox: Outbox,
  ) {
    this.scopes = { keystroke_dynamics: true, face_continuity: true, ...options.scopes };
    this.workspace = options.files ? new WorkspaceShape(options.files) : null;
    // The workspace as the queued events leave it.
    for (const event of outbox.events()) this.workspace?.apply(event.data);
  }

  /**
   * Opens the capture of a session over `options.storage`: loads what a previous page left,
   * drops what the server acknowledged, and starts sending what is left.
   */
  static async open(options: CaptureOptions): Promise<Capture> {
    const clock = options.clock ?? browserClock;
    const outbox = await Outbox.open(
      {
        sessionId: options.sessionId,
        storage: options.storage,
        transport: {
          baseUrl: options.baseUrl ?? "",
          sessionId: options.sessionId,
          token: options.token,
          fetch: options.fetch ?? ((input, init) => fetch(input, init)),
          timeoutMs: options.requestTimeoutMs ?? 35_000,
        },
        clock,
        random: options.random ?? Math.random,
        batchEvents: options.batchEvents ?? 50,
        batchDelayMs: options.batchDelayMs ?? 1000,
        maxBatchEvents: options.maxBatchEvents ?? 1000,
        maxBatchBytes: options.maxBatchBytes ?? 512 * 1024,
        keyHoldMs: options.keyHoldMs ?? 5000,
        backoff: options.backoff,
        clockOffsetMs: options.clockOffsetMs ?? 0,
      },
      options.serverAckedSeq,
    );
    return new Capture(options, clock, outbox);
  }

  /** The connection state and queue counters, observable. */
  get status(): Observable<CaptureStatus> {
    return this.outbox.status;
  }

  /** The events captured and not yet acknowledged, in `seq` order (copies). */
  pendingEvents(): TelemetryEvent[] {
    return this.outbox.events().map((e) => JSON.parse(JSON.stringify(e)) as TelemetryEvent);
  }

  /** The capture path's cost per captured event (p50 / p99 / max, in ms). */
  overhead(): OverheadSummary {
    return this.meter.summary();
  }

  /** Requests sent, and batch sizes, for reporting. */
  traffic(): { requests: number; batches: number; events: number; meanBatch: number } {
    return this.outbox.traffic();
  }

  /** A key went down (listen in the capture phase, before the editor handles it). */
  keyDown(e: KeyLike): boolean {
    return this.timed(() => {
      if (!this.scopes.keystroke_dynamics) return false;
      const id = e.code || e.key;
      const held = this.openKeys.get(id);
      if (held) this.closeKey(id, held, undefined);
      const data: TelemetryData = { type: "keystroke", down_ms: this.mono(e.timeStamp), key_class: keyClass(e.key) };
      // An auto-repeat has no key-up of its own: it is complete at once.
      const entry = this.enqueue(data, !e.repeat);
      if (entry && !e.repeat) this.openKeys.set(id, entry);
      return entry !== null;
    });
  }

  /** A key came up. */
  keyUp(e: KeyLike): void {
    this.timed(() => {
      const id = e.code || e.key;
      const entry = this.openKeys.get(id);
      if (entry) this.closeKey(id, entry, this.mono(e.timeStamp));
      return true;
    });
  }

  /** `deleted` UTF-16 units at `position` of `file` replaced by `inserted`. */
  edit(file: string, position: number, deleted: number, inserted: string, origin: EditOrigin): boolean {
    return this.timed(() => {
      const max = this.options.maxEventTextBytes ?? 256 * 1024;
      const pieces = jsonBytes(inserted) <= max ? [inserted] : splitText(inserted, max);
      // The first piece replaces the range; the others follow it.
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

  /** A file was created (a long content continues in `other` edits). */
  fileCreated(file: string, content = ""): boolean {
    return this.timed(() => {
      const [first = "", ...rest] = splitText(content, this.options.maxEventTextBytes ?? 256 * 1024);
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
      this.closeAllKeys();
      return this.enqueue({ type: "focus_lost" }) !== null;
    });
  }

  /** The page regained focus. */
  focusRegained(): boolean {
    return this.timed(() => this.enqueue({ type: "focus_regained" }) !== null);
  }

  /**
   * The cursor (and the selection's other end) in `file`, throttled: at most one event per
   * `cursorThrottleMs`, the latest position winning.
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
    return this.timed(() => this.scopes.face_continuity && this.enqueue({ type: "face_check", ...check }) !== null);
  }

  /** Changes the consent scopes (a withdrawal stops that capture from now on). */
  setScopes(scopes: Partial<Scopes>): void {
    this.scopes = { ...this.scopes, ...scopes };
    if (!this.scopes.keystroke_dynamics) this.closeAllKeys();
  }

  /**
   * Sends everything captured so far now (held keys go without their key-up) and resolves once
   * it is acknowledged or sending stopped. While offline it waits for the network.
   */
  flush(): Promise<CaptureStatus> {
    this.releaseAll();
    return this.outbox.flush();
  }

  /**
   * The page is being hidden or unloaded: stores what is not stored yet and sends what is
   * stored with `keepalive` (at most `keepaliveBytes`, under the browser's 64 KiB), so it can
   * arrive after the page is gone. The next page sends the rest from storage. `unloading`
   * (`pagehide`): what storage has not finished writing is also spilled synchronously
   * (`QueueStorage.spill`), since the page may be gone before an asynchronous write completes.
   */
  flushOnHide(keepaliveBytes = 60 * 1024, unloading = false): void {
    this.releaseAll();
    this.outbox.flushOnHide(keepaliveBytes, unloading);
  }

  /** Retries now instead of waiting (the browser reports it is back online). */
  retryNow(): void {
    this.outbox.retryNow();
  }

  /** Sends again after a stop, e.g. with a new token after `session_token_expired`. */
  restart(token?: string): void {
    this.outbox.restart(token);
  }

  /** Stops timers and sending (the queue stays in storage). */
  close(): void {
    if (this.cursorTimer !== null) this.clock.clearTimeout(this.cursorTimer);
    this.cursorTimer = null;
    this.outbox.close();
  }

  private timed(f: () => boolean): boolean {
    const t0 = this.clock.now();
    try {
      return f();
    } finally {
      this.meter.record(this.clock.now() - t0);
    }
  }

  /** ms on the session's monotonic clock (from its first page load) for a `performance.now()` reading. */
  private mono(timeStamp: number | undefined): number {
    const t = this.clock.timeOrigin + (timeStamp ?? this.clock.now()) - this.outbox.monoEpochMs;
    return Math.max(0, Math.round(t * 1000) / 1000);
  }

  private enqueue(data: TelemetryData, open = false): Entry | null {
    if (data.type !== "cursor") this.releaseCursor();
    const refusal = checkData(data) ?? this.workspace?.check(data) ?? null;
    if (refusal) {
      this.outbox.noteRefusal(data.type, refusal);
      this.options.onRefused?.(data.type, refusal);
      return null;
    }
    this.workspace?.apply(data);
    return this.outbox.push(data, open);
  }

  private closeKey(id: string, entry: Entry, up: number | undefined): void {
    this.openKeys.delete(id);
    if (!entry.open) return;
    const data = entry.event.data;
    if (up !== undefined && data.type === "keystroke") data.up_ms = Math.max(up, data.down_ms);
    this.outbox.release(entry);
  }

  private closeAllKeys(): void {
    for (const [id, entry] of [...this.openKeys]) this.closeKey(id, entry, undefined);
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
    this.closeAllKeys();
  }
}
