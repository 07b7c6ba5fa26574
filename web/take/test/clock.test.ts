import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ClockOffset,
  dueWarning,
  extensionMinutes,
  formatRemaining,
  offsetSample,
  remainingMs,
  resetWarnings,
  spokenRemaining,
} from "../src/clock";

test("a Date header gives the server-minus-client offset at the request's midpoint", () => {
  // The device is 5 minutes slow: the server says 12:05:00 while the device reads 12:00:00.
  const device = Date.parse("2026-12-07T12:00:00Z");
  const sample = offsetSample("Mon, 07 Dec 2026 12:05:00 GMT", device - 100, device + 100);
  assert.equal(sample, 5 * 60_000 + 500);
  assert.equal(offsetSample(null, 0, 0), null);
  assert.equal(offsetSample("not a date", 0, 0), null);
});

test("the offset is the median of recent samples, and zero within the header's one-second resolution", () => {
  const c = new ClockOffset(5);
  assert.equal(c.ms, 0);
  c.add(400);
  c.add(-300);
  assert.equal(c.ms, 0, "sub-second offsets are noise of the header");
  const slow = new ClockOffset(5);
  for (const s of [300_000, 300_400, 299_800, 9_000_000, 300_100]) slow.add(s);
  assert.equal(slow.ms, 300_100, "one outlier does not move the median");
  slow.add(null);
  assert.equal(slow.ms, 300_100);
});

test("the countdown counts to the server's deadline whatever the device's clock says", () => {
  const deadline = "2026-12-07T13:00:00Z";
  const serverNow = Date.parse("2026-12-07T12:30:00Z");
  // A device 5 minutes slow, corrected by the offset, sees the same 30 minutes left.
  assert.equal(remainingMs(deadline, serverNow - 300_000, 300_000), 30 * 60_000);
  assert.equal(remainingMs(deadline, serverNow + 3_600_000, 0), 0, "never negative");
  assert.equal(remainingMs("garbage", serverNow, 0), 0);
});

test("the countdown is shown in whole seconds rounded up, with hours when there are some", () => {
  assert.equal(formatRemaining(0), "0:00");
  assert.equal(formatRemaining(1), "0:01");
  assert.equal(formatRemaining(59_001), "1:00");
  assert.equal(formatRemaining(45 * 60_000), "45:00");
  assert.equal(formatRemaining(3_909_000), "1:05:09");
  assert.equal(spokenRemaining(3_909_000), "1 hour 6 minutes left");
  assert.equal(spokenRemaining(30_000), "Less than 1 minute left");
  assert.equal(spokenRemaining(0), "Time is up");
});

test("the 10- and 2-minute warnings are each announced once, the nearest first on a late open", () => {
  const announced = new Set<number>();
  assert.equal(dueWarning(11 * 60_000, announced), null);
  assert.equal(dueWarning(10 * 60_000, announced), 10);
  assert.equal(dueWarning(9 * 60_000, announced), null);
  assert.equal(dueWarning(2 * 60_000 - 1, announced), 2);
  assert.equal(dueWarning(60_000, announced), null);
  assert.equal(dueWarning(0, new Set()), null, "nothing to warn about at the end");
  const late = new Set<number>();
  assert.equal(dueWarning(90_000, late), 2, "opened with 90 s left: only the 2-minute warning");
  assert.deepEqual([...late].sort(), [10, 2].sort());
});

test("extra time is detected when the deadline moves later, and re-arms the warnings", () => {
  assert.equal(extensionMinutes("2026-12-07T13:00:00Z", "2026-12-07T13:15:00Z"), 15);
  assert.equal(extensionMinutes("2026-12-07T13:00:00Z", "2026-12-07T13:00:00Z"), 0);
  assert.equal(extensionMinutes("2026-12-07T13:00:00Z", "2026-12-07T12:50:00Z"), 0);
  assert.equal(extensionMinutes(null, "2026-12-07T13:00:00Z"), 0);
  const announced = new Set([10, 2]);
  resetWarnings(5 * 60_000, announced);
  assert.deepEqual([...announced], [10], "5 minutes left again: the 2-minute warning will come again");
});
