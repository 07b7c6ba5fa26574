// The reviewers' replay script for the Deskly bookings API, as weighted checks (run by runner/harness/node_grade.mjs).
// Relies only on the fixed points in the prompt: `app` exported by src/app.ts (not listening
// under NODE_ENV=test), POST /v1/bookings {space_id, start, end} with X-Member-Id and
// Idempotency-Key answering 201 with the booking's `id`, 409 for a taken slot, GET
// /v1/bookings/{id}, PATCH /v1/bookings/{id} {start, end}, cancel by DELETE /v1/bookings/{id} or
// POST /v1/bookings/{id}/cancel, and the seeded spaces and `store` of src/store.ts.
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const WORK = process.cwd();
const LONDON = { space: "spc_01", tz: "Europe/London" }; // 07:00-21:00
const LONDON_ROOM = { space: "spc_03", tz: "Europe/London" };
const NYC = { space: "spc_04", tz: "America/New_York" }; // 08:00-20:00

// ---------------------------------------------------------------------------------------------
// Time helpers: wall-clock times in a site's zone, as RFC 3339 with that zone's offset.
// ---------------------------------------------------------------------------------------------

function offsetMinutes(timeZone, ms) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms));
  const get = (t) => Number(parts.find((p) => p.type === t).value);
  return Math.round((Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second")) - ms) / 60_000);
}

function fmtOffset(ms, offMin) {
  const local = new Date(ms + offMin * 60_000).toISOString().slice(0, 19);
  const sign = offMin < 0 ? "-" : "+";
  const a = Math.abs(offMin);
  return `${local}${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
}

/** The calendar date `days` days from now in `tz`. */
function dayAhead(tz, days) {
  const ms = Date.now() + days * 86_400_000;
  return new Date(ms + offsetMinutes(tz, ms) * 60_000).toISOString().slice(0, 10);
}

/** Instant (ms) of the wall-clock time `hhmm` on `date` in `tz`. */
function instant(tz, date, hhmm) {
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm] = hhmm.split(":").map(Number);
  const asUtc = Date.UTC(y, m - 1, d, hh, mm);
  const off1 = offsetMinutes(tz, asUtc);
  const off2 = offsetMinutes(tz, asUtc - off1 * 60_000);
  return asUtc - off2 * 60_000;
}

function at(tz, date, hhmm) {
  const ms = instant(tz, date, hhmm);
  return fmtOffset(ms, offsetMinutes(tz, ms));
}

// Each check books on its own day, so checks never see each other's bookings.
let dayCounter = 40;
function slotMaker(site) {
  const date = dayAhead(site.tz, dayCounter++);
  return { ...site, date, t: (hhmm) => at(site.tz, date, hhmm), ms: (hhmm) => instant(site.tz, date, hhmm) };
}

// ---------------------------------------------------------------------------------------------
// HTTP against the candidate's app.
// ---------------------------------------------------------------------------------------------

let serverPromise;
async function base() {
  serverPromise ??= (async () => {
    const file = join(WORK, "src/app.ts");
    if (!existsSync(file)) throw new Error("src/app.ts is missing");
    let mod;
    try {
      mod = await import(pathToFileURL(file).href);
    } catch (err) {
      throw new Error(`src/app.ts could not be loaded: ${firstLines(err)}`);
    }
    const app = mod.app ?? mod.default;
    if (!app || typeof app.listen !== "function") throw new Error("src/app.ts does not export the Express `app`");
    const server = await new Promise((resolve, reject) => {
      const s = app.listen(0, "127.0.0.1", () => resolve(s));
      s.on("error", reject);
    });
    return `http://127.0.0.1:${server.address().port}`;
  })();
  return serverPromise;
}

function firstLines(err) {
  const text = String(err?.message ?? err);
  return text.split("\n").slice(0, 6).join(" ").slice(0, 600);
}

async function req(method, path, { body, headers = {}, raw } = {}) {
  const url = (await base()) + path;
  const h = { ...headers };
  let payload;
  if (raw !== undefined) {
    payload = raw;
    h["content-type"] ??= "application/json";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    h["content-type"] ??= "application/json";
  }
  const res = await fetch(url, { method, headers: h, body: payload });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json, ct: res.headers.get("content-type") ?? "" };
}

const member = () => `mem_${randomUUID().slice(0, 8)}`;

function book(slot, start, end, { key = randomUUID(), who = "mem_grader", extra = {} } = {}) {
  return req("POST", "/v1/bookings", {
    body: { space_id: slot.space, start, end, ...extra },
    headers: { "X-Member-Id": who, "Idempotency-Key": key },
  });
}

/** The booking object in a create/read response: the body itself or its `data`/`booking`. */
function bookingOf(r) {
  const j = r.json;
  if (!j || typeof j !== "object") return undefined;
  if (typeof j.id === "string") return j;
  for (const k of ["data", "booking"]) if (j[k] && typeof j[k].id === "string") return j[k];
  return undefined;
}

function idOf(r) {
  return bookingOf(r)?.id;
}

function show(r) {
  let text = r.text;
  if (/html/i.test(r.ct)) text = `(an HTML page: ${(/<pre>([\s\S]*?)<\/pre>/.exec(text)?.[1] ?? text).split("<br>")[0]})`;
  const body = text.length > 160 ? `${text.slice(0, 160)}…` : text;
  return `${r.status} ${body.replace(/\s+/g, " ")}`;
}

async function confirmedIn(slot, fromMs, toMs) {
  const file = join(WORK, "src/store.ts");
  const mod = await import(pathToFileURL(file).href);
  const store = mod.store;
  if (!store || typeof store.bookingsForSpace !== "function") return undefined;
  const all = await store.bookingsForSpace(slot.space);
  return all.filter((b) => b.status !== "cancelled" && Date.parse(b.start) < toMs && fromMs < Date.parse(b.end));
}

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

async function mustCreate(slot, start, end, opts) {
  const r = await book(slot, start, end, opts);
  expect(r.status === 201 && idOf(r), `creating a valid booking (${start} to ${end} on ${slot.space}) answered ${show(r)}, expected 201 with the booking's id`);
  return r;
}

function isJson(r) {
  return /json/i.test(r.ct) && r.json !== undefined;
}

async function cancel(id) {
  const openapi = existsSync(join(WORK, "openapi.yaml")) ? readFileSync(join(WORK, "openapi.yaml"), "utf8") : "";
  const postCancel = /\/bookings\/\{[^}]+\}\/cancel/.test(openapi);
  const headers = { "X-Member-Id": "mem_grader" };
  if (postCancel) return req("POST", `/v1/bookings/${id}/cancel`, { headers, body: {} });
  const r = await req("DELETE", `/v1/bookings/${id}`, { headers });
  if (r.status === 404 && !isJson(r)) {
    // No DELETE route (express's default HTML 404): try the action form.
    return req("POST", `/v1/bookings/${id}/cancel`, { headers, body: {} });
  }
  return r;
}

async function reschedule(id, start, end) {
  const headers = { "X-Member-Id": "mem_grader" };
  const current = await req("GET", `/v1/bookings/${id}`, { headers });
  const etag = current.headers.get("etag");
  if (etag) headers["If-Match"] = etag;
  const body = { start, end };
  const version = bookingOf(current)?.version;
  if (version !== undefined && !etag) body.version = version;
  let r = await req("PATCH", `/v1/bookings/${id}`, { headers, body });
  if (r.status === 400 || r.status === 422) {
    // Some designs reject unknown fields such as `version`: retry with only the times.
    if (body.version !== undefined) r = await req("PATCH", `/v1/bookings/${id}`, { headers, body: { start, end } });
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------------

export const checks = [
  {
    key: "create_booking_201",
    name: "POST /v1/bookings with a valid body answers 201 with the booking, and GET /v1/bookings/{id} returns it",
    weight: 2,
    async run() {
      const s = slotMaker(LONDON);
      const r = await mustCreate(s, s.t("10:00"), s.t("11:00"));
      const id = idOf(r);
      const g = await req("GET", `/v1/bookings/${id}`, { headers: { "X-Member-Id": "mem_grader" } });
      expect(g.status === 200 && idOf(g) === id, `GET /v1/bookings/${id} answered ${show(g)}, expected 200 with the same booking`);
    },
  },
  {
    key: "unknown_booking_404",
    name: "GET /v1/bookings/{id} for an unknown id answers 404",
    weight: 1,
    async run() {
      const r = await req("GET", "/v1/bookings/bk_does_not_exist", { headers: { "X-Member-Id": "mem_grader" } });
      expect(r.status === 404, `GET of an unknown booking answered ${show(r)}, expected 404`);
      expect(isJson(r), `the 404 for an unknown booking is not JSON (content-type "${r.ct}"): ${show(r)}`);
    },
  },
  {
    key: "replay_same_key",
    name: "Replaying a POST with the same Idempotency-Key returns the original response and creates no second booking",
    weight: 3,
    async run() {
      const s = slotMaker(LONDON);
      const key = randomUUID();
      const who = member();
      const first = await mustCreate(s, s.t("09:00"), s.t("10:30"), { key, who });
      const second = await book(s, s.t("09:00"), s.t("10:30"), { key, who });
      expect(second.status === 201, `the replay answered ${show(second)}, expected the original 201`);
      expect(idOf(second) === idOf(first), `the replay returned booking ${idOf(second)}, the original was ${idOf(first)}`);
      const live = await confirmedIn(s, s.ms("09:00"), s.ms("10:30"));
      if (live) expect(live.length === 1, `the store holds ${live.length} confirmed bookings for the slot after a replay, expected 1`);
    },
  },
  {
    key: "replay_in_flight",
    name: "Two requests with the same Idempotency-Key sent at the same time produce one booking and the same response",
    weight: 1,
    async run() {
      const s = slotMaker(LONDON);
      const key = randomUUID();
      const who = member();
      const rs = await Promise.all([0, 1, 2].map(() => book(s, s.t("13:00"), s.t("14:00"), { key, who })));
      const ids = new Set(rs.filter((r) => r.status === 201).map(idOf));
      const live = await confirmedIn(s, s.ms("13:00"), s.ms("14:00"));
      if (live) expect(live.length === 1, `3 concurrent requests with one key left ${live.length} confirmed bookings (responses: ${rs.map((r) => r.status).join(", ")})`);
      expect(ids.size <= 1, `concurrent requests with one key returned different bookings: ${[...ids].join(", ")}`);
      expect(rs.some((r) => r.status === 201), `none of the concurrent requests with one key succeeded: ${rs.map(show).join(" | ")}`);
      expect(rs.every((r) => r.status === 201 || r.status === 409 || r.status === 425 || r.status === 429),
        `concurrent duplicates answered ${rs.map((r) => r.status).join(", ")} (expected the original 201, or a 409/425/429 "still in progress")`);
    },
  },
  {
    key: "key_reuse_different_body",
    name: "Reusing an Idempotency-Key with a different body is rejected (4xx) instead of replaying or booking",
    weight: 1,
    async run() {
      const s = slotMaker(LONDON);
      const key = randomUUID();
      const who = member();
      const first = await mustCreate(s, s.t("15:00"), s.t("16:00"), { key, who });
      const other = await book(s, s.t("17:00"), s.t("18:00"), { key, who });
      expect(other.status >= 400 && other.status < 500, `a different body under a used key answered ${show(other)}, expected a 4xx (e.g. 409 or 422)`);
      const live = await confirmedIn(s, s.ms("17:00"), s.ms("18:00"));
      if (live) expect(live.length === 0, `a different body under a used key created a booking at 17:00`);
      void first;
    },
  },
  {
    key: "overlap_409",
    name: "A booking overlapping a confirmed one on the same space answers 409",
    weight: 2,
    async run() {
      const s = slotMaker(LONDON);
      await mustCreate(s, s.t("10:00"), s.t("12:00"));
      const r = await book(s, s.t("11:00"), s.t("13:00"));
      expect(r.status === 409, `an overlapping booking answered ${show(r)}, expected 409`);
    },
  },
  {
    key: "adjacent_allowed",
    name: "Back-to-back bookings (one ends when the next starts) are both accepted",
    weight: 1,
    async run() {
      const s = slotMaker(LONDON);
      await mustCreate(s, s.t("10:00"), s.t("11:00"));
      const r = await book(s, s.t("11:00"), s.t("12:00"));
      expect(r.status === 201, `a booking starting exactly when another ends answered ${show(r)}, expected 201`);
    },
  },
  {
    key: "overlap_across_offsets",
    name: "Overlap is detected between times written with different UTC offsets (instants, not strings, are compared)",
    weight: 1,
    async run() {
      const s = slotMaker(LONDON);
      await mustCreate(s, fmtOffset(s.ms("10:00"), 0).replace("+00:00", "Z"), fmtOffset(s.ms("12:00"), 0).replace("+00:00", "Z"));
      const r = await book(s, fmtOffset(s.ms("11:00"), 180), fmtOffset(s.ms("13:00"), 180));
      expect(r.status === 409, `a booking overlapping by an hour but written with a +03:00 offset answered ${show(r)}, expected 409`);
    },
  },
  {
    key: "concurrent_overlap_one_wins",
    name: "Six overlapping bookings fired concurrently (different keys): exactly one is created, the others get 409",
    weight: 4,
    async run() {
      const s = slotMaker(LONDON_ROOM);
      const rs = await Promise.all(
        [0, 1, 2, 3, 4, 5].map((i) => book(s, s.t(i % 2 ? "10:00" : "10:30"), s.t(i % 2 ? "11:30" : "11:45"), { who: member() })),
      );
      const created = rs.filter((r) => r.status === 201);
      const live = await confirmedIn(s, s.ms("10:00"), s.ms("11:45"));
      if (live) expect(live.length === 1, `the store holds ${live.length} confirmed overlapping bookings after 6 concurrent requests (responses: ${rs.map((r) => r.status).join(", ")})`);
      expect(created.length === 1, `${created.length} of 6 concurrent overlapping requests answered 201 (responses: ${rs.map((r) => r.status).join(", ")})`);
      expect(rs.filter((r) => r.status === 409).length === 5, `the losers answered ${rs.filter((r) => r.status !== 201).map((r) => r.status).join(", ")}, expected 409 each`);
    },
  },
  {
    key: "validation_rejected",
    name: "Invalid bookings are rejected with 400/422 and create nothing (missing field, bad time, no offset, off the 15-minute grid, too short, too long, end before start, outside opening hours, in the past)",
    weight: 3,
    async run() {
      const s = slotMaker(NYC); // 08:00-20:00 New York
      const past = dayAhead(NYC.tz, -3);
      const cases = [
        ["missing end", { space_id: s.space, start: s.t("10:00") }],
        ["start not a time", { space_id: s.space, start: "tomorrow at ten", end: s.t("11:00") }],
        ["no UTC offset", { space_id: s.space, start: `${s.date}T10:00:00`, end: `${s.date}T11:00:00` }],
        ["off the 15-minute grid", { space_id: s.space, start: s.t("10:10"), end: s.t("11:10") }],
        ["shorter than 30 minutes", { space_id: s.space, start: s.t("10:00"), end: s.t("10:15") }],
        ["longer than 10 hours", { space_id: s.space, start: s.t("08:30"), end: s.t("19:00") }],
        ["end before start", { space_id: s.space, start: s.t("12:00"), end: s.t("11:00") }],
        ["outside opening hours", { space_id: s.space, start: s.t("19:00"), end: s.t("21:00") }],
        ["in the past", { space_id: s.space, start: at(NYC.tz, past, "10:00"), end: at(NYC.tz, past, "11:00") }],
      ];
      const bad = [];
      for (const [label, body] of cases) {
        const r = await req("POST", "/v1/bookings", { body, headers: { "X-Member-Id": "mem_grader", "Idempotency-Key": randomUUID() } });
        if (r.status !== 400 && r.status !== 422) bad.push(`${label}: ${r.status}`);
      }
      const live = await confirmedIn(s, s.ms("00:00") - 86_400_000 * 5, s.ms("23:45"));
      expect(bad.length === 0, `not rejected with 400/422: ${bad.join("; ")}`);
      if (live) expect(live.length === 0, `invalid requests created ${live.length} booking(s)`);
    },
  },
  {
    key: "validation_status_consistent",
    name: "All validation failures use the same status code (400 or 422, applied consistently)",
    weight: 1,
    async run() {
      const s = slotMaker(NYC);
      const bodies = [
        { space_id: s.space, start: s.t("10:00") },
        { space_id: s.space, start: s.t("10:10"), end: s.t("11:10") },
        { space_id: s.space, start: s.t("12:00"), end: s.t("11:00") },
        { space_id: s.space, start: s.t("19:00"), end: s.t("21:00") },
      ];
      const codes = [];
      for (const body of bodies) {
        const r = await req("POST", "/v1/bookings", { body, headers: { "X-Member-Id": "mem_grader", "Idempotency-Key": randomUUID() } });
        codes.push(r.status);
      }
      expect(codes.every((c) => c === codes[0]) && (codes[0] === 400 || codes[0] === 422),
        `validation failures answered ${codes.join(", ")} (missing field, off-grid, end before start, outside hours)`);
    },
  },
  {
    key: "validation_field_detail",
    name: "A validation error names the failing field",
    weight: 1,
    async run() {
      const s = slotMaker(NYC);
      const r = await req("POST", "/v1/bookings", {
        body: { space_id: s.space, start: s.t("10:00") },
        headers: { "X-Member-Id": "mem_grader", "Idempotency-Key": randomUUID() },
      });
      expect(isJson(r), `a body without "end" answered ${show(r)}, not a JSON error`);
      expect(/\bend\b/.test(JSON.stringify(r.json)), `the error for a missing "end" does not mention the field: ${show(r)}`);
    },
  },
  {
    key: "malformed_json_400",
    name: "A malformed JSON body answers 400 in the API's JSON error format, not an HTML page",
    weight: 1,
    async run() {
      const r = await req("POST", "/v1/bookings", {
        raw: '{"space_id": "spc_01", "start": ',
        headers: { "X-Member-Id": "mem_grader", "Idempotency-Key": randomUUID() },
      });
      expect(r.status === 400, `malformed JSON answered ${show(r)}, expected 400`);
      expect(isJson(r), `malformed JSON answered a non-JSON body (content-type "${r.ct}"): ${show(r)}`);
    },
  },
  {
    key: "unknown_space",
    name: "Booking an unknown space is refused with 404 or 422 (not 201 or 500)",
    weight: 1,
    async run() {
      const s = slotMaker(LONDON);
      const r = await book({ ...s, space: "spc_nope" }, s.t("10:00"), s.t("11:00"));
      expect([400, 404, 422].includes(r.status) && isJson(r), `booking an unknown space answered ${show(r)}, expected a 404 or 422 JSON error`);
    },
  },
  {
    key: "error_format_consistent",
    name: "Validation, not-found and conflict errors share one JSON error format",
    weight: 2,
    async run() {
      const s = slotMaker(LONDON);
      await mustCreate(s, s.t("10:00"), s.t("11:00"));
      const conflict = await book(s, s.t("10:30"), s.t("11:30"));
      const invalid = await req("POST", "/v1/bookings", { body: { space_id: s.space }, headers: { "X-Member-Id": "mem_grader", "Idempotency-Key": randomUUID() } });
      const missing = await req("GET", "/v1/bookings/bk_nope", { headers: { "X-Member-Id": "mem_grader" } });
      const all = [["409", conflict], ["validation", invalid], ["404", missing]];
      for (const [label, r] of all) {
        expect(r.status >= 400, `the ${label} case answered ${show(r)}`);
        expect(isJson(r) && typeof r.json === "object" && r.json !== null && !Array.isArray(r.json), `the ${label} error is not a JSON object (content-type "${r.ct}"): ${show(r)}`);
      }
      const types = new Set(all.map(([, r]) => r.ct.split(";")[0].trim().toLowerCase()));
      expect(types.size === 1, `error content types differ: ${[...types].join(", ")}`);
      const keys = all.map(([, r]) => new Set(Object.keys(r.json)));
      const common = [...keys[0]].filter((k) => keys.every((ks) => ks.has(k)));
      expect(common.length > 0, `the errors share no top-level field: ${all.map(([l, r]) => `${l} {${Object.keys(r.json).join(", ")}}`).join("; ")}`);
    },
  },
  {
    key: "cancel_twice_harmless",
    name: "Cancelling a booking frees its slot, and cancelling it again is harmless",
    weight: 2,
    async run() {
      const s = slotMaker(LONDON);
      const id = idOf(await mustCreate(s, s.t("10:00"), s.t("11:00")));
      const c1 = await cancel(id);
      expect(c1.status >= 200 && c1.status < 300, `cancelling answered ${show(c1)}, expected 2xx`);
      const c2 = await cancel(id);
      expect(c2.status < 500 && (c2.status < 400 || [404, 409, 410].includes(c2.status)), `cancelling again answered ${show(c2)}`);
      const again = await book(s, s.t("10:00"), s.t("11:00"));
      expect(again.status === 201, `booking the cancelled slot again answered ${show(again)}, expected 201`);
    },
  },
  {
    key: "reschedule_into_taken_fails",
    name: "Rescheduling into a taken slot fails with 409 and leaves the booking unchanged",
    weight: 2,
    async run() {
      const s = slotMaker(LONDON);
      await mustCreate(s, s.t("10:00"), s.t("11:00"));
      const id = idOf(await mustCreate(s, s.t("14:00"), s.t("15:00")));
      const r = await reschedule(id, s.t("10:30"), s.t("11:30"));
      expect(r.status === 409, `PATCH into a taken slot answered ${show(r)}, expected 409`);
      const g = await req("GET", `/v1/bookings/${id}`, { headers: { "X-Member-Id": "mem_grader" } });
      const b = bookingOf(g);
      expect(b && Date.parse(b.start) === s.ms("14:00") && Date.parse(b.end) === s.ms("15:00"),
        `after the failed reschedule the booking reads ${show(g)}, expected it unchanged at 14:00-15:00 local`);
    },
  },
  {
    key: "reschedule_ok",
    name: "Rescheduling into a free slot succeeds and the booking reads back with the new times",
    weight: 1,
    async run() {
      const s = slotMaker(LONDON);
      const id = idOf(await mustCreate(s, s.t("10:00"), s.t("11:00")));
      const r = await reschedule(id, s.t("16:00"), s.t("17:30"));
      expect(r.status >= 200 && r.status < 300, `PATCH into a free slot answered ${show(r)}, expected 2xx`);
      const g = await req("GET", `/v1/bookings/${id}`, { headers: { "X-Member-Id": "mem_grader" } });
      const b = bookingOf(g);
      expect(b && Date.parse(b.start) === s.ms("16:00") && Date.parse(b.end) === s.ms("17:30"), `after rescheduling the booking reads ${show(g)}`);
      const old = await book(s, s.t("10:00"), s.t("11:00"));
      expect(old.status === 201, `the old slot is still taken after rescheduling: ${show(old)}`);
    },
  },
  {
    key: "legacy_endpoints",
    name: "The legacy endpoints keep working (GET /getSpaces)",
    weight: 1,
    async run() {
      const r = await req("GET", "/getSpaces");
      expect(r.status === 200 && r.json?.ok === true && Array.isArray(r.json.spaces) && r.json.spaces.length >= 5, `GET /getSpaces answered ${show(r)}`);
    },
  },
];
