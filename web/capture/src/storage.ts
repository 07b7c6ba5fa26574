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
  /**
   * The page is going away and `put` may not finish before it does (IndexedDB writes are
   * asynchronous; an unload abandons them): stores `events` and `meta` *synchronously* somewhere
   * `load` will find them, merged over what `put` stored. Optional: storage that is already
   * synchronous, or that accepts losing the last moments, need not have it.
   */
  spill?(sessionId: string, events: readonly TelemetryEvent[], meta: QueueMeta): void;
  /** Everything spilled has since been stored with `put`: the spill may go. */
  clearSpill?(sessionId: string): void;
}

/** A synchronous key-value area (the page's `localStorage`), where the spill lives. */
export interface SyncArea {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

interface Spilled {
  meta: QueueMeta;
  events: TelemetryEvent[];
}

/**
 * The spill of a session in a synchronous area: added to what is already spilled (a page can hide
 * twice before it goes), newer versions of an event replacing older ones.
 */
export class SpillArea {
  constructor(private readonly area: SyncArea, private readonly prefix = "clarity-capture-spill:") {}

  add(sessionId: string, events: readonly TelemetryEvent[], meta: QueueMeta): void {
    const previous = this.read(sessionId);
    const bySeq = new Map<number, TelemetryEvent>();
    for (const e of previous?.events ?? []) bySeq.set(e.seq, e);
    for (const e of events) bySeq.set(e.seq, e);
    const merged: Spilled = {
      meta: previous ? maxMeta(previous.meta, meta) : meta,
      events: [...bySeq.values()].sort((a, b) => a.seq - b.seq),
    };
    // A full area throws (QuotaExceededError): nothing more can be done while the page unloads.
    try {
      this.area.setItem(this.prefix + sessionId, JSON.stringify(merged));
    } catch {
      /* the put in flight may still finish */
    }
  }

  read(sessionId: string): Spilled | null {
    let raw: string | null = null;
    try {
      raw = this.area.getItem(this.prefix + sessionId);
    } catch {
      return null;
    }
    if (raw === null) return null;
    try {
      const v = JSON.parse(raw) as Spilled;
      return Array.isArray(v.events) && v.meta ? v : null;
    } catch {
      return null;
    }
  }

  clear(sessionId: string): void {
    try {
      this.area.removeItem(this.prefix + sessionId);
    } catch {
      /* nothing to do */
    }
  }
}

/** The queue `put` stored with the spill laid over it: spilled versions win, numbering is the highest. */
export function mergeSpill(stored: StoredQueue, spill: Spilled | null): StoredQueue {
  if (!spill) return stored;
  const bySeq = new Map<number, TelemetryEvent>();
  for (const e of stored.events) bySeq.set(e.seq, e);
  for (const e of spill.events) bySeq.set(e.seq, e);
  return {
    meta: stored.meta ? maxMeta(stored.meta, spill.meta) : spill.meta,
    events: [...bySeq.values()].sort((a, b) => a.seq - b.seq),
  };
}

function maxMeta(a: QueueMeta, b: QueueMeta): QueueMeta {
  return {
    lastSeq: Math.max(a.lastSeq, b.lastSeq),
    ackedSeq: Math.max(a.ackedSeq, b.ackedSeq),
    // Fixed by the first instance: both carry the same value unless storage was lost in between.
    monoEpochMs: Math.min(a.monoEpochMs, b.monoEpochMs),
  };
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
  /**
   * When set, `put` never completes and stores nothing: a write the page's unload abandoned. The
   * spill (given an area) is then all that survives.
   */
  abandonWrites = false;
  private readonly spillArea: SpillArea | null;

  /** `area`: where `spill` writes (omit for storage without a spill). */
  constructor(area?: SyncArea) {
    this.spillArea = area ? new SpillArea(area) : null;
  }

  async load(sessionId: string): Promise<StoredQueue> {
    const s = this.sessions.get(sessionId);
    const stored: StoredQueue = s
      ? { meta: s.meta && { ...s.meta }, events: [...s.events.values()].sort((a, b) => a.seq - b.seq).map(clone) }
      : { meta: null, events: [] };
    return mergeSpill(stored, this.spillArea?.read(sessionId) ?? null);
  }

  spill(sessionId: string, events: readonly TelemetryEvent[], meta: QueueMeta): void {
    this.spillArea?.add(sessionId, events, meta);
  }

  clearSpill(sessionId: string): void {
    this.spillArea?.clear(sessionId);
  }

  async put(sessionId: string, events: readonly TelemetryEvent[], meta: QueueMeta): Promise<void> {
    if (this.failWith) throw this.failWith;
    if (this.abandonWrites) return new Promise<void>(() => {});
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

/** A `SyncArea` in memory (a test's `localStorage`). */
export class MemoryArea implements SyncArea {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

function clone(event: TelemetryEvent): TelemetryEvent {
  return JSON.parse(JSON.stringify(event)) as TelemetryEvent;
}
