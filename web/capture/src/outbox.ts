/**
 * The outbox: numbered events from capture to acknowledgement. It gives each event its `seq` and
 * `ts`, stores it, sends the stored ones in batches, retries, and lets go of an event only when
 * the server's `last_seq` covers it. `Capture` decides *what* is captured; this decides when it
 * is safe to send and to forget.
 *
 * - **Nothing is sent before it is stored**, so the server never holds a `seq` a reload could
 *   number again (unless storage fails: `storageError`, and events go from memory).
 * - **One request at a time**: the server takes batch N+1 only after batch N.
 * - **A refusal retrying cannot fix stops sending** (state `stopped`) and keeps the queue.
 */

import { backoffDelay, parseRetryAfter, retryAfterDelay, type BackoffOptions } from "./backoff";
import { Cell, type Observable } from "./observable";
import type { QueueMeta, QueueStorage } from "./storage";
import { encodeBatch, sendBatch, type Outcome, type Problem, type TransportOptions } from "./transport";
import type { Refusal } from "./validate";
import type { TelemetryData, TelemetryEvent } from "./wire";

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

/** How the outbox batches, sends and retries. */
export interface OutboxOptions {
  sessionId: string;
  storage: QueueStorage;
  transport: TransportOptions;
  clock: Clock;
  random: () => number;
  /** Send when this many events are ready. */
  batchEvents: number;
  /** ... or when the oldest unsent event is this old, in ms. */
  batchDelayMs: number;
  /** Most events in one request (halved on 413 `batch_too_large`). */
  maxBatchEvents: number;
  /** Largest batch body, in bytes. */
  maxBatchBytes: number;
  /** A key press still open after this many ms is sent without its key-up. */
  keyHoldMs: number;
  backoff?: BackoffOptions | undefined;
  /** Server clock minus client clock, in ms. */
  clockOffsetMs: number;
}

/** One queued event. */
export interface Entry {
  event: TelemetryEvent;
  /** A key press waiting for its key-up: not sendable yet. */
  open: boolean;
  /** Some version of it is in storage. */
  stored: boolean;
  /** Changed since last stored. */
  dirty: boolean;
  /** Writes of it to storage started and not yet finished. */
  writing: number;
  /**
   * Requests that carried it (a loaded entry counts one: a previous page may have sent it). A
   * duplicate acknowledged for an entry only one request ever carried means the server holds
   * that number from elsewhere.
   */
  sends: number;
  /** `clock.now()` when captured. */
  at: number;
  /** Its JSON's UTF-8 size (0: not measured yet). */
  bytes: number;
}

/** The queue of one session, from numbering to acknowledgement. */
export class Outbox {
  private readonly entries: Entry[] = [];
  private readonly cell: Cell<CaptureStatus>;
  private lastSeq: number;
  private ackedSeq: number;
  readonly monoEpochMs: number;
  private clockOffsetMs: number;
  private batchCap: number;
  private failures = 0;
  private inFlight = false;
  private keepaliveInFlight = false;
  private stopped = false;
  private closed = false;
  private flushWanted = false;
  private retryTimer: unknown = null;
  private wakeTimer: unknown = null;
  private wakeAt = Infinity;
  private persistScheduled = false;
  private persisting = false;
  private persistAgain = false;
  /** Entries were spilled at a page hide and may not all be stored by `put` yet. */
  private spilled = false;
  private io: Promise<void> = Promise.resolve();
  private storageError: string | null = null;
  private refused = 0;
  private lastRefusal: (Refusal & { kind: string }) | null = null;
  private drainWaiters: Array<() => void> = [];
  private batches = 0;
  private batchedEvents = 0;
  private requests = 0;

  private constructor(private readonly o: OutboxOptions, meta: QueueMeta, loaded: TelemetryEvent[]) {
    this.clockOffsetMs = o.clockOffsetMs;
    this.batchCap = Math.max(1, Math.min(o.maxBatchEvents, 1000));
    this.monoEpochMs = meta.monoEpochMs;
    this.ackedSeq = meta.ackedSeq;
    this.lastSeq = meta.lastSeq;
    const now = o.clock.now();
    for (const event of loaded) {
      this.entries.push({ event, open: false, stored: true, dirty: false, writing: 0, sends: 1, at: now, bytes: 0 });
    }
    this.cell = new Cell(this.snapshot("online"));
  }

  /**
   * The outbox of a session over `o.storage`: what a previous page left, less what the server
   * acknowledged (`serverAckedSeq`, or as this device last learnt), numbering after the highest
   * of both. Sending starts at once if anything is left.
   */
  static async open(o: OutboxOptions, serverAckedSeq: number | undefined): Promise<Outbox> {
    const stored = await o.storage.load(o.sessionId);
    const meta: QueueMeta = stored.meta ?? { lastSeq: 0, ackedSeq: 0, monoEpochMs: Math.floor(o.clock.timeOrigin) };
    const ackedSeq = Math.max(meta.ackedSeq, serverAckedSeq ?? 0);
    const events = stored.events.filter((e) => e.seq > ackedSeq);
    const resumed: QueueMeta = {
      monoEpochMs: meta.monoEpochMs,
      ackedSeq,
      lastSeq: Math.max(meta.lastSeq, stored.events.at(-1)?.seq ?? 0, ackedSeq),
    };
    const outbox = new Outbox(o, resumed, events);
    await o.storage.ack(o.sessionId, ackedSeq, resumed).catch((e: unknown) => outbox.storageFailed(e));
    outbox.flushWanted = events.length > 0;
    outbox.pump();
    return outbox;
  }

  get status(): Observable<CaptureStatus> {
    return this.cell;
  }

  /** The queued events (the unacknowledged ones), in `seq` order. */
  events(): readonly TelemetryEvent[] {
    return this.entries.map((e) => e.event);
  }

  traffic(): { requests: number; batches: number; events: number; meanBatch: number } {
    return {
      requests: this.requests,
      batches: this.batches,
      events: this.batchedEvents,
      meanBatch: this.batches === 0 ? 0 : this.batchedEvents / this.batches,
    };
  }

  /** Numbers `data` and queues it; `open` (a key press waiting for its key-up) holds it back. */
  push(data: TelemetryData, open: boolean): Entry {
    const event: TelemetryEvent = {
      seq: ++this.lastSeq,
      ts: new Date(this.o.clock.wallNow() + this.clockOffsetMs).toISOString(),
      data,
    };
    const entry: Entry = { event, open, stored: false, dirty: true, writing: 0, sends: 0, at: this.o.clock.now(), bytes: 0 };
    this.entries.push(entry);
    // Sending is checked when the entry is stored (`persist`), the count trigger included.
    this.schedulePersist();
    this.schedule(entry.at + (open ? this.o.keyHoldMs : this.o.batchDelayMs));
    return entry;
  }

  /** An open entry (a key press) was completed: it may be stored again and sent. */
  release(entry: Entry): void {
    if (!entry.open) return;
    entry.open = false;
    entry.dirty = true;
    this.schedulePersist();
    this.schedule(entry.at + this.o.batchDelayMs);
  }

  /** Counts an event refused at capture, for the status. */
  noteRefusal(kind: string, refusal: Refusal): void {
    this.refused++;
    this.lastRefusal = { kind, ...refusal };
    this.publish();
  }

  /** Sends every ready event now; resolves once the queue is empty or sending stopped. */
  flush(): Promise<CaptureStatus> {
    this.flushWanted = true;
    const drained = new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    this.pump();
    this.checkDrained();
    return drained.then(() => this.cell.get());
  }

  /**
   * Stores what is not stored and sends what is, with `keepalive`, within `maxBytes`. When the
   * page is `unloading` (`pagehide`), the asynchronous store may be abandoned with the page: what
   * it has not finished is also spilled synchronously, for the next page's `open` to find.
   */
  flushOnHide(maxBytes: number, unloading = false): void {
    if (unloading) this.spill();
    this.persist();
    // `visibilitychange` and `pagehide` often come together: one keepalive request at a time
    // (the browser's 64 KiB budget is shared by all of them in flight).
    if (this.stopped || this.keepaliveInFlight) return;
    const batch = this.readyBatch(maxBytes);
    if (batch.length === 0) return;
    for (const e of batch) e.sends++;
    this.requests++;
    this.keepaliveInFlight = true;
    void sendBatch(this.o.transport, encodeBatch(batch.map((e) => e.event)), true).then((outcome) => {
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

  retryNow(): void {
    if (this.retryTimer !== null) {
      this.o.clock.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.flushWanted = true;
    this.pump();
  }

  restart(token?: string): void {
    if (token !== undefined) this.o.transport.token = token;
    this.stopped = false;
    this.failures = 0;
    this.setStatus("online", null);
    this.retryNow();
  }

  close(): void {
    this.closed = true;
    for (const t of [this.retryTimer, this.wakeTimer]) if (t !== null) this.o.clock.clearTimeout(t);
    this.retryTimer = this.wakeTimer = null;
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
    const ready = Math.min(this.readyCount(), this.batchCap);
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
    if (this.wakeTimer !== null) this.o.clock.clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = this.o.clock.setTimeout(() => {
      this.wakeTimer = null;
      this.wakeAt = Infinity;
      this.pump();
    }, Math.max(0, at - this.o.clock.now()));
  }

  /** Sends the next batch if one is due and nothing is in flight. */
  private pump(): void {
    if (this.closed || this.stopped || this.inFlight || this.retryTimer !== null) return;
    const now = this.o.clock.now();
    // A key held too long goes without its key-up rather than hold everything after it.
    let open: Entry | undefined;
    for (const e of this.entries) {
      if (!e.open) continue;
      if (now - e.at >= this.o.keyHoldMs) this.release(e);
      else if (!open) open = e;
    }
    const ready = this.readyCount();
    if (ready === 0) {
      if (open) this.schedule(open.at + this.o.keyHoldMs);
      return;
    }
    const oldest = this.entries[0]!.at;
    const due = this.flushWanted || ready >= this.o.batchEvents || now - oldest >= this.o.batchDelayMs;
    if (!due) {
      this.schedule(oldest + this.o.batchDelayMs);
      return;
    }
    void this.send(this.readyBatch(this.o.maxBatchBytes));
  }

  private async send(batch: Entry[]): Promise<void> {
    this.inFlight = true;
    for (const e of batch) e.sends++;
    this.requests++;
    let outcome: Outcome;
    try {
      outcome = await sendBatch(this.o.transport, encodeBatch(batch.map((e) => e.event)));
    } finally {
      this.inFlight = false;
    }
    if (this.closed) return;
    switch (outcome.kind) {
      case "acked": {
        this.batches++;
        this.batchedEvents += batch.length;
        // Duplicates are a prefix of the batch. A duplicate no other request of this client
        // carried (counted now, so a keepalive copy racing this request counts) means the
        // server holds other events under these numbers (another device, lost storage): stop
        // rather than let the server drop them as copies.
        const dups = Math.min(outcome.result.duplicates, batch.length);
        const conflict = batch.slice(0, dups).some((e) => e.sends === 1) || outcome.result.last_seq > this.lastSeq;
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
        const after = parseRetryAfter(outcome.retryAfter, this.o.clock.wallNow());
        const wait =
          after !== null ? retryAfterDelay(after, this.o.random()) : backoffDelay(this.failures, this.o.random(), this.o.backoff);
        this.retryTimer = this.o.clock.setTimeout(() => {
          this.retryTimer = null;
          this.flushWanted = true;
          this.pump();
        }, wait);
        this.setStatus(outcome.offline ? "offline" : "retrying", outcome.problem, this.o.clock.wallNow() + wait);
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
      const offset = outcome.serverDateMs - this.o.clock.wallNow();
      if (Math.abs(offset) > 5000) this.clockOffsetMs = offset;
    }
    const last = Math.min(outcome.result.last_seq, this.lastSeq, batch.at(-1)!.event.seq);
    if (last <= this.ackedSeq) return;
    this.ackedSeq = last;
    let n = 0;
    while (n < this.entries.length && this.entries[n]!.event.seq <= last) n++;
    this.entries.splice(0, n);
    const meta = this.meta();
    const { storage, sessionId } = this.o;
    this.io = this.io.then(() => storage.ack(sessionId, last, meta)).catch((e: unknown) => this.storageFailed(e));
    if (this.entries.length === 0) this.flushWanted = false;
    this.publish();
  }

  private stop(problem: Problem): void {
    this.stopped = true;
    this.setStatus("stopped", problem);
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

  /** Entries whose latest version is not safely in storage yet. */
  private unsettled(): Entry[] {
    return this.entries.filter((e) => !e.stored || e.dirty || e.writing > 0);
  }

  private spill(): void {
    const { storage, sessionId } = this.o;
    if (!storage.spill) return;
    const events = this.unsettled().map((e) => e.event);
    if (events.length === 0) return;
    storage.spill(sessionId, events, this.meta());
    this.spilled = true;
  }

  private schedulePersist(): void {
    if (this.persistScheduled) return;
    this.persistScheduled = true;
    this.o.clock.setTimeout(() => {
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
    for (const e of dirty) {
      e.dirty = false;
      e.writing++;
    }
    const events = dirty.map((e) => e.event);
    const meta = this.meta();
    const { storage, sessionId } = this.o;
    this.persisting = true;
    this.io = this.io
      .then(() => storage.put(sessionId, events, meta))
      .then(
        () => {
          for (const e of dirty) {
            e.stored = true;
            e.writing--;
          }
          // The page lived on after a hide (a bfcache restore, a cancelled navigation): once all
          // is stored, an old spill must not later lay stale versions over newer ones.
          if (this.spilled && this.unsettled().length === 0) {
            this.spilled = false;
            this.o.storage.clearSpill?.(this.o.sessionId);
          }
          if (this.storageError !== null) {
            this.storageError = null;
            this.publish();
          }
        },
        (error: unknown) => {
          for (const e of dirty) {
            e.dirty = true;
            e.writing--;
          }
          this.storageFailed(error);
          // Try again later; meanwhile events are sent from memory.
          this.o.clock.setTimeout(() => this.persist(), 1000);
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
    this.cell.set(this.snapshot(state, problem, retryAt));
  }

  /** Publishes the counters with the current state. */
  private publish(): void {
    const s = this.cell.get();
    this.cell.set(this.snapshot(s.state, s.problem, s.retryAt));
  }
}

function eventBytes(event: TelemetryEvent): number {
  // Exact UTF-8 size of the JSON; computed once per event, off the capture path.
  return new TextEncoder().encode(JSON.stringify(event)).length;
}
