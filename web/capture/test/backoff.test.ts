import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, parseRetryAfter, retryAfterDelay } from "../src/backoff";

test("the backoff doubles from the base up to the cap, jittered between half and all of it", () => {
  const nominal = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000];
  nominal.forEach((n, i) => {
    assert.equal(backoffDelay(i + 1, 0), n / 2);
    assert.equal(backoffDelay(i + 1, 0.999999), n / 2 + (n / 2) * 0.999999);
  });
  assert.equal(backoffDelay(3, 0.5, { baseMs: 100, maxMs: 250 }), 187.5);
});

test("Retry-After is read as seconds or as an HTTP date, and never waited less", () => {
  assert.equal(parseRetryAfter("2", 0), 2000);
  assert.equal(parseRetryAfter(" 0 ", 0), 0);
  const now = Date.parse("2026-12-07T12:00:00Z");
  assert.equal(parseRetryAfter("Mon, 07 Dec 2026 12:00:30 GMT", now), 30_000);
  assert.equal(parseRetryAfter("Mon, 07 Dec 2026 11:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter("soon", now), null);
  assert.equal(parseRetryAfter(null, now), null);
  assert.equal(retryAfterDelay(2000, 0), 2000);
  assert.equal(retryAfterDelay(2000, 1), 2200);
  assert.equal(retryAfterDelay(60_000, 1), 61_000);
});
