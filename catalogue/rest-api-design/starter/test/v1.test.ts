// The first cases of the reviewers' replay script. The /v1 ones fail until /v1 exists; add your
// own tests beside them (`npm test` runs every test/*.test.ts with node's test runner).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import request from "supertest";
import { app } from "../src/app.js";

/** RFC 3339 for a wall-clock time in a site's time zone, `daysAhead` days from today. */
function siteTime(timeZone: string, daysAhead: number, hhmm: string): string {
  const offsetMin = (ms: number) => {
    const p = new Intl.DateTimeFormat("en-US", {
      timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(new Date(ms));
    const n = (t: string) => Number(p.find((x) => x.type === t)!.value);
    return Math.round((Date.UTC(n("year"), n("month") - 1, n("day"), n("hour"), n("minute"), n("second")) - ms) / 60_000);
  };
  const now = Date.now() + daysAhead * 86_400_000;
  const date = new Date(now + offsetMin(now) * 60_000).toISOString().slice(0, 10);
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm] = hhmm.split(":").map(Number);
  const asUtc = Date.UTC(y, m - 1, d, hh, mm);
  const off = offsetMin(asUtc - offsetMin(asUtc) * 60_000);
  const sign = off < 0 ? "-" : "+";
  const abs = Math.abs(off);
  return `${date}T${hhmm}:00${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

const london = (days: number, hhmm: string) => siteTime("Europe/London", days, hhmm);

function createBooking(body: object, key: string = randomUUID()) {
  return request(app)
    .post("/v1/bookings")
    .set("X-Member-Id", "mem_test")
    .set("Idempotency-Key", key)
    .send(body);
}

describe("legacy endpoints", () => {
  it("GET /getSpaces still lists the spaces", async () => {
    const res = await request(app).get("/getSpaces");
    assert.equal(res.status, 200);
    assert.equal(res.body.ok, true);
    assert.equal(res.body.spaces.length, 5);
  });
});

describe("POST /v1/bookings", () => {
  it("creates a booking: 201 with its id, readable at GET /v1/bookings/{id}", async () => {
    const res = await createBooking({ space_id: "spc_02", start: london(30, "10:00"), end: london(30, "11:00") });
    assert.equal(res.status, 201);
    assert.equal(typeof res.body.id, "string");
    const read = await request(app).get(`/v1/bookings/${res.body.id}`).set("X-Member-Id", "mem_test");
    assert.equal(read.status, 200);
    assert.equal(read.body.id, res.body.id);
  });

  it("replays the original response for a repeated Idempotency-Key", async () => {
    const key = randomUUID();
    const body = { space_id: "spc_02", start: london(31, "10:00"), end: london(31, "11:00") };
    const first = await createBooking(body, key);
    const second = await createBooking(body, key);
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assert.equal(second.body.id, first.body.id);
  });

  it("answers 409 for an overlapping booking of the same space", async () => {
    const first = await createBooking({ space_id: "spc_02", start: london(32, "10:00"), end: london(32, "12:00") });
    assert.equal(first.status, 201);
    const clash = await createBooking({ space_id: "spc_02", start: london(32, "11:00"), end: london(32, "13:00") });
    assert.equal(clash.status, 409);
  });

  it("answers 400 with a JSON error for a malformed JSON body", async () => {
    const res = await request(app)
      .post("/v1/bookings")
      .set("X-Member-Id", "mem_test")
      .set("Idempotency-Key", randomUUID())
      .set("Content-Type", "application/json")
      .send('{"space_id": ');
    assert.equal(res.status, 400);
    assert.match(res.headers["content-type"] ?? "", /json/);
  });
});
