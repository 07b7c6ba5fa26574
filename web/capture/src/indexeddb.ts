/**
 * The queue in IndexedDB: what the browser keeps across a reload, a crash of the tab and hours
 * offline. One database (`clarity-capture` by default) with two object stores: `events`, keyed
 * by `[sessionId, seq]`, and `meta`, keyed by `sessionId`. Each method is one read-write
 * transaction, so an event and the numbering it advanced are stored together or not at all.
 */

import type { TelemetryEvent } from "./wire";
import { MemoryStorage, SpillArea, mergeSpill, type QueueMeta, type QueueStorage, type StoredQueue, type SyncArea } from "./storage";

const VERSION = 1;
const EVENTS = "events";
const META = "meta";

interface StoredEvent {
  sessionId: string;
  seq: number;
  event: TelemetryEvent;
}

interface StoredMeta extends QueueMeta {
  sessionId: string;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
  });
}

/** The page's `localStorage`, if it may be used. */
function pageArea(): SyncArea | null {
  try {
    return typeof localStorage !== "undefined" ? localStorage : null;
  } catch {
    // A sandboxed or storage-blocked page throws on the very access.
    return null;
  }
}

/** The queue in the browser's IndexedDB (and, at unload, a synchronous spill in `localStorage`). */
export class IndexedDbStorage implements QueueStorage {
  private readonly spillArea: SpillArea | null;

  private constructor(private readonly db: IDBDatabase, area: SyncArea | null) {
    this.spillArea = area ? new SpillArea(area, `${db.name}-spill:`) : null;
  }

  /**
   * Opens (creating on first use) the database `name` of `factory` (the page's `indexedDB`).
   * `area` (the page's `localStorage` by default, `null` for none) takes the spill at unload.
   */
  static async open(name = "clarity-capture", factory: IDBFactory = indexedDB, area: SyncArea | null = pageArea()): Promise<IndexedDbStorage> {
    const req = factory.open(name, VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(EVENTS)) db.createObjectStore(EVENTS, { keyPath: ["sessionId", "seq"] });
      if (!db.objectStoreNames.contains(META)) db.createObjectStore(META, { keyPath: "sessionId" });
    };
    const db = await request(req);
    // Another tab upgrading the schema: let it, this connection is closed and reopened on reload.
    db.onversionchange = () => db.close();
    return new IndexedDbStorage(db, area);
  }

  /**
   * IndexedDB if the browser lets this page use it, otherwise memory (some private modes, a
   * blocked or broken database): `persistent` says which, so the page can warn that a reload
   * would lose what is not acknowledged yet.
   */
  static async openOrMemory(name = "clarity-capture"): Promise<{ storage: QueueStorage; persistent: boolean; error?: string }> {
    try {
      const storage = await IndexedDbStorage.open(name);
      // A database that opens but cannot be read (a corrupt profile) fails here, not mid-session.
      await storage.load("clarity-capture-probe");
      return { storage, persistent: true };
    } catch (error) {
      return { storage: new MemoryStorage(), persistent: false, error: String(error) };
    }
  }

  /**
   * What `put` stored, with what the last page spilled at unload laid over it. A spill found is
   * written into the database and then removed, so it is merged once.
   */
  async load(sessionId: string): Promise<StoredQueue> {
    const stored = await this.loadStored(sessionId);
    const spill = this.spillArea?.read(sessionId) ?? null;
    if (!spill) return stored;
    const merged = mergeSpill(stored, spill);
    await this.put(sessionId, spill.events, merged.meta!);
    this.spillArea!.clear(sessionId);
    return merged;
  }

  spill(sessionId: string, events: readonly TelemetryEvent[], meta: QueueMeta): void {
    this.spillArea?.add(sessionId, events, meta);
  }

  clearSpill(sessionId: string): void {
    this.spillArea?.clear(sessionId);
  }

  private async loadStored(sessionId: string): Promise<StoredQueue> {
    const tx = this.db.transaction([EVENTS, META], "readonly");
    const range = IDBKeyRange.bound([sessionId, 0], [sessionId, Number.MAX_SAFE_INTEGER]);
    const [rows, meta] = await Promise.all([
      request(tx.objectStore(EVENTS).getAll(range) as IDBRequest<StoredEvent[]>),
      request(tx.objectStore(META).get(sessionId) as IDBRequest<StoredMeta | undefined>),
    ]);
    await done(tx);
    return {
      meta: meta ? { lastSeq: meta.lastSeq, ackedSeq: meta.ackedSeq, monoEpochMs: meta.monoEpochMs } : null,
      // Keys sort by `[sessionId, seq]`: already in `seq` order.
      events: rows.map((r) => r.event),
    };
  }

  async put(sessionId: string, events: readonly TelemetryEvent[], meta: QueueMeta): Promise<void> {
    // `relaxed`: the write need not reach the disk before `complete` (much faster in Chromium);
    // a crash of the tab still keeps it, only a crash of the whole machine might not.
    const tx = this.db.transaction([EVENTS, META], "readwrite", { durability: "relaxed" });
    const store = tx.objectStore(EVENTS);
    for (const event of events) store.put({ sessionId, seq: event.seq, event } satisfies StoredEvent);
    tx.objectStore(META).put({ sessionId, ...meta } satisfies StoredMeta);
    await done(tx);
  }

  async ack(sessionId: string, seq: number, meta: QueueMeta): Promise<void> {
    const tx = this.db.transaction([EVENTS, META], "readwrite", { durability: "relaxed" });
    tx.objectStore(EVENTS).delete(IDBKeyRange.bound([sessionId, 0], [sessionId, seq]));
    tx.objectStore(META).put({ sessionId, ...meta } satisfies StoredMeta);
    await done(tx);
  }

  /** Closes the connection. */
  close(): void {
    this.db.close();
  }
}
