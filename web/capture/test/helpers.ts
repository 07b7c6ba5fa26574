// Test helpers: a local HTTP server speaking the telemetry contract, clocks, and waiting.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Clock } from "../src/capture";
import type { TelemetryEvent } from "../src/wire";

/** What the server does with one request: `null` for the contract's own answer. */
export type Script = (
  batch: TelemetryEvent[],
  req: IncomingMessage,
  res: ServerResponse,
) => "default" | "handled" | "process-then-drop";

/**
 * A local HTTP server that answers `POST /v1/sessions/{id}/telemetry` as Clarity does
 * (`api/src/routes/telemetry.rs`): bearer token, contiguous `seq` from its cursor, duplicates
 * answered without storing, 409 `sequence_gap`, 413 above `maxEvents`. `script` can take over a
 * request (an outage, a 429, a lost answer).
 */
export class IngestServer {
  /** Every event accepted, in order (each `seq` once). */
  readonly stored: TelemetryEvent[] = [];
  /** Every request's batch, as received. */
  readonly requests: TelemetryEvent[][] = [];
  /** Authorization headers, as received. */
  readonly authorizations: string[] = [];
  lastSeq = 0;
  token = "cst_test";
  maxEvents = 1000;
  script: Script | null = null;
  private server = createServer((req, res) => this.handle(req, res));
  private port = 0;
  private waiters: Array<() => void> = [];

  static async start(): Promise<IngestServer> {
    const s = new IngestServer();
    await new Promise<void>((resolve) => s.server.listen(0, "127.0.0.1", resolve));
    const address = s.server.address();
    s.port = typeof address === "object" && address ? address.port : 0;
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Resolves once `predicate` holds after a request (checked now and after each request). */
  until(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (predicate()) resolve();
        else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  seqs(): number[] {
    return this.stored.map((e) => e.seq);
  }

  async close(): Promise<void> {
    // Stop accepting first, then end the open (keep-alive) connections.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Uint8Array[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const text = new TextDecoder().decode(concat(chunks));
      const batch = (JSON.parse(text) as { events: TelemetryEvent[] }).events;
      this.requests.push(batch);
      this.authorizations.push(String(req.headers["authorization"] ?? ""));
      const mode = this.script ? this.script(batch, req, res) : "default";
      if (mode === "handled") return this.notify();
      const [status, body] = this.ingest(batch, String(req.headers["authorization"] ?? ""));
      if (mode === "process-then-drop") {
        // The batch is stored, the answer is lost on the way.
        res.socket?.destroy();
      } else {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      }
      this.notify();
    });
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The contract's answer to `batch` (stores what is fresh), for scripts that answer late. */
  ingest(batch: TelemetryEvent[], authorization: string): [number, unknown] {
    if (authorization !== `Bearer ${this.token}`) {
      return [401, { error: { code: "unauthenticated", message: "invalid session token" } }];
    }
    if (batch.length > this.maxEvents) {
      return [413, { error: { code: "batch_too_large", message: `at most ${this.maxEvents} events` } }];
    }
    const fresh = batch.filter((e) => e.seq > this.lastSeq);
    const duplicates = batch.length - fresh.length;
    if (fresh.length === 0) return [200, { accepted: 0, duplicates, last_seq: this.lastSeq }];
    if (fresh[0]!.seq !== this.lastSeq + 1) {
      return [
        409,
        {
          error: {
            code: "sequence_gap",
            message: `expected seq ${this.lastSeq + 1} next, got ${fresh[0]!.seq}`,
            details: { expected_seq: this.lastSeq + 1 },
          },
        },
      ];
    }
    this.stored.push(...fresh);
    this.lastSeq = fresh.at(-1)!.seq;
    return [200, { accepted: fresh.length, duplicates, last_seq: this.lastSeq }];
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * The real clock, except that timers run `scale` times sooner and every requested delay is
 * recorded (what a test asserts on: the schedule, never how long anything took).
 */
export class RecordingClock implements Clock {
  readonly delays: number[] = [];
  timeOrigin = performance.timeOrigin;
  constructor(private readonly scale = 1) {}
  now(): number {
    return performance.now();
  }
  wallNow(): number {
    return Date.now();
  }
  setTimeout(f: () => void, ms: number): unknown {
    this.delays.push(ms);
    return setTimeout(f, ms * this.scale);
  }
  clearTimeout(handle: unknown): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }
}

/**
 * A clock the test moves by hand (`advance`), for throttling and key timing: timers run when
 * their time comes, in order.
 */
export class ManualClock implements Clock {
  private t = 1000;
  private timers: Array<{ at: number; f: () => void; id: number }> = [];
  private ids = 0;
  timeOrigin = 1_700_000_000_000;
  now(): number {
    return this.t;
  }
  wallNow(): number {
    return this.timeOrigin + this.t;
  }
  setTimeout(f: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.timers.push({ at: this.t + ms, f, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  /** Moves time forward by `ms`, running the timers due on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.t = Math.max(this.t, next.at);
      next.f();
    }
    this.t = end;
  }
}

/** Lets pending promise callbacks and zero-delay timers run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Waits for `predicate`, checking after each turn of the event loop (no time limit of its own: the runner's). */
export async function eventually(predicate: () => boolean): Promise<void> {
  while (!predicate()) await settle();
}
