/**
 * The persistent queue's storage: what was captured and not yet acknowledged by the server, per
 * session, keyed by `seq`.
 *
 * The capture writes an event here before it ever sends it. So every `seq` the server may hold
 * is also here until acknowledged, and a new instance over the same storage (a reload, a tab
 * that crashed) continues the numbering after it without reusing a number.
 */

import type { TelemetryEvent } from "./wire";

/** What a session's queue remembers besides its events. */
export interface QueueMeta {
  /** The highest `seq` numbered and stored (0: none yet). */
  lastSeq: number;
  /** The highest `seq` the server acknowledged, as far as this client learnt. */
  ackedSeq: number;
  /**
   * The wall-clock instant (ms since the epoch) the session's monotonic key times count from:
   * fixed by the first instance, so `down_ms` keeps growing across reloads.
   */
  monoEpochMs: number;
}

/** A session's stored queue. */
export interface StoredQueue {
  meta: QueueMeta | null;
  /** In `seq` order. */
  events: TelemetryEvent[];
}

/** Where the queue lives. Every method is atomic: it happens entirely or not at all. */
export interface QueueStorage {
  /** The session's queue (empty and `meta: null` for a session never seen). */
  load(sessionId: string): Promise<StoredQueue>;
  /** Stores `events` (replacing any stored with the same `seq`) and `meta`, atomically. */
  put(sessionId: string, events: readonly TelemetryEvent[], meta: QueueMeta): Promise<void>;
  /** Removes the events up to and including `seq` and stores `meta`, atomically. */
  ack(sessionId: string, seq: number, meta: QueueMeta): Promise<void>;
}

/**
 * Storage in memory, for tests and for front ends that accept losing the queue with the page.
 * Values are copied in and out (as structured clone would), so a test's "reload" sees only what
 * was stored.
 */
export class MemoryStorage implements QueueStorage {
  private readonly sessions = new Map<string, { meta: QueueMeta | null; events: Map<number, TelemetryEvent> }>();
  /** When set, `put` and `ack` fail with this error (a full disk, a closed database). */
  failWith: Error | null = null;

  async load(sessionId: string): Promise<StoredQueue> {
    const s = this.sessions.get(sessionId);
    if (!s) return { meta: null, events: [] };
    const events = [...s.events.values()].sort((a, b) => a.seq - b.seq).map(clone);
    return { meta: s.meta && { ...s.meta }, events };
  }

  async put(sessionId: string, events: readonly TelemetryEvent[], meta: QueueMeta): Promise<void> {
    if (this.failWith) throw this.failWith;
    const s = this.session(sessionId);
    for (const e of events) s.events.set(e.seq, clone(e));
    s.meta = { ...meta };
  }

  async ack(sessionId: string, seq: number, meta: QueueMeta): Promise<void> {
    if (this.failWith) throw this.failWith;
    const s = this.session(sessionId);
    for (const key of [...s.events.keys()]) if (key <= seq) s.events.delete(key);
    s.meta = { ...meta };
  }

  /** How many events the session has stored (for tests). */
  size(sessionId: string): number {
    return this.sessions.get(sessionId)?.events.size ?? 0;
  }

  private session(sessionId: string) {
    let s = this.sessions.get(sessionId);
    if (!s) {
      s = { meta: null, events: new Map() };
      this.sessions.set(sessionId, s);
    }
    return s;
  }
}

function clone(event: TelemetryEvent): TelemetryEvent {
  return JSON.parse(JSON.stringify(event)) as TelemetryEvent;
}
