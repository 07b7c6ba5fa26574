import { createHash } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import { z } from "zod";
import { store, type Booking, type Site, type Space } from "./store.js";

// ---------------------------------------------------------------------------------------------
// Errors: application/problem+json (RFC 9457) everywhere.
// ---------------------------------------------------------------------------------------------

export class Problem extends Error {
  constructor(
    public status: number,
    public type: string,
    public title: string,
    public detail?: string,
    public extra: Record<string, unknown> = {},
  ) {
    super(title);
  }
}

export function sendProblem(res: Response, p: Problem): void {
  res
    .status(p.status)
    .type("application/problem+json")
    .send(JSON.stringify({ type: `https://api.deskly.example/problems/${p.type}`, title: p.title, status: p.status, detail: p.detail, ...p.extra }));
}

const invalid = (errors: { field: string; message: string }[]) =>
  new Problem(422, "validation-error", "The request is invalid.", errors.map((e) => `${e.field}: ${e.message}`).join("; "), { errors });

const notFound = (what: string) => new Problem(404, "not-found", `${what} not found.`);

// ---------------------------------------------------------------------------------------------
// Time.
// ---------------------------------------------------------------------------------------------

const QUARTER = 15 * 60_000;

function offsetMinutes(timeZone: string, ms: number): number {
  const p = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms));
  const n = (t: string) => Number(p.find((x) => x.type === t)!.value);
  return Math.round((Date.UTC(n("year"), n("month") - 1, n("day"), n("hour"), n("minute"), n("second")) - ms) / 60_000);
}

/** The instant of wall-clock `hhmm` on `date` (YYYY-MM-DD) in `timeZone`. */
function zonedInstant(timeZone: string, date: string, hhmm: string): number {
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm] = hhmm.split(":").map(Number);
  const asUtc = Date.UTC(y, m - 1, d, hh, mm);
  return asUtc - offsetMinutes(timeZone, asUtc - offsetMinutes(timeZone, asUtc) * 60_000) * 60_000;
}

function localDate(timeZone: string, ms: number): string {
  return new Date(ms + offsetMinutes(timeZone, ms) * 60_000).toISOString().slice(0, 10);
}

function rfc3339(ms: number, timeZone: string): string {
  const off = offsetMinutes(timeZone, ms);
  const local = new Date(ms + off * 60_000).toISOString().slice(0, 19);
  const a = Math.abs(off);
  return `${local}${off < 0 ? "-" : "+"}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
}

/** Business rules for a range on a space; returns field errors. */
function checkRange(site: Site, start: number, end: number, now = Date.now()) {
  const errors: { field: string; message: string }[] = [];
  if (start % QUARTER !== 0) errors.push({ field: "start", message: "must be on a 15-minute boundary" });
  if (end % QUARTER !== 0) errors.push({ field: "end", message: "must be on a 15-minute boundary" });
  if (end <= start) errors.push({ field: "end", message: "must be after start" });
  else if (end - start < 30 * 60_000) errors.push({ field: "end", message: "a booking lasts at least 30 minutes" });
  else if (end - start > 10 * 3_600_000) errors.push({ field: "end", message: "a booking lasts at most 10 hours" });
  if (start < now) errors.push({ field: "start", message: "must not be in the past" });
  const day = localDate(site.timeZone, start);
  const opens = zonedInstant(site.timeZone, day, site.opensAt);
  const closes = zonedInstant(site.timeZone, day, site.closesAt);
  if (start < opens || end > closes) {
    errors.push({ field: "start", message: `must fall within the site's opening hours (${site.opensAt}-${site.closesAt} ${site.timeZone})` });
  }
  return errors;
}

// ---------------------------------------------------------------------------------------------
// Representations.
// ---------------------------------------------------------------------------------------------

function bookingView(b: Booking, site?: Site) {
  const tz = site?.timeZone ?? "UTC";
  return {
    id: b.id,
    space_id: b.spaceId,
    member_id: b.memberId,
    start: rfc3339(Date.parse(b.start), tz),
    end: rfc3339(Date.parse(b.end), tz),
    status: b.status,
    version: b.version,
    created_at: b.createdAt,
  };
}

function spaceView(s: Space) {
  return { id: s.id, site_id: s.siteId, name: s.name, type: s.type, capacity: s.capacity, created_at: s.createdAt };
}

const etag = (b: Booking) => `"${b.id}.${b.version}"`;

async function siteOfSpace(spaceId: string) {
  const space = await store.getSpace(spaceId);
  return space ? { space, site: await store.getSite(space.siteId) } : undefined;
}

// ---------------------------------------------------------------------------------------------
// Validation schemas.
// ---------------------------------------------------------------------------------------------

const instantSchema = z.string().datetime({ offset: true, message: "must be an RFC 3339 time with an offset" });
const createSchema = z.object({ space_id: z.string().min(1), start: instantSchema, end: instantSchema }).strict();
const rescheduleSchema = z.object({ start: instantSchema, end: instantSchema }).strict();

function parse<S extends z.ZodTypeAny>(schema: S, body: unknown): z.output<S> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) {
    throw invalid(r.error.issues.map((i) => ({ field: i.path.join(".") || (i.code === "unrecognized_keys" ? i.keys.join(",") : "body"), message: i.message })));
  }
  return r.data;
}

function memberId(req: Request): string {
  const id = req.header("X-Member-Id");
  if (!id) throw new Problem(401, "missing-member", "The X-Member-Id header is required.");
  return id;
}

const wrap = (fn: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: NextFunction) => {
  fn(req, res).catch(next);
};

// ---------------------------------------------------------------------------------------------
// Idempotency: the first response under (member, key) is stored and replayed.
// ---------------------------------------------------------------------------------------------

async function idempotent(req: Request, res: Response, handler: () => Promise<{ status: number; headers: Record<string, string>; body: unknown }>) {
  const member = memberId(req);
  const key = req.header("Idempotency-Key");
  if (!key) throw invalid([{ field: "Idempotency-Key", message: "header is required" }]);
  const scoped = `${member}:${key}`;
  const fingerprint = createHash("sha256").update(`${req.method} ${req.path} ${JSON.stringify(req.body)}`).digest("hex");
  let claim = await store.claimIdempotencyKey(scoped, fingerprint);
  // A duplicate of a request still in flight waits (briefly) for its response.
  for (let i = 0; !claim.claimed && claim.record.state === "in_progress" && i < 200; i++) {
    await new Promise((r) => setTimeout(r, 10));
    const record = await store.getIdempotencyRecord(scoped);
    claim = record ? { claimed: false, record } : await store.claimIdempotencyKey(scoped, fingerprint);
  }
  if (!claim.claimed) {
    const { record } = claim;
    if (record.fingerprint !== fingerprint) {
      throw new Problem(422, "idempotency-key-reused", "This Idempotency-Key was used with a different request.");
    }
    if (record.state === "in_progress" || !record.response) {
      throw new Problem(409, "request-in-progress", "A request with this Idempotency-Key is still in progress; retry later.");
    }
    res.status(record.response.status).set({ ...record.response.headers, "Idempotent-Replayed": "true" }).send(JSON.stringify(record.response.body));
    return;
  }
  let response;
  try {
    response = await handler();
  } catch (err) {
    if (err instanceof Problem && err.status < 500) {
      const body = { type: `https://api.deskly.example/problems/${err.type}`, title: err.title, status: err.status, detail: err.detail, ...err.extra };
      response = { status: err.status, headers: { "Content-Type": "application/problem+json" }, body };
    } else {
      await store.releaseIdempotencyKey(scoped);
      throw err;
    }
  }
  await store.completeIdempotencyKey(scoped, response);
  res.status(response.status).set(response.headers).send(JSON.stringify(response.body));
}

// ---------------------------------------------------------------------------------------------
// Routes.
// ---------------------------------------------------------------------------------------------

export const v1 = express.Router();

const listSchema = z
  .object({
    site_id: z.string().optional(),
    type: z.enum(["desk", "meeting_room"]).optional(),
    min_capacity: z.coerce.number().int().min(1).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().optional(),
  })
  .strict();

v1.get("/spaces", wrap(async (req, res) => {
  const q = parse(listSchema, req.query);
  const filters = JSON.stringify([q.site_id, q.type, q.min_capacity]);
  let after: { createdAt: string; id: string } | undefined;
  if (q.cursor) {
    try {
      const c = JSON.parse(Buffer.from(q.cursor, "base64url").toString());
      if (c.f !== filters) throw new Error("filters changed");
      after = { createdAt: c.c, id: c.i };
    } catch {
      throw invalid([{ field: "cursor", message: "is not a cursor of this listing (filters must not change between pages)" }]);
    }
  }
  const all = (await store.listSpaces())
    .filter((s) => (!q.site_id || s.siteId === q.site_id) && (!q.type || s.type === q.type) && (!q.min_capacity || s.capacity >= q.min_capacity))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
    .filter((s) => !after || s.createdAt > after.createdAt || (s.createdAt === after.createdAt && s.id > after.id));
  const page = all.slice(0, q.limit);
  const last = page[page.length - 1];
  const next = all.length > q.limit && last ? Buffer.from(JSON.stringify({ c: last.createdAt, i: last.id, f: filters })).toString("base64url") : null;
  res.json({ data: page.map(spaceView), next_cursor: next });
}));

v1.get("/spaces/:id/availability", wrap(async (req, res) => {
  const q = parse(z.object({ date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "must be YYYY-MM-DD") }).strict(), req.query);
  const found = await siteOfSpace(req.params.id);
  if (!found?.site) throw notFound("Space");
  const { site } = found;
  const opens = zonedInstant(site.timeZone, q.date, site.opensAt);
  const closes = zonedInstant(site.timeZone, q.date, site.closesAt);
  const taken = (await store.bookingsForSpace(req.params.id))
    .filter((b) => b.status === "confirmed")
    .map((b) => [Date.parse(b.start), Date.parse(b.end)] as const)
    .filter(([s, e]) => s < closes && opens < e)
    .sort((a, b) => a[0] - b[0]);
  const free: { start: string; end: string }[] = [];
  let cursor = opens;
  for (const [s, e] of taken) {
    if (s > cursor) free.push({ start: rfc3339(cursor, site.timeZone), end: rfc3339(s, site.timeZone) });
    cursor = Math.max(cursor, e);
  }
  if (cursor < closes) free.push({ start: rfc3339(cursor, site.timeZone), end: rfc3339(closes, site.timeZone) });
  res.json({ space_id: req.params.id, date: q.date, time_zone: site.timeZone, free });
}));

v1.post("/bookings", wrap(async (req, res) => {
  await idempotent(req, res, async () => {
    const member = memberId(req);
    const body = parse(createSchema, req.body);
    const found = await siteOfSpace(body.space_id);
    if (!found?.site) throw invalid([{ field: "space_id", message: "no such space" }]);
    const start = Date.parse(body.start);
    const end = Date.parse(body.end);
    const errors = checkRange(found.site, start, end);
    if (errors.length) throw invalid(errors);
    const r = await store.insertBookingIfFree({ spaceId: body.space_id, memberId: member, start: new Date(start).toISOString(), end: new Date(end).toISOString() });
    if ("conflict" in r) {
      throw new Problem(409, "slot-taken", "The space is already booked for part of this time.", undefined, {
        conflicting_range: { start: rfc3339(Date.parse(r.conflict.start), found.site.timeZone), end: rfc3339(Date.parse(r.conflict.end), found.site.timeZone) },
      });
    }
    return {
      status: 201,
      headers: { "Content-Type": "application/json", Location: `/v1/bookings/${r.booking.id}`, ETag: etag(r.booking) },
      body: bookingView(r.booking, found.site),
    };
  });
}));

async function loadBooking(req: Request) {
  const member = memberId(req);
  const booking = await store.getBooking(req.params.id);
  if (!booking || booking.memberId !== member) throw notFound("Booking");
  return booking;
}

v1.get("/bookings/:id", wrap(async (req, res) => {
  const booking = await loadBooking(req);
  const found = await siteOfSpace(booking.spaceId);
  res.set("ETag", etag(booking)).json(bookingView(booking, found?.site));
}));

v1.patch("/bookings/:id", wrap(async (req, res) => {
  const booking = await loadBooking(req);
  const body = parse(rescheduleSchema, req.body);
  const found = await siteOfSpace(booking.spaceId);
  if (!found?.site) throw notFound("Space");
  const ifMatch = req.header("If-Match");
  let expected: number | undefined;
  if (ifMatch) {
    if (ifMatch !== etag(booking)) throw new Problem(412, "version-mismatch", "The booking changed since you read it.");
    expected = booking.version;
  }
  const start = Date.parse(body.start);
  const end = Date.parse(body.end);
  const errors = checkRange(found.site, start, end);
  if (errors.length) throw invalid(errors);
  const r = await store.rescheduleBooking(booking.id, new Date(start).toISOString(), new Date(end).toISOString(), expected);
  if ("notFound" in r) throw notFound("Booking");
  if ("stale" in r) throw new Problem(412, "version-mismatch", "The booking changed since you read it.");
  if ("cancelled" in r) throw new Problem(409, "booking-cancelled", "A cancelled booking cannot be rescheduled.");
  if ("conflict" in r) throw new Problem(409, "slot-taken", "The space is already booked for part of this time.");
  res.set("ETag", etag(r.booking)).json(bookingView(r.booking, found.site));
}));

v1.delete("/bookings/:id", wrap(async (req, res) => {
  const booking = await loadBooking(req);
  const cancelled = await store.cancelBooking(booking.id);
  const found = await siteOfSpace(booking.spaceId);
  res.json(bookingView(cancelled ?? booking, found?.site));
}));

v1.use((_req, res) => sendProblem(res, new Problem(404, "not-found", "No such endpoint.")));

/** Errors of /v1 (including express.json's parse errors) as problem+json. */
export function v1Errors(err: unknown, req: Request, res: Response, next: NextFunction): void {
  if (!req.path.startsWith("/v1")) return next(err);
  if (err instanceof Problem) return sendProblem(res, err);
  const e = err as { type?: string; status?: number };
  if (e?.type === "entity.parse.failed") return sendProblem(res, new Problem(400, "malformed-json", "The body is not valid JSON."));
  if (e?.status && e.status >= 400 && e.status < 500) return sendProblem(res, new Problem(e.status, "bad-request", "The request could not be read."));
  console.error(err);
  sendProblem(res, new Problem(500, "internal", "Something went wrong on our side."));
}
