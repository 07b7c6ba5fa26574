//! Per-task idiom pools for [`super::solution`], and per-language helpers and dead code.
//!
//! Template syntax: see [`super`]. Names in `«»` are drawn from the task's synonyms; code a
//! candidate keeps from the starter files is quoted from the catalogue with `⟦path:from-to⟧`
//! rather than pasted here.

use crate::similarity::lexer::Lang;

/// A top-level unit of a file: one of `variants`; optional units appear in about two thirds of
/// the solutions.
pub struct Unit {
    pub required: bool,
    pub variants: &'static [&'static str],
}

pub struct FilePool {
    pub path: &'static str,
    /// Start from the task's starter file of the same path (the candidate extends it).
    pub extends_starter: bool,
    /// Header variants (unused when extending the starter file).
    pub header: &'static [&'static str],
    pub units: &'static [Unit],
    pub footer: &'static [&'static str],
    /// Whether the units appear in a random order.
    pub reorder: bool,
}

pub struct TaskPool {
    pub names: &'static [(&'static str, &'static [&'static str])],
    pub files: &'static [FilePool],
}

const fn req(variants: &'static [&'static str]) -> Unit {
    Unit {
        required: true,
        variants,
    }
}

const fn opt(variants: &'static [&'static str]) -> Unit {
    Unit {
        required: false,
        variants,
    }
}

pub fn task(i: usize) -> &'static TaskPool {
    match i {
        0 => &REST_API,
        1 => &SCHEMA,
        2 => &CACHE,
        3 => &SAGA,
        4 => &BUG_HUNT,
        5 => &QUEUE,
        _ => &RATE_LIMIT,
    }
}

/// Small helpers some candidates write.
pub fn helpers(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Go => &[
            r##"
func «clamp»(v, lo, hi int64) int64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}"##,
            r##"
func «envOr»(key, fallback string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return fallback
}"##,
            r##"
func «jitter»(d time.Duration, frac float64) time.Duration {
	delta := float64(d) * frac * (rand.Float64()*2 - 1)
	return d + time.Duration(delta)
}"##,
        ],
        Lang::TypeScript => &[
            r##"
const «sleep» = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));"##,
            r##"
function «assertNever»(x: never): never {
  throw new Error(`unexpected value: ${String(x)}`);
}"##,
            r##"
function «isNonEmpty»(value: unknown): value is string {
  return typeof value === "string" && value.trim().length > 0;
}"##,
        ],
        Lang::Python => &[
            r##"
def «utcnow»() -> datetime:
    return datetime.now(timezone.utc)"##,
            r##"
def «chunks»(items, size):
    for i in range(0, len(items), size):
        yield items[i : i + size]"##,
            r##"
def «env_int»(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default"##,
        ],
        _ => &[],
    }
}

/// Unused helpers a disguiser inserts (`«dead»` is replaced by a fresh name).
pub fn dead_code(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Go => &[
            r##"
func «dead»(values []int) int {
	total := 0
	for _, v := range values {
		if v > 0 {
			total += v
		}
	}
	return total
}"##,
            r##"
type «dead» struct {
	name  string
	count int
}"##,
            r##"
func «dead»(s string) bool {
	return strings.TrimSpace(s) == ""
}"##,
        ],
        Lang::TypeScript => &[
            r##"
function «dead»(values: number[]): number {
  let total = 0;
  for (const v of values) {
    if (v > 0) total += v;
  }
  return total;
}"##,
            r##"
const «dead» = (s: string): boolean => s.trim() === "";"##,
            r##"
interface «dead» {
  name: string;
  count: number;
}"##,
        ],
        Lang::Python => &[
            r##"
def «dead»(values):
    total = 0
    for v in values:
        if v > 0:
            total += v
    return total"##,
            r##"
def «dead»(s: str) -> bool:
    return not s.strip()"##,
        ],
        Lang::Sql => &[
            r##"
CREATE TEMP TABLE «dead» (id bigint PRIMARY KEY, note text);"##,
            r##"
SELECT count(*) FROM pg_stat_user_indexes WHERE idx_scan = 0;"##,
        ],
        Lang::Generic => &[],
    }
}

// ---------------------------------------------------------------------------------------------
// 0. REST API design (TypeScript)
// ---------------------------------------------------------------------------------------------

static REST_API: TaskPool = TaskPool {
    names: &[
        ("router", &["v1", "router", "v1Router", "api"]),
        ("problem", &["problem", "sendProblem", "fail", "httpError"]),
        (
            "bookingBody",
            &[
                "bookingBody",
                "createBookingSchema",
                "BookingInput",
                "bookingSchema",
            ],
        ),
        (
            "withLock",
            &["withLock", "serialize", "withSpaceLock", "lockSpace"],
        ),
        ("locks", &["locks", "queues", "spaceLocks", "chains"]),
        ("idem", &["idempotency", "idemCache", "seenKeys", "replays"]),
        (
            "onGrid",
            &["onQuarterHour", "isAligned", "onBoundary", "aligned"],
        ),
        (
            "overlaps",
            &["overlaps", "clashes", "intersects", "conflicts"],
        ),
        ("cursor", &["cursor", "after", "pageToken", "next"]),
        ("member", &["memberId", "member", "caller", "who"]),
        ("booking", &["booking", "created", "b", "result"]),
        ("encode", &["encodeCursor", "toCursor", "packCursor"]),
        ("decode", &["decodeCursor", "fromCursor", "unpackCursor"]),
    ],
    files: &[
        FilePool {
            path: "src/app.ts",
            extends_starter: true,
            header: &[],
            units: &[req(&[
                r##"
import { «router» } from "./v1.js";
app.use("/v1", «router»);"##,
                r##"
import { «router» } from "./v1.js";

app.use("/v1", «router»);
?app.use((_req, res) => res.status(404).type("application/problem+json").json({ title: "Not Found", status: 404 }));"##,
            ])],
            footer: &[],
            reorder: false,
        },
        FilePool {
            path: "src/v1.ts",
            extends_starter: false,
            header: &[
                r##"
import express⟨, { type Request, type Response }¦⟩ from "express";
import { z } from "zod";
import { store⟨, type Booking¦⟩ } from "./store.js";

export const «router» = express.Router();
?const MINUTE = 60_000;"##,
                r##"
import { Router } from "express";
import { z } from "zod";
import { store } from "./store.js";
?import type { Booking, Space } from "./store.js";

export const «router» = Router();"##,
            ],
            units: &[
                req(&[
                    r##"
function «problem»(res: ⟨express.Response¦Response⟩, status: number, title: string, detail?: string, errors?: unknown[]) {
  res
    .status(status)
    .type("application/problem+json")
    .json({ type: "about:blank", title, status, ⟨detail, errors¦...(detail ? { detail } : {}), ...(errors ? { errors } : {})⟩ });
}"##,
                    r##"
class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail?: string,
    readonly errors?: { field: string; message: string }[],
  ) {
    super(title);
  }
}

const «problem» = (res: ⟨express.Response¦Response⟩, p: HttpProblem) =>
  res.status(p.status).type("application/problem+json").json({ title: p.title, status: p.status, detail: p.detail, errors: p.errors });"##,
                ]),
                req(&[
                    r##"
const «bookingBody» = z.object({
  spaceId: z.string().min(1),
  start: z.string().datetime({ offset: true }),
  end: z.string().datetime({ offset: true }),
})⟨;¦.refine((b) => Date.parse(b.start) < Date.parse(b.end), { message: "start must be before end", path: ["end"] });⟩"##,
                    r##"
const «bookingBody» = z
  .object({
    spaceId: z.string(),
    start: z.string().datetime({ offset: true }),
    end: z.string().datetime({ offset: true }),
  })
  .strict();
?type BookingBody = z.infer<typeof «bookingBody»>;"##,
                ]),
                req(&[
                    r##"
const QUARTER_MS = 15 * 60 * 1000;
function «onGrid»(d: Date): boolean {
  return d.getTime() % QUARTER_MS === 0;
}

function validateRange(start: Date, end: Date): string | null {
  const minutes = (end.getTime() - start.getTime()) / 60_000;
%  if (!«onGrid»(start) || !«onGrid»(end)) return "bookings start and end on 15-minute boundaries";
%  if (minutes < 30 || minutes > 600) return "bookings last between 30 minutes and 10 hours";
  if (start.getTime() < Date.now()) return "bookings may not start in the past";
  return null;
}"##,
                    r##"
function «onGrid»(iso: string): boolean {
  const d = new Date(iso);
  return d.getUTCSeconds() === 0 && d.getUTCMilliseconds() === 0 && d.getUTCMinutes() % 15 === 0;
}

function rangeErrors(start: string, end: string): { field: string; message: string }[] {
  const errors: { field: string; message: string }[] = [];
  const length = (Date.parse(end) - Date.parse(start)) / ⟨60_000¦(60 * 1000)⟩;
%  if (!«onGrid»(start)) errors.push({ field: "start", message: "must be on a 15-minute boundary" });
%  if (!«onGrid»(end)) errors.push({ field: "end", message: "must be on a 15-minute boundary" });
%  if (length < 30 || length > 10 * 60) errors.push({ field: "end", message: "duration must be 30 min to 10 h" });
?  if (Date.parse(start) < Date.now()) errors.push({ field: "start", message: "must not be in the past" });
  return errors;
}"##,
                ]),
                req(&[
                    r##"
const «locks» = new Map<string, Promise<unknown>>();

async function «withLock»<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = «locks».get(key) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  «locks».set(
    key,
    run.catch(() => undefined),
  );
  return run;
}"##,
                    r##"
class KeyedMutex {
  private tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const tail = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    this.tails.set(key, tail.then(() => next));
    await tail;
    try {
      return await fn();
    } finally {
      release();
?      if (this.tails.get(key) === next) this.tails.delete(key);
    }
  }
}

const «locks» = new KeyedMutex();
const «withLock» = <T>(key: string, fn: () => Promise<T>) => «locks».run(key, fn);"##,
                ]),
                req(&[
                    r##"
const «idem» = new Map<string, { status: number; body: unknown }>();

function idempotencyKey(req: ⟨express.Request¦Request⟩): string | undefined {
  const key = req.header("Idempotency-Key");
  return key ? `${req.header("X-Member-Id")}:${key}` : undefined;
}"##,
                    r##"
type Stored = { status: number; body: unknown; fingerprint: string };
const «idem» = new Map<string, Stored>();
?const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

function replay(key: string | undefined, fingerprint: string, res: ⟨express.Response¦Response⟩): boolean {
  if (!key) return false;
  const stored = «idem».get(key);
  if (!stored) return false;
  if (stored.fingerprint !== fingerprint) {
    «problem»(res, 422, "Idempotency-Key reused with a different request");
    return true;
  }
  res.status(stored.status).json(stored.body);
  return true;
}"##,
                ]),
                req(&[
                    r##"
const «encode» = (space: { createdAt: string; id: string }) =>
  Buffer.from(JSON.stringify([space.createdAt, space.id])).toString("base64url");
const «decode» = (cursor: string): [string, string] => JSON.parse(Buffer.from(cursor, "base64url").toString());

«router».get("/spaces", async (req, res) => {
  const limit = Math.min(Number(req.query.limit ?? 20), 100);
  const «cursor» = typeof req.query.cursor === "string" ? «decode»(req.query.cursor) : undefined;
  const minCapacity = Number(req.query.minCapacity ?? 0);
  const spaces = (await store.listSpaces())
%    .filter((s) => !req.query.site || s.siteId === req.query.site)
%    .filter((s) => !req.query.type || s.type === req.query.type)
    .filter((s) => s.capacity >= minCapacity)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
    .filter((s) => !«cursor» || [s.createdAt, s.id].join() > «cursor».join());
  const page = spaces.slice(0, limit);
  res.json({
    data: page,
    nextCursor: spaces.length > limit ? «encode»(page[page.length - 1]) : null,
  });
});"##,
                    r##"
const listQuery = z.object({
  site: z.string().optional(),
  type: z.enum(["desk", "meeting_room"]).optional(),
  minCapacity: z.coerce.number().int().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().optional(),
});

«router».get("/spaces", async (req, res) => {
  const parsed = listQuery.safeParse(req.query);
  if (!parsed.success) {
    return «problem»(res, 400, "Invalid query", undefined, parsed.error.issues);
  }
  const { site, type, minCapacity, limit, cursor } = parsed.data;
  const after = cursor ? Buffer.from(cursor, "base64url").toString("utf8") : "";
  const all = await store.listSpaces();
  const matching = all
    .filter((s) => (site ? s.siteId === site : true) && (type ? s.type === type : true))
    .filter((s) => (minCapacity ? s.capacity >= minCapacity : true))
    .map((s) => ({ key: `${s.createdAt}|${s.id}`, s }))
    .sort((x, y) => (x.key < y.key ? -1 : 1))
    .filter((x) => x.key > after);
  const items = matching.slice(0, limit);
  const last = items.at(-1);
  res.json({ items: items.map((x) => x.s), next: matching.length > limit && last ? Buffer.from(last.key).toString("base64url") : null });
});"##,
                ]),
                opt(&[
                    r##"
«router».get("/spaces/:spaceId/availability", async (req, res) => {
  const space = await store.getSpace(req.params.spaceId);
  if (!space) return «problem»(res, 404, "Space not found");
  const site = await store.getSite(space.siteId);
  const date = String(req.query.date ?? "");
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return «problem»(res, 400, "date must be YYYY-MM-DD");
  const bookings = (await store.bookingsForSpace(space.id)).filter((b) => b.status === "confirmed");
  const slots = [];
  for (let t = localTime(date, site!.opensAt, site!.timeZone); t < localTime(date, site!.closesAt, site!.timeZone); t += 15 * 60_000) {
    const end = t + 15 * 60_000;
    const taken = bookings.some((b) => Date.parse(b.start) < end && t < Date.parse(b.end));
    if (!taken) slots.push({ start: new Date(t).toISOString(), end: new Date(end).toISOString() });
  }
  res.json({ spaceId: space.id, date, slots });
});"##,
                    r##"
async function freeSlots(spaceId: string, date: string) {
  const space = await store.getSpace(spaceId);
  if (!space) return undefined;
  const site = await store.getSite(space.siteId);
  if (!site) return undefined;
  const open = zonedTime(date, site.opensAt, site.timeZone);
  const close = zonedTime(date, site.closesAt, site.timeZone);
  const busy = (await store.bookingsForSpace(spaceId))
    .filter((b) => b.status === "confirmed")
    .map((b) => [Date.parse(b.start), Date.parse(b.end)] as const)
    .sort((a, b) => a[0] - b[0]);
  const free: { start: string; end: string }[] = [];
  let cursor = open;
  for (const [s, e] of busy) {
    if (s > cursor) free.push({ start: new Date(cursor).toISOString(), end: new Date(Math.min(s, close)).toISOString() });
    cursor = Math.max(cursor, e);
  }
  if (cursor < close) free.push({ start: new Date(cursor).toISOString(), end: new Date(close).toISOString() });
  return free;
}

«router».get("/spaces/:id/availability", async (req, res) => {
  const slots = await freeSlots(req.params.id, String(req.query.date));
  if (slots === undefined) return «problem»(res, 404, "Not Found", "no such space");
  res.json({ slots });
});"##,
                ]),
                req(&[
                    r##"
«router».post("/bookings", async (req, res) => {
  const «member» = req.header("X-Member-Id");
  if (!«member») return «problem»(res, 401, "Missing X-Member-Id");
  const parsed = «bookingBody».safeParse(req.body);
  if (!parsed.success) {
    return «problem»(res, 422, "Validation failed", undefined, parsed.error.issues.map((i) => ({ field: i.path.join("."), message: i.message })));
  }
  const key = req.header("Idempotency-Key");
  const cached = key ? «idem».get(`${«member»}:${key}`) : undefined;
  if (cached) return res.status(cached.status).json(cached.body);
  const { spaceId, start, end } = parsed.data;
  const result = await «withLock»(spaceId, async () => {
    const existing = await store.bookingsForSpace(spaceId);
    if (existing.some((b) => b.status === "confirmed" && «overlaps»(b, start, end))) {
      return { status: 409, body: { title: "Slot already booked", status: 409 } };
    }
    const «booking» = await store.insertBooking({ spaceId, memberId: «member», start, end });
    return { status: 201, body: «booking» };
  });
?  if (result.status === 201) res.location(`/v1/bookings/${(result.body as { id: string }).id}`);
  if (key) «idem».set(`${«member»}:${key}`, result);
  res.status(result.status).json(result.body);
});"##,
                    r##"
«router».post("/bookings", async (req, res, next) => {
  try {
    const «member» = req.header("X-Member-Id") ?? "";
    const body = «bookingBody».parse(req.body);
    const key = req.header("Idempotency-Key");
    if (replay(key, JSON.stringify(body), res)) return;
    const «booking» = await «withLock»(`space:${body.spaceId}`, async () => {
      const clash = (await store.bookingsForSpace(body.spaceId)).find(
        (b) => b.status === "confirmed" && «overlaps»(b, body.start, body.end),
      );
      if (clash) throw new HttpProblem(409, "Conflict", `overlaps booking ${clash.id}`);
      return store.insertBooking({ ...body, memberId: «member» });
    });
    if (key) «idem».set(key, { status: 201, body: «booking», fingerprint: JSON.stringify(body) });
    res.status(201).location(`/v1/bookings/${«booking».id}`).json(«booking»);
  } catch (err) {
    next(err);
  }
});"##,
                ]),
                req(&[
                    r##"
function «overlaps»(b: { start: string; end: string }, start: string, end: string): boolean {
  return Date.parse(b.start) < Date.parse(end) && Date.parse(start) < Date.parse(b.end);
}"##,
                    r##"
const «overlaps» = (b: { start: string; end: string }, start: string, end: string) =>
  new Date(b.start).getTime() < new Date(end).getTime() && new Date(start).getTime() < new Date(b.end).getTime();"##,
                ]),
                req(&[
                    r##"
«router».delete("/bookings/:id", async (req, res) => {
  const «booking» = await store.getBooking(req.params.id);
  if (!«booking») return «problem»(res, 404, "Booking not found");
  if («booking».status !== "cancelled") {
    await store.updateBooking({ ...«booking», status: "cancelled" });
  }
  res.status(204).end();
});"##,
                    r##"
«router».post("/bookings/:id/cancel", async (req, res) => {
  const updated = await «withLock»(req.params.id, async () => {
    const current = await store.getBooking(req.params.id);
    if (!current) return undefined;
    return current.status === "cancelled" ? current : store.updateBooking({ ...current, status: "cancelled" });
  });
  if (!updated) return «problem»(res, 404, "Not Found");
  res.json(updated);
});"##,
                ]),
                opt(&[
                    r##"
«router».patch("/bookings/:id", async (req, res) => {
  const «booking» = await store.getBooking(req.params.id);
  if (!«booking») return «problem»(res, 404, "Booking not found");
  const { start, end } = req.body ?? {};
  const result = await «withLock»(«booking».spaceId, async () => {
    const others = (await store.bookingsForSpace(«booking».spaceId)).filter((b) => b.id !== «booking».id);
    if (others.some((b) => b.status === "confirmed" && «overlaps»(b, start, end))) return null;
    return store.updateBooking({ ...«booking», start, end });
  });
  if (!result) return «problem»(res, 409, "Slot already booked");
  res.json(result);
});"##,
                    r##"
«router».put("/bookings/:id/time", async (req, res, next) => {
  try {
    const body = «bookingBody».omit({ spaceId: true }).parse(req.body);
    const current = await store.getBooking(req.params.id);
    if (!current || current.status === "cancelled") throw new HttpProblem(404, "Not Found");
    const moved = await «withLock»(`space:${current.spaceId}`, async () => {
      const taken = (await store.bookingsForSpace(current.spaceId)).some(
        (b) => b.id !== current.id && b.status === "confirmed" && «overlaps»(b, body.start, body.end),
      );
      if (taken) throw new HttpProblem(409, "Conflict", "the new time overlaps another booking");
      return store.updateBooking({ ...current, ...body });
    });
    res.json(moved);
  } catch (err) {
    next(err);
  }
});"##,
                ]),
            ],
            footer: &[
                "",
                r##"
«router».use((err: unknown, _req: ⟨express.Request¦Request⟩, res: ⟨express.Response¦Response⟩, _next: ⟨express.NextFunction¦() => void⟩) => {
  if (err instanceof z.ZodError) return res.status(422).type("application/problem+json").json({ title: "Validation failed", status: 422, errors: err.issues });
  console.error(err);
  res.status(500).type("application/problem+json").json({ title: "Internal Server Error", status: 500 });
});"##,
            ],
            reorder: true,
        },
    ],
};

// ---------------------------------------------------------------------------------------------
// 1. Database schema optimisation (SQL)
// ---------------------------------------------------------------------------------------------

static SCHEMA: TaskPool = TaskPool {
    names: &[
        (
            "idx_orders",
            &[
                "orders_customer_created_idx",
                "idx_orders_customer_created_at",
                "orders_by_customer",
            ],
        ),
        (
            "idx_items",
            &[
                "order_items_product_idx",
                "idx_order_items_product_id",
                "oi_product_id_idx",
            ],
        ),
        (
            "idx_email",
            &[
                "customers_email_lower_idx",
                "idx_customers_lower_email",
                "customers_email_ci_key",
            ],
        ),
        (
            "daily",
            &[
                "merchant_daily_revenue",
                "revenue_by_day",
                "merchant_revenue_daily",
            ],
        ),
    ],
    files: &[
        FilePool {
            path: "migrations/001_indexes.sql",
            extends_starter: false,
            header: &["BEGIN;", "SET lock_timeout = '5s';", ""],
            units: &[
                req(&[
                    r##"
CREATE INDEX CONCURRENTLY «idx_orders» ON orders (customer_id, created_at DESC)⟨ WHERE status <> 'cancelled'¦⟩;"##,
                    r##"
CREATE INDEX CONCURRENTLY IF NOT EXISTS «idx_orders»
    ON orders (customer_id, created_at DESC, id DESC)
    INCLUDE (status, total_amount, currency);"##,
                ]),
                req(&[
                    r##"
CREATE INDEX CONCURRENTLY «idx_items» ON order_items (product_id)⟨ INCLUDE (quantity, unit_price)¦⟩;"##,
                    r##"
CREATE INDEX CONCURRENTLY IF NOT EXISTS «idx_items» ON order_items (product_id, order_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS products_merchant_idx ON products (merchant_id);"##,
                ]),
                req(&[
                    r##"
CREATE UNIQUE INDEX CONCURRENTLY «idx_email» ON customers (lower(email));"##,
                    r##"
-- Duplicates differing only in case must be merged before this can be unique.
CREATE INDEX CONCURRENTLY «idx_email» ON customers (lower(email));
?ANALYZE customers;"##,
                ]),
                opt(&[
                    r##"
ALTER TABLE orders ADD COLUMN item_count integer;
UPDATE orders o SET item_count = (SELECT count(*) FROM order_items oi WHERE oi.order_id = o.id) WHERE item_count IS NULL;"##,
                    r##"
ALTER TABLE orders
    ALTER COLUMN total_amount TYPE numeric(12, 2),
    ADD COLUMN merchant_id bigint REFERENCES merchants (id);"##,
                ]),
                opt(&[
                    r##"
CREATE MATERIALIZED VIEW «daily» AS
SELECT p.merchant_id,
       date_trunc('day', o.created_at AT TIME ZONE 'Europe/London') AS day,
       sum(oi.quantity * oi.unit_price) AS revenue,
       count(DISTINCT o.id) AS orders
FROM order_items oi
JOIN products p ON p.id = oi.product_id
JOIN orders o ON o.id = oi.order_id
WHERE o.status IN ('paid', 'shipped', 'delivered')
GROUP BY 1, 2;
CREATE UNIQUE INDEX ON «daily» (merchant_id, day);"##,
                    r##"
CREATE TABLE «daily» (
    merchant_id bigint  NOT NULL REFERENCES merchants (id),
    day         date    NOT NULL,
    revenue     numeric NOT NULL DEFAULT 0,
    orders      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, day)
);"##,
                ]),
                opt(&[
                    r##"
DROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;"##,
                    r##"
CREATE INDEX CONCURRENTLY orders_paid_created_idx ON orders (created_at) WHERE status IN ('paid', 'shipped', 'delivered');"##,
                ]),
            ],
            footer: &["", "COMMIT;"],
            reorder: true,
        },
        FilePool {
            path: "queries.sql",
            extends_starter: false,
            header: &["", "-- Rewritten queries."],
            units: &[
                req(&[
                    r##"
-- #1 keyset pagination: $2, $3 = created_at and id of the last row of the previous page.
SELECT o.id, o.created_at, o.status, o.total_amount, o.currency,
       (SELECT count(*) FROM order_items oi WHERE oi.order_id = o.id) AS item_count
FROM orders o
WHERE o.customer_id = $1
  AND o.status <> 'cancelled'
  AND (o.created_at, o.id) < ($2, $3)
ORDER BY o.created_at DESC, o.id DESC
LIMIT 20;"##,
                    r##"
WITH page AS (
    SELECT id, created_at, status, total_amount, currency
    FROM orders
    WHERE customer_id = $1 AND status <> 'cancelled'
    ORDER BY created_at DESC
    LIMIT 20 OFFSET $2
)
SELECT p.*, c.item_count
FROM page p
CROSS JOIN LATERAL (SELECT count(*) AS item_count FROM order_items WHERE order_id = p.id) c
ORDER BY p.created_at DESC;"##,
                ]),
                req(&[
                    r##"
SELECT day, revenue, orders
FROM «daily»
WHERE merchant_id = $1 AND day >= current_date - 30
ORDER BY day;"##,
                    r##"
SELECT date_trunc('day', o.created_at AT TIME ZONE 'Europe/London') AS day,
       sum(oi.quantity * oi.unit_price) AS revenue,
       count(DISTINCT o.id) AS orders
FROM products p
JOIN order_items oi ON oi.product_id = p.id
JOIN orders o ON o.id = oi.order_id
WHERE p.merchant_id = $1
  AND o.created_at >= now() - interval '30 days'
  AND o.status IN ('paid', 'shipped', 'delivered')
GROUP BY 1
ORDER BY 1;"##,
                ]),
                req(&[
                    r##"
SELECT id, full_name, country_code FROM customers WHERE lower(email) = lower($1);"##,
                    r##"
SELECT id, full_name, country_code
FROM customers
WHERE lower(email) = lower(trim($1))
LIMIT 1;"##,
                ]),
                opt(&[
                    r##"
SELECT count(*) FROM orders WHERE customer_id = $1 AND status <> 'cancelled';"##,
                    r##"
REFRESH MATERIALIZED VIEW CONCURRENTLY «daily»;"##,
                ]),
            ],
            footer: &[],
            reorder: true,
        },
    ],
};

// ---------------------------------------------------------------------------------------------
// 2. Distributed cache strategy (Go)
// ---------------------------------------------------------------------------------------------

static CACHE: TaskPool = TaskPool {
    names: &[
        ("entry", &["entry", "cached", "envelope", "cacheEntry"]),
        ("group", &["flights", "inflight", "group", "calls"]),
        ("call", &["call", "flight", "waiter", "pending"]),
        ("ttl", &["ttlFor", "jitteredTTL", "withJitter", "spreadTTL"]),
        ("load", &["load", "loadFromDB", "fill", "refill"]),
        ("s", &["s", "svc"]),
        ("p", &["p", "prod", "product"]),
        ("raw", &["raw", "data", "buf", "b"]),
    ],
    files: &[FilePool {
        path: "catalog/catalog.go",
        extends_starter: true,
        header: &[],
        units: &[
            req(&[
                r##"
// «entry» is what is stored in Redis: the product and when it becomes stale.
type «entry» struct {
	Product    Product   `json:"product"`
	SoftExpiry time.Time `json:"soft_expiry"`
}"##,
                r##"
type «entry» struct {
	P       Product `json:"p"`
	Version int64   `json:"v"`
	Stale   int64   `json:"stale_unix"`
}"##,
            ]),
            req(&[
                r##"
type «call» struct {
	done chan struct{}
	p    Product
	err  error
}

type «group» struct {
	mu    sync.Mutex
	calls map[string]*«call»
}

func (g *«group») do(key string, fn func() (Product, error)) (Product, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[string]*«call»)
	}
	if c, ok := g.calls[key]; ok {
		g.mu.Unlock()
		<-c.done
		return c.p, c.err
	}
	c := &«call»{done: make(chan struct{})}
	g.calls[key] = c
	g.mu.Unlock()

	c.p, c.err = fn()
	close(c.done)
	g.mu.Lock()
	delete(g.calls, key)
	g.mu.Unlock()
	return c.p, c.err
}"##,
                r##"
// «group» coalesces concurrent loads of the same key (like x/sync/singleflight).
type «group» struct {
	sync.Mutex
	m map[string]*«call»
}

type «call» struct {
	wg  sync.WaitGroup
	val Product
	err error
}

func (g *«group») Do(key string, fn func() (Product, error)) (Product, error) {
	g.Lock()
	if g.m == nil {
		g.m = map[string]*«call»{}
	}
	if c := g.m[key]; c != nil {
		g.Unlock()
		c.wg.Wait()
		return c.val, c.err
	}
	c := new(«call»)
	c.wg.Add(1)
	g.m[key] = c
	g.Unlock()
	defer func() {
		g.Lock()
		delete(g.m, key)
		g.Unlock()
		c.wg.Done()
	}()
	c.val, c.err = fn()
	return c.val, c.err
}"##,
            ]),
            req(&[
                r##"
func «ttl»(base time.Duration) time.Duration {
	spread := int64(base) / 10
	return base + time.Duration(rand.Int63n(2*spread)-spread)
}"##,
                r##"
// «ttl» spreads expiries so that keys written together do not expire together.
func «ttl»(d time.Duration) time.Duration {
	return d - time.Duration(rand.Float64()*float64(d)/⟨5¦10¦4⟩)
}"##,
            ]),
            req(&[
                r##"
// GetProductV2 serves stale entries while one caller refreshes them.
func («s» *Service) GetProductV2(ctx context.Context, sku, country string) (Product, error) {
	k := key(sku, country)
	«raw», err := «s».cache.Get(ctx, k)
	if err != nil && !errors.Is(err, ErrNotFound) {
		«s».log.Warn("cache get failed", "key", k, "err", err)
	}
	var e «entry»
	if err == nil && json.Unmarshal(«raw», &e) == nil {
		if «s».clock.Now().Before(e.SoftExpiry) {
			return e.Product, nil
		}
		go «s».refresh(context.WithoutCancel(ctx), sku, country)
		return e.Product, nil
	}
	return «s».«load»(ctx, sku, country)
}"##,
                r##"
func («s» *Service) Get(ctx context.Context, sku, country string) (Product, error) {
	k := key(sku, country)
	if «raw», err := «s».cache.Get(ctx, k); err == nil {
		var e «entry»
		if err := json.Unmarshal(«raw», &e); err == nil {
			if time.Now().Unix() > e.Stale {
				go func() { _, _ = «s».«load»(context.Background(), sku, country) }()
			}
			return e.P, nil
		}
	} else if !errors.Is(err, ErrNotFound) {
		return Product{}, fmt.Errorf("cache get %s: %w", k, err)
	}
	return «s».«load»(ctx, sku, country)
}"##,
            ]),
            req(&[
                r##"
func («s» *Service) «load»(ctx context.Context, sku, country string) (Product, error) {
	return «s».flights.do(key(sku, country), func() (Product, error) {
		«p», err := «s».db.GetProduct(ctx, sku, country)
		if err != nil {
			return Product{}, err
		}
		«raw», err := json.Marshal(«entry»{Product: «p», SoftExpiry: «s».clock.Now().Add(«ttl»(productTTL) / 2)})
		if err != nil {
			return Product{}, err
		}
		if err := «s».cache.Set(ctx, key(sku, country), «raw», «ttl»(productTTL)); err != nil {
			«s».log.Warn("cache set failed", "err", err)
		}
		return «p», nil
	})
}"##,
                r##"
func («s» *Service) «load»(ctx context.Context, sku, country string) (Product, error) {
	k := key(sku, country)
	return «s».flights.Do(k, func() (Product, error) {
		«p», err := «s».db.GetProduct(ctx, sku, country)
		if errors.Is(err, ErrNotFound) {
			return Product{}, err
		} else if err != nil {
			return Product{}, fmt.Errorf("db: %w", err)
		}
		e := «entry»{P: «p», Version: «p».PriceVersion, Stale: time.Now().Add(productTTL / 2).Unix()}
		«raw», _ := json.Marshal(e)
		_ = «s».cache.Set(ctx, k, «raw», «ttl»(productTTL))
		return «p», nil
	})
}"##,
            ]),
            req(&[
                r##"
// OnPriceChangedV2 applies a price event unless the cache already has a newer version.
func («s» *Service) OnPriceChangedV2(ctx context.Context, ev PriceChanged) error {
	k := key(ev.SKU, ev.Country)
	«raw», err := «s».cache.Get(ctx, k)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	var e «entry»
	if err := json.Unmarshal(«raw», &e); err != nil {
		return «s».cache.Delete(ctx, k)
	}
	if e.Product.PriceVersion >= ev.PriceVersion {
		return nil
	}
%	e.Product.PriceMinor = ev.PriceMinor
%	e.Product.Currency = ev.Currency
%	e.Product.PriceVersion = ev.PriceVersion
	«raw», _ = json.Marshal(e)
	return «s».cache.Set(ctx, k, «raw», «ttl»(productTTL))
}"##,
                r##"
func («s» *Service) HandlePriceChanged(ctx context.Context, ev PriceChanged) error {
	// Deleting is idempotent and safe against reordered events; the next read reloads.
	if err := «s».cache.Delete(ctx, key(ev.SKU, ev.Country)); err != nil {
		«s».log.Error("price invalidation failed", "sku", ev.SKU, "country", ev.Country, "err", err)
		return err
	}
?	«s».log.Info("price invalidated", "sku", ev.SKU, "version", ev.PriceVersion)
	return nil
}"##,
            ]),
            opt(&[
                r##"
// UpdatePriceV2 writes first, then invalidates: deleting before the write lets a reader put the
// old price back.
func («s» *Service) UpdatePriceV2(ctx context.Context, sku, country string, priceMinor int64) error {
	if _, err := «s».db.UpdatePrice(ctx, sku, country, priceMinor); err != nil {
		return err
	}
	if err := «s».cache.Delete(ctx, key(sku, country)); err != nil {
		«s».log.Warn("invalidate after update failed", "err", err)
	}
	return nil
}"##,
                r##"
func («s» *Service) SetPrice(ctx context.Context, sku, country string, priceMinor int64) error {
	version, err := «s».db.UpdatePrice(ctx, sku, country, priceMinor)
	if err != nil {
		return fmt.Errorf("update price: %w", err)
	}
	return «s».HandlePriceChanged(ctx, PriceChanged{SKU: sku, Country: country, PriceMinor: priceMinor, PriceVersion: version, ChangedAt: «s».clock.Now()})
}"##,
            ]),
        ],
        footer: &[],
        reorder: true,
    }],
};

// ---------------------------------------------------------------------------------------------
// 3. Microservice orchestration (TypeScript)
// ---------------------------------------------------------------------------------------------

static SAGA: TaskPool = TaskPool {
    names: &[
        ("step", &["Step", "SagaStep", "Stage", "Action"]),
        ("run", &["runSaga", "execute", "runSteps", "orchestrate"]),
        ("retry", &["retry", "withRetry", "retrying", "attempt"]),
        ("compensate", &["compensate", "rollback", "undo", "unwind"]),
        ("done", &["done", "completed", "applied", "finished"]),
        ("ctx", &["ctx", "state", "saga", "order"]),
        ("outbox", &["outbox", "pending", "jobs", "queue"]),
    ],
    files: &[FilePool {
        path: "src/checkout.ts",
        extends_starter: false,
        header: &[
            r##"
⟦src/checkout.ts:1-3⟧"##,
            r##"
import express from "express";
import { randomUUID } from "node:crypto";
import type { InventoryClient, LineItem, LoyaltyClient, NotificationsClient, PaymentsClient } from "./clients.js";
?import { setTimeout as delay } from "node:timers/promises";"##,
        ],
        units: &[
            req(&[r##"
⟦src/checkout.ts:5-19⟧"##]),
            req(&[
                r##"
interface «step»<C> {
  name: string;
  run(«ctx»: C): Promise<void>;
  «compensate»?(«ctx»: C): Promise<void>;
}"##,
                r##"
type «step»<C> = {
  name: string;
  action: («ctx»: C) => Promise<void>;
  «compensate»: («ctx»: C) => Promise<void>;
};"##,
            ]),
            req(&[
                r##"
async function «retry»<T>(fn: () => Promise<T>, attempts = ⟨3¦4¦5⟩, baseMs = ⟨100¦200¦250⟩): Promise<T> {
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await fn();
    } catch (err) {
      lastError = err;
      const wait = baseMs * 2 ** i * (0.5 + Math.random());
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  throw lastError;
}"##,
                r##"
async function «retry»<T>(label: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 5 || !isTransient(err)) throw err;
      console.warn(`${label} failed, retrying`, { attempt, err });
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
}

function isTransient(err: unknown): boolean {
  const status = (err as { status?: number }).status;
  return status === undefined || status >= 500 || status === 429;
}"##,
            ]),
            req(&[
                r##"
async function «run»<C>(steps: «step»<C>[], «ctx»: C): Promise<void> {
  const «done»: «step»<C>[] = [];
  try {
    for (const step of steps) {
      await step.run(«ctx»);
      «done».push(step);
    }
  } catch (err) {
    for (const step of «done».reverse()) {
      try {
        await step.«compensate»?.(«ctx»);
      } catch (undoErr) {
        console.error("compensation failed", step.name, undoErr);
      }
    }
    throw err;
  }
}"##,
                r##"
async function «run»<C>(«ctx»: C, steps: «step»<C>[]): Promise<{ ok: true } | { ok: false; failedAt: string; error: unknown }> {
  let i = 0;
  for (; i < steps.length; i++) {
    try {
      await steps[i].action(«ctx»);
    } catch (error) {
      for (let j = i - 1; j >= 0; j--) {
        await «retry»(`undo ${steps[j].name}`, () => steps[j].«compensate»(«ctx»)).catch((e) =>
          console.error("manual intervention needed", steps[j].name, e),
        );
      }
      return { ok: false, failedAt: steps[i].name, error };
    }
  }
  return { ok: true };
}"##,
            ]),
            req(&[
                r##"
function checkoutSteps(deps: Deps, body: CheckoutRequest, orderId: string) {
  const «ctx»: { paymentId?: string; holdId?: string; bookingRef?: string } = {};
  const steps: «step»<typeof «ctx»>[] = [
    {
      name: "hold inventory",
      run: async () => {
        «ctx».holdId = (await deps.inventory.hold({ holdKey: orderId, items: body.items })).holdId;
      },
      «compensate»: async () => {
        if («ctx».holdId) await deps.inventory.release(«ctx».holdId);
      },
    },
    {
      name: "authorize payment",
      run: async () => {
        const payment = await deps.payments.authorize({ idempotencyKey: orderId, customerId: body.customerId, amountMinor: body.amountMinor, currency: body.currency });
        «ctx».paymentId = payment.paymentId;
      },
      «compensate»: async () => {
        if («ctx».paymentId) await deps.payments.void(«ctx».paymentId);
      },
    },
    {
      name: "debit points",
      run: async () => {
        if (body.pointsToRedeem > 0) await deps.loyalty.debit({ customerId: body.customerId, points: body.pointsToRedeem, reference: orderId });
      },
      «compensate»: async () => {
        if (body.pointsToRedeem > 0) await deps.loyalty.credit({ customerId: body.customerId, points: body.pointsToRedeem, reference: orderId });
      },
    },
    {
      name: "confirm",
      run: async () => {
        «ctx».bookingRef = (await deps.inventory.confirm(«ctx».holdId!)).bookingRef;
        await deps.payments.capture(«ctx».paymentId!);
      },
    },
  ];
  return { «ctx», steps };
}"##,
                r##"
function buildSteps(deps: Deps, req: CheckoutRequest, orderId: string): «step»<Record<string, string>>[] {
  return [
    {
      name: "inventory.hold",
      action: async (s) => {
        const hold = await «retry»("hold", () => deps.inventory.hold({ holdKey: orderId, items: req.items }));
        s.holdId = hold.holdId;
      },
      «compensate»: async (s) => {
        if (s.holdId) await deps.inventory.release(s.holdId);
      },
    },
    {
      name: "loyalty.debit",
      action: async () => {
        if (req.pointsToRedeem <= 0) return;
        await «retry»("debit", () => deps.loyalty.debit({ customerId: req.customerId, points: req.pointsToRedeem, reference: orderId }));
      },
      «compensate»: async () => {
        if (req.pointsToRedeem > 0) await deps.loyalty.credit({ customerId: req.customerId, points: req.pointsToRedeem, reference: `undo:${orderId}` });
      },
    },
    {
      name: "payments.authorize",
      action: async (s) => {
        const p = await «retry»("authorize", () =>
          deps.payments.authorize({ idempotencyKey: orderId, customerId: req.customerId, amountMinor: req.amountMinor, currency: req.currency }),
        );
        s.paymentId = p.paymentId;
      },
      «compensate»: async (s) => {
        if (s.paymentId) await deps.payments.void(s.paymentId);
      },
    },
    {
      name: "confirm",
      action: async (s) => {
        s.bookingRef = (await deps.inventory.confirm(s.holdId)).bookingRef;
        await «retry»("capture", () => deps.payments.capture(s.paymentId));
      },
      «compensate»: async () => {},
    },
  ];
}"##,
            ]),
            opt(&[
                r##"
const «outbox»: { dedupeKey: string; send: () => Promise<unknown> }[] = [];

async function drainOutbox(): Promise<void> {
  while («outbox».length > 0) {
    const item = «outbox»[0];
    try {
      await item.send();
      «outbox».shift();
    } catch {
      return;
    }
  }
}"##,
                r##"
class Outbox {
  private items = new Map<string, () => Promise<unknown>>();
  add(key: string, send: () => Promise<unknown>) {
    this.items.set(key, send);
  }
  async flush() {
    for (const [key, send] of this.items) {
      try {
        await send();
        this.items.delete(key);
      } catch (err) {
        console.warn("outbox send failed", key, err);
      }
    }
  }
}
const «outbox» = new Outbox();"##,
            ]),
            req(&[
                r##"
export function checkoutRouter(deps: Deps): express.Router {
  const router = express.Router();
  router.post("/checkout", async (req, res) => {
    const body = req.body as CheckoutRequest;
    const orderId = req.header("Idempotency-Key") ?? randomUUID();
    const { «ctx», steps } = checkoutSteps(deps, body, orderId);
    try {
      await «run»(steps, «ctx»);
    } catch (err) {
      console.error("checkout failed", orderId, err);
      return res.status(409).json({ error: "Checkout failed; nothing was charged." });
    }
?    await deps.notifications.send({ dedupeKey: `booking-confirmed:${orderId}`, to: body.email, template: "booking-confirmed", data: { bookingRef: «ctx».bookingRef } }).catch(() => undefined);
    res.status(201).json({ orderId, bookingRef: «ctx».bookingRef });
  });
  return router;
}"##,
                r##"
⟦src/checkout.ts:22-27⟧
    const state: Record<string, string> = {};
    const result = await «run»(state, buildSteps(deps, body, orderId));
    if (!result.ok) {
      console.error("checkout failed", { orderId, step: result.failedAt, error: result.error });
      res.status(502).json({ error: "Checkout failed, nothing was charged.", orderId });
      return;
    }
    «outbox».push?.({ dedupeKey: `booking-confirmed:${orderId}`, send: () => deps.notifications.send({ dedupeKey: `booking-confirmed:${orderId}`, to: body.email, template: "booking-confirmed", data: { bookingRef: state.bookingRef } }) });
    res.status(200).json({ orderId, bookingRef: state.bookingRef });
  });

  return router;
}"##,
            ]),
        ],
        footer: &[],
        reorder: true,
    }],
};

// ---------------------------------------------------------------------------------------------
// 4. Bug hunt (Python)
// ---------------------------------------------------------------------------------------------

static BUG_HUNT: TaskPool = TaskPool {
    names: &[
        ("db", &["db", "conn", "cur"]),
        ("lock", &["_lock", "_refresh_lock", "_mutex"]),
        ("rates", &["rates", "table", "fresh"]),
        ("inv", &["invoice", "inv", "row"]),
        ("amount", &["amount_cents", "amount", "paid_cents"]),
    ],
    files: &[
        FilePool {
            path: "invoices/payments.py",
            extends_starter: false,
            header: &[r##"
⟦invoices/payments.py:1-10⟧"##],
            units: &[
                req(&[r##"
@bp.post("/webhooks/payments")
def payment_webhook():
    event = verify_signature(request)
    if event["type"] != "payment.succeeded":
        return "", 204
    payment = event["data"]
    record_payment(
        get_db(),
        invoice_id=int(payment["metadata"]["invoice_id"]),
        «amount»=payment["amount"],
        provider_ref=payment["id"],
    )
    return "", 204"##]),
                req(&[
                    r##"
def record_payment(«db», invoice_id: int, «amount»: int, provider_ref: str) -> None:
    """Applies a successful payment once, even when the provider delivers it twice at once."""
    with «db».transaction():
        «inv» = «db».execute(
            "SELECT balance_cents, status FROM invoices WHERE id = %s FOR UPDATE", (invoice_id,)
        ).fetchone()
        if «inv» is None:
            raise LookupError(f"invoice {invoice_id} not found")
        inserted = «db».execute(
            "INSERT INTO payments (invoice_id, amount_cents, provider_ref, received_at)"
            " VALUES (%s, %s, %s, now()) ON CONFLICT (provider_ref) DO NOTHING RETURNING id",
            (invoice_id, «amount», provider_ref),
        ).fetchone()
        if inserted is None:
            return
        balance = «inv».balance_cents - «amount»
        «db».execute(
            "UPDATE invoices SET balance_cents = %s, status = %s WHERE id = %s",
            (balance, "paid" if balance <= 0 else "open", invoice_id),
        )"##,
                    r##"
def record_payment(«db», invoice_id: int, «amount»: int, provider_ref: str) -> None:
    try:
        «db».execute(
            "INSERT INTO payments (invoice_id, amount_cents, provider_ref, received_at)"
            " VALUES (%s, %s, %s, now())",
            (invoice_id, «amount», provider_ref),
        )
    except UniqueViolation:
        «db».rollback()
        return  # already applied: the provider retried
    # One atomic statement: concurrent partial payments cannot overwrite each other.
    updated = «db».execute(
        "UPDATE invoices SET balance_cents = balance_cents - %s,"
        " status = CASE WHEN balance_cents - %s <= 0 THEN 'paid' ELSE 'open' END"
        " WHERE id = %s RETURNING id",
        («amount», «amount», invoice_id),
    ).fetchone()
    if updated is None:
        «db».rollback()
        raise LookupError(f"invoice {invoice_id} not found")
    «db».commit()"##,
                ]),
            ],
            footer: &[],
            reorder: true,
        },
        FilePool {
            path: "invoices/fx.py",
            extends_starter: false,
            header: &[r##"
⟦invoices/fx.py:1-4⟧
import threading
⟦invoices/fx.py:5-10⟧"##],
            units: &[
                req(&[r##"
⟦invoices/fx.py:13-13⟧
⟦invoices/fx.py:15-19⟧"##]),
                req(&[
                    r##"
class RateCache:
⟦invoices/fx.py:26-31⟧
        self.«lock» = threading.Lock()

    def _refresh_if_stale(self) -> dict[str, Decimal]:
        with self.«lock»:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= self._ttl:
                # Build the new table first and swap it in whole: readers never see it empty.
                «rates» = self._fetch()
                self._rates = «rates»
                self._fetched_at = now
            return self._rates

    def rate(self, currency: str) -> Decimal:
        return self._refresh_if_stale()[currency]"##,
                    r##"
class RateCache:
    """Keeps the rate table for five minutes; shared by the threads of a worker."""

    def __init__(self, fetch=fetch_rates, ttl_seconds: float = 300.0, clock=time.monotonic):
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._clock = clock
        self._snapshot: tuple[float, dict[str, Decimal]] | None = None
        self.«lock» = threading.Lock()

    def _table(self) -> dict[str, Decimal]:
        snap = self._snapshot
        if snap is not None and self._clock() - snap[0] < self._ttl:
            return snap[1]
        with self.«lock»:
            snap = self._snapshot
            if snap is None or self._clock() - snap[0] >= self._ttl:
                snap = (self._clock(), dict(self._fetch()))
                self._snapshot = snap
            return snap[1]

    def rate(self, currency: str) -> Decimal:
        return self._table()[currency]"##,
                ]),
                req(&[
                    r##"
def convert(cache: RateCache, amount_cents: int, from_currency: str, to_currency: str) -> int:
    if from_currency == to_currency:
        return amount_cents
    converted = Decimal(amount_cents) * cache.rate(to_currency) / cache.rate(from_currency)
    return int(converted.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))"##,
                    r##"
def convert(cache, cents, src, dst):
    if src == dst:
        return cents
    value = (Decimal(cents) / cache.rate(src)) * cache.rate(dst)
    return int(value.quantize(Decimal("1"), rounding=ROUND_HALF_EVEN))"##,
                ]),
            ],
            footer: &["\nrates = RateCache()"],
            reorder: true,
        },
        FilePool {
            path: "tests/test_fixes.py",
            extends_starter: false,
            header: &[r##"
import threading
from decimal import Decimal

import pytest

from invoices.fx import RateCache"##],
            units: &[
                req(&[
                    r##"
def test_concurrent_readers_never_see_an_empty_table():
    calls = []

    def slow_fetch():
        calls.append(1)
        return {"EUR": Decimal(1), "USD": Decimal("1.08")}

    cache = RateCache(fetch=slow_fetch, ttl_seconds=0)
    errors = []

    def read():
        try:
            for _ in range(200):
                cache.rate("USD")
        except KeyError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors"##,
                    r##"
@pytest.mark.parametrize("n", [2, 8, 32])
def test_rate_is_available_under_contention(n):
    cache = RateCache(fetch=lambda: {"EUR": Decimal(1), "GBP": Decimal("0.85")}, ttl_seconds=0)
    failures = []
    barrier = threading.Barrier(n)

    def worker():
        barrier.wait()
        try:
            cache.rate("GBP")
        except Exception as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert failures == []"##,
                ]),
                opt(&[
                    r##"
def test_duplicate_webhook_is_applied_once(db, invoice):
    from invoices.payments import record_payment

    record_payment(db, invoice.id, 500, "pay_1")
    record_payment(db, invoice.id, 500, "pay_1")
    row = db.execute("SELECT balance_cents FROM invoices WHERE id = %s", (invoice.id,)).fetchone()
    assert row.balance_cents == invoice.balance_cents - 500"##,
                    r##"
def test_two_partial_payments_both_count(db, invoice):
    from invoices.payments import record_payment

    for ref in ("pay_a", "pay_b"):
        record_payment(db, invoice.id, 250, ref)
    balance = db.execute("SELECT balance_cents FROM invoices WHERE id = %s", (invoice.id,)).fetchone()[0]
    assert balance == invoice.balance_cents - 500"##,
                ]),
            ],
            footer: &[],
            reorder: true,
        },
    ],
};

// ---------------------------------------------------------------------------------------------
// 5. Async task queue (Python + SQL)
// ---------------------------------------------------------------------------------------------

static QUEUE: TaskPool = TaskPool {
    names: &[
        (
            "claim",
            &["_claim", "_claim_batch", "_fetch_jobs", "_acquire"],
        ),
        (
            "heartbeat",
            &["_heartbeat", "_extend_lease", "_keep_alive", "_renew"],
        ),
        (
            "finish",
            &["_finish", "_complete", "_mark_done", "_succeed"],
        ),
        (
            "fail",
            &["_fail", "_record_failure", "_on_error", "_retry_or_bury"],
        ),
        ("conn", &["conn", "con", "db"]),
        ("job", &["job", "j", "task"]),
        ("tasks", &["tasks", "running", "in_flight", "active"]),
    ],
    files: &[
        FilePool {
            path: "jobqueue/schema.sql",
            extends_starter: false,
            header: &[r##"
-- Job queue schema (PostgreSQL 16)."##],
            units: &[
                req(&[
                    r##"
CREATE TABLE jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text        NOT NULL,
    payload       jsonb       NOT NULL,
    priority      smallint    NOT NULL DEFAULT 0,
    run_at        timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    state         text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'dead')),
    attempts      integer     NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    locked_by     text,
    last_error    text,
    dedupe_key    text,
    finished_at   timestamptz
);"##,
                    r##"
CREATE TYPE job_state AS ENUM ('queued', 'running', 'succeeded', 'failed');

CREATE TABLE jobs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text        NOT NULL,
    payload     jsonb       NOT NULL,
    priority    smallint    NOT NULL DEFAULT 0,
    run_at      timestamptz NOT NULL DEFAULT now(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    state       job_state   NOT NULL DEFAULT 'queued',
    attempt     integer     NOT NULL DEFAULT 0,
    lease_until timestamptz,
    error       text,
    dedupe_key  text,
    finished_at timestamptz
);"##,
                ]),
                req(&[
                    r##"
CREATE INDEX jobs_claim_idx ON jobs (priority DESC, run_at) WHERE state = 'pending';"##,
                    r##"
CREATE INDEX jobs_ready_idx ON jobs (run_at, priority) WHERE state IN ('queued', 'running');"##,
                ]),
                req(&[
                    r##"
CREATE UNIQUE INDEX jobs_dedupe_key ON jobs (dedupe_key) WHERE state IN ('pending', 'running');"##,
                    r##"
CREATE UNIQUE INDEX jobs_dedupe_active_idx ON jobs (kind, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');"##,
                ]),
                opt(&[
                    r##"
CREATE INDEX jobs_expired_lease_idx ON jobs (locked_until) WHERE state = 'running';"##,
                    r##"
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL;"##,
                ]),
            ],
            footer: &[],
            reorder: false,
        },
        FilePool {
            path: "jobqueue/worker.py",
            extends_starter: true,
            header: &[],
            units: &[
                req(&[
                    r##"
def retry_delay_v2(attempt: int, config: WorkerConfig, rng: random.Random | None = None) -> timedelta:
    rng = rng or random.Random()
    cap = config.backoff_cap.total_seconds()
    exp = min(cap, config.backoff_base.total_seconds() * 2 ** (attempt - 1))
    return timedelta(seconds=rng.uniform(0, exp))"##,
                    r##"
def _backoff(attempt: int, config: WorkerConfig, rng: random.Random | None = None) -> timedelta:
    r = rng if rng is not None else random
    base = config.backoff_base.total_seconds() * (2 ** max(0, attempt - 1))
    delay = min(base, config.backoff_cap.total_seconds())
    # Full jitter spreads retries of jobs that failed together.
    return timedelta(seconds=delay / 2 + r.random() * delay / 2)"##,
                ]),
                req(&[
                    r##"
ENQUEUE_SQL = """
INSERT INTO jobs (kind, payload, dedupe_key, run_at, priority)
VALUES ($1, $2::jsonb, $3, coalesce($4, now()), $5)
ON CONFLICT (dedupe_key) WHERE state IN ('pending', 'running') DO NOTHING
RETURNING id
"""


async def enqueue_job(pool, kind, payload, *, dedupe_key=None, run_at=None, priority=0) -> int:
    async with pool.acquire() as «conn»:
        job_id = await «conn».fetchval(ENQUEUE_SQL, kind, json.dumps(payload), dedupe_key, run_at, priority)
        if job_id is None:
            job_id = await «conn».fetchval(
                "SELECT id FROM jobs WHERE dedupe_key = $1 AND state IN ('pending', 'running')",
                dedupe_key,
            )
        return job_id"##,
                    r##"
async def enqueue_job(pool, kind, payload, *, dedupe_key=None, run_at=None, priority=0) -> int:
    async with pool.acquire() as «conn»:
        async with «conn».transaction():
            if dedupe_key is not None:
                existing = await «conn».fetchval(
                    "SELECT id FROM jobs WHERE kind = $1 AND dedupe_key = $2"
                    " AND state IN ('queued', 'running') FOR UPDATE",
                    kind,
                    dedupe_key,
                )
                if existing is not None:
                    return existing
            return await «conn».fetchval(
                "INSERT INTO jobs (kind, payload, dedupe_key, run_at, priority)"
                " VALUES ($1, $2, $3, coalesce($4, now()), $5) RETURNING id",
                kind,
                json.dumps(payload),
                dedupe_key,
                run_at,
                priority,
            )"##,
                ]),
                req(&[
                    r##"
CLAIM_SQL = """
UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = now() + $2::interval
WHERE id IN (
    SELECT id FROM jobs
    WHERE (state = 'pending' AND run_at <= now()) OR (state = 'running' AND locked_until < now())
    ORDER BY priority DESC, run_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING id, kind, payload, attempts
"""


async def «claim»(pool, limit: int, lease: timedelta) -> list[Job]:
    rows = await pool.fetch(CLAIM_SQL, limit, lease)
    return [Job(id=r["id"], kind=r["kind"], payload=json.loads(r["payload"]), attempt=r["attempts"]) for r in rows]"##,
                    r##"
async def «claim»(pool, limit: int, lease: timedelta) -> list[Job]:
    async with pool.acquire() as «conn»:
        async with «conn».transaction():
            rows = await «conn».fetch(
                """
                SELECT id, kind, payload, attempt FROM jobs
                WHERE run_at <= now()
                  AND (state = 'queued' OR (state = 'running' AND lease_until < now()))
                ORDER BY priority DESC, run_at
                FOR UPDATE SKIP LOCKED
                LIMIT $1
                """,
                limit,
            )
            ids = [r["id"] for r in rows]
            await «conn».execute(
                "UPDATE jobs SET state = 'running', attempt = attempt + 1,"
                " lease_until = now() + $2 WHERE id = any($1)",
                ids,
                lease,
            )
    return [Job(r["id"], r["kind"], json.loads(r["payload"]), r["attempt"] + 1) for r in rows]"##,
                ]),
                req(&[
                    r##"
async def «heartbeat»(pool, job_id: int, lease: timedelta, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=lease.total_seconds() / 3)
        except asyncio.TimeoutError:
            await pool.execute(
                "UPDATE jobs SET locked_until = now() + $2::interval WHERE id = $1 AND state = 'running'",
                job_id,
                lease,
            )"##,
                    r##"
async def «heartbeat»(pool, job_id, lease):
    interval = lease.total_seconds() / 2
    while True:
        await asyncio.sleep(interval)
        try:
            await pool.execute("UPDATE jobs SET lease_until = now() + $2 WHERE id = $1", job_id, lease)
        except Exception:
            log.exception("lease extension failed for job %s", job_id)"##,
                ]),
                req(&[
                    r##"
async def «finish»(pool, job_id: int) -> None:
    await pool.execute(
        "UPDATE jobs SET state = 'done', finished_at = now(), locked_until = NULL WHERE id = $1", job_id
    )


async def «fail»(pool, «job»: Job, error: BaseException, config: WorkerConfig) -> None:
    if isinstance(error, PermanentError) or «job».attempt >= config.max_attempts:
        await pool.execute(
            "UPDATE jobs SET state = 'dead', last_error = $2, finished_at = now() WHERE id = $1",
            «job».id,
            repr(error),
        )
        log.error("job %s is dead after %s attempts: %r", «job».id, «job».attempt, error)
        return
    delay = retry_delay(«job».attempt, config)
    await pool.execute(
        "UPDATE jobs SET state = 'pending', run_at = now() + $2::interval, last_error = $3 WHERE id = $1",
        «job».id,
        delay,
        repr(error),
    )"##,
                    r##"
async def «finish»(pool, «job», error=None, config=WorkerConfig()):
    if error is None:
        await pool.execute("UPDATE jobs SET state = 'succeeded', finished_at = now() WHERE id = $1", «job».id)
        return
    retryable = isinstance(error, TransientError) or not isinstance(error, PermanentError)
    if retryable and «job».attempt < config.max_attempts:
        await pool.execute(
            "UPDATE jobs SET state = 'queued', run_at = now() + $2, error = $3, lease_until = NULL WHERE id = $1",
            «job».id,
            _backoff(«job».attempt, config),
            str(error),
        )
    else:
        await pool.execute(
            "UPDATE jobs SET state = 'failed', error = $2, finished_at = now() WHERE id = $1",
            «job».id,
            str(error),
        )"##,
                ]),
                req(&[
                    r##"
async def run_worker(pool, handlers: dict[str, Handler], config: WorkerConfig, stopping: asyncio.Event) -> None:
    «tasks»: set[asyncio.Task] = set()
    sem = asyncio.Semaphore(config.concurrency)

    async def execute(«job»: Job) -> None:
        stop = asyncio.Event()
        beat = asyncio.create_task(«heartbeat»(pool, «job».id, config.lease, stop))
        try:
            handler = handlers[«job».kind]
            await handler(«job»)
        except Exception as exc:
            await «fail»(pool, «job», exc, config)
        else:
            await «finish»(pool, «job».id)
        finally:
            stop.set()
            await beat
            sem.release()

    while not stopping.is_set():
        free = config.concurrency - len(«tasks»)
        jobs = await «claim»(pool, free, config.lease) if free > 0 else []
        for «job» in jobs:
            await sem.acquire()
            t = asyncio.create_task(execute(«job»))
            «tasks».add(t)
            t.add_done_callback(«tasks».discard)
        if not jobs:
            try:
                await asyncio.wait_for(stopping.wait(), config.poll_interval.total_seconds())
            except asyncio.TimeoutError:
                pass
    if «tasks»:
        await asyncio.wait(«tasks», timeout=config.shutdown_grace.total_seconds())"##,
                    r##"
async def run_worker(pool, handlers, config, stopping):
    «tasks» = set()
    while not stopping.is_set():
        capacity = config.concurrency - len(«tasks»)
        if capacity <= 0:
            await asyncio.wait(«tasks», return_when=asyncio.FIRST_COMPLETED)
            continue
        batch = await «claim»(pool, capacity, config.lease)
        if not batch:
            await asyncio.sleep(config.poll_interval.total_seconds())
            continue
        for «job» in batch:
            «tasks».add(asyncio.create_task(_run_one(pool, handlers, «job», config)))
        «tasks» = {t for t in «tasks» if not t.done()}
    log.info("draining %d jobs", len(«tasks»))
    done, pending = await asyncio.wait(«tasks», timeout=config.shutdown_grace.total_seconds())
    for t in pending:
        t.cancel()


async def _run_one(pool, handlers, «job», config):
    beat = asyncio.create_task(«heartbeat»(pool, «job».id, config.lease))
    try:
        await handlers[«job».kind](«job»)
    except Exception as exc:
        await «finish»(pool, «job», exc, config)
    else:
        await «finish»(pool, «job»)
    finally:
        beat.cancel()"##,
                ]),
            ],
            footer: &[],
            reorder: true,
        },
    ],
};

// ---------------------------------------------------------------------------------------------
// 6. Rate limiting (Go)
// ---------------------------------------------------------------------------------------------

static RATE_LIMIT: TaskPool = TaskPool {
    names: &[
        (
            "limiter",
            &["GCRA", "TokenBucket", "RedisLimiter", "Bucket"],
        ),
        (
            "script",
            &["gcraScript", "tokenBucketLua", "allowScript", "luaAllow"],
        ),
        ("l", &["l", "lim", "b", "r"]),
        ("mw", &["Middleware", "Limit", "Handler", "Wrap"]),
        ("ip", &["clientIP", "remoteAddr", "callerIP", "sourceIP"]),
        ("d", &["d", "dec", "decision", "res"]),
    ],
    files: &[FilePool {
        path: "internal/ratelimit/redislimiter.go",
        extends_starter: false,
        header: &[r##"
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)"##],
        units: &[
            req(&[
                r##"
// «script» is a token bucket: tokens and the last refill time live in one hash.
const «script» = `
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', key, 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
return {allowed, math.floor(tokens)}
`"##,
                r##"
const «script» = `
-- GCRA: one key holds the theoretical arrival time.
local tat_key = KEYS[1]
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local now = redis.call('TIME')
now = now[1] * 1000000 + now[2]
local tat = tonumber(redis.call('GET', tat_key) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, allow_at - now}
end
local new_tat = tat + emission
redis.call('SET', tat_key, new_tat, 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0}
`"##,
            ]),
            req(&[
                r##"
type «limiter» struct {
	Redis Redis
	Rate  float64 // tokens per second
	Burst int
	Prefix string
	sha   string
}

func («l» *«limiter») Allow(ctx context.Context, key string) (Decision, error) {
	k := fmt.Sprintf("%s:{%s}", «l».Prefix, key)
	if «l».sha == "" {
		sha, err := «l».Redis.ScriptLoad(ctx, «script»)
		if err != nil {
			return Decision{}, fmt.Errorf("script load: %w", err)
		}
		«l».sha = sha
	}
	out, err := «l».Redis.EvalSha(ctx, «l».sha, []string{k}, «l».Rate, «l».Burst)
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
		out, err = «l».Redis.Eval(ctx, «script», []string{k}, «l».Rate, «l».Burst)
	}
	if err != nil {
		return Decision{}, err
	}
	vals, ok := out.([]any)
	if !ok || len(vals) != 2 {
		return Decision{}, errors.New("unexpected script result")
	}
	allowed, _ := vals[0].(int64)
	remaining, _ := vals[1].(int64)
	«d» := Decision{Allowed: allowed == 1, Limit: «l».Burst, Remaining: int(remaining)}
	if !«d».Allowed {
		«d».RetryAfter = time.Duration(float64(time.Second) / «l».Rate)
	}
	return «d», nil
}"##,
                r##"
type «limiter» struct {
	redis     Redis
	emission  time.Duration
	tolerance time.Duration
	limit     int
}

func New«limiter»(r Redis, perSecond float64, burst int) *«limiter» {
	emission := time.Duration(float64(time.Second) / perSecond)
	return &«limiter»{redis: r, emission: emission, tolerance: emission * time.Duration(burst), limit: burst}
}

func («l» *«limiter») Allow(ctx context.Context, key string) (Decision, error) {
	keys := []string{"rl:{" + key + "}:tat"}
	res, err := «l».redis.Eval(ctx, «script», keys, «l».emission.Microseconds(), «l».tolerance.Microseconds())
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit eval: %w", err)
	}
	arr, _ := res.([]any)
	if len(arr) < 2 {
		return Decision{}, errors.New("ratelimit: bad reply")
	}
	ok, _ := arr[0].(int64)
	wait, _ := arr[1].(int64)
	if ok == 1 {
		return Decision{Allowed: true, Limit: «l».limit, Remaining: «l».limit - 1, ResetAfter: «l».tolerance}, nil
	}
	return Decision{Allowed: false, Limit: «l».limit, RetryAfter: time.Duration(wait) * time.Microsecond}, nil
}"##,
            ]),
            req(&[
                r##"
// «ip» takes the address the load balancer appended: the rightmost X-Forwarded-For entry.
func «ip»(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		parts := strings.Split(xff, ",")
		return strings.TrimSpace(parts[len(parts)-1])
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}"##,
                r##"
func «ip»(r *http.Request, trustedHops int) string {
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	if idx := len(hops) - trustedHops; trustedHops > 0 && idx >= 0 && idx < len(hops) {
		if addr := strings.TrimSpace(hops[idx]); net.ParseIP(addr) != nil {
			return addr
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}"##,
            ]),
            req(&[
                r##"
func «mw»(lim Limiter, keyOf func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		«d», err := lim.Allow(r.Context(), keyOf(r))
		if err != nil {
			// Fail open: a Redis outage must not take the API down.
			next.ServeHTTP(w, r)
			return
		}
%		w.Header().Set("RateLimit-Limit", strconv.Itoa(«d».Limit))
%		w.Header().Set("RateLimit-Remaining", strconv.Itoa(«d».Remaining))
%		w.Header().Set("RateLimit-Reset", strconv.Itoa(int(«d».ResetAfter.Seconds())))
		if !«d».Allowed {
			w.Header().Set("Retry-After", strconv.Itoa(int(«d».RetryAfter.Seconds())+1))
			http.Error(w, "rate limit exceeded", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}"##,
                r##"
type «mw» struct {
	Limiter  Limiter
	Key      func(*http.Request) string
	FailOpen bool
}

func (m «mw») Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Millisecond)
		defer cancel()
		«d», err := m.Limiter.Allow(ctx, m.Key(r))
		if err != nil {
			if m.FailOpen {
				next.ServeHTTP(w, r)
			} else {
				http.Error(w, "try again later", http.StatusServiceUnavailable)
			}
			return
		}
		h := w.Header()
		h.Set("RateLimit-Limit", strconv.Itoa(«d».Limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(max(«d».Remaining, 0)))
		if !«d».Allowed {
			h.Set("Retry-After", strconv.FormatInt(int64(«d».RetryAfter/time.Second)+1, 10))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}"##,
            ]),
            opt(&[
                r##"
// InFlight caps concurrent requests per key; slots are leased so a dead instance cannot leak them.
type InFlight struct {
	Redis Redis
	Max   int
	Lease time.Duration
}

const inflightScript = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`

func (f *InFlight) Acquire(ctx context.Context, key, id string) (bool, error) {
	now, err := f.Redis.Time(ctx)
	if err != nil {
		return false, err
	}
	res, err := f.Redis.Eval(ctx, inflightScript, []string{"inflight:{" + key + "}"},
		now.UnixMilli(), now.Add(f.Lease).UnixMilli(), f.Max, id, f.Lease.Milliseconds())
	if err != nil {
		return false, err
	}
	n, _ := res.(int64)
	return n == 1, nil
}"##,
                r##"
type Concurrency struct {
	sem chan struct{}
}

func NewConcurrency(n int) *Concurrency { return &Concurrency{sem: make(chan struct{}, n)} }

func (c *Concurrency) Do(w http.ResponseWriter, r *http.Request, next http.Handler) {
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
		next.ServeHTTP(w, r)
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many requests in flight", http.StatusTooManyRequests)
	}
}"##,
            ]),
            opt(&[
                r##"
// LoginKeys limits login attempts per IP and per account separately.
func LoginKeys(r *http.Request, email string) []string {
	return []string{
		"login:ip:" + «ip»(r⟨¦, 1⟩),
		"login:acct:" + strings.ToLower(strings.TrimSpace(email)),
	}
}"##,
                r##"
func loginKey(r *http.Request) string {
	if err := r.ParseForm(); err != nil {
		return "login:ip:" + «ip»(r⟨¦, 1⟩)
	}
	return "login:user:" + strings.ToLower(r.PostForm.Get("email"))
}"##,
            ]),
        ],
        footer: &[],
        reorder: true,
    }],
};
