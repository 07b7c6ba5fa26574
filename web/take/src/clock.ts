/**
 * Time on the server's clock. The deadline is the server's; a laptop whose clock is a few
 * minutes off must still count down to the same instant, so every answer's `Date` header gives a
 * sample of (server clock − device clock) and the countdown uses their median.
 */

/** ms of one `Date` header tick: the header has whole seconds, so the true time is up to 1 s later. */
const DATE_RESOLUTION_MS = 1000;

/**
 * One offset sample (server − client, ms) from a `Date` header seen by a request sent at
 * `sentAt` and answered at `receivedAt` (client wall-clock ms). `null` when the header is absent
 * or unreadable.
 */
export function offsetSample(dateHeader: string | null, sentAt: number, receivedAt: number): number | null {
  if (!dateHeader) return null;
  const server = Date.parse(dateHeader);
  if (Number.isNaN(server)) return null;
  // The server stamped the answer somewhere between the two; the header truncated its clock.
  return server + DATE_RESOLUTION_MS / 2 - (sentAt + receivedAt) / 2;
}

/** The server-minus-client offset, from the latest samples (median: one slow answer does not move it). */
export class ClockOffset {
  private readonly samples: number[] = [];

  constructor(private readonly keep = 7) {}

  add(sample: number | null): void {
    if (sample === null || !Number.isFinite(sample)) return;
    this.samples.push(sample);
    if (this.samples.length > this.keep) this.samples.shift();
  }

  /** ms to add to the device clock to read the server's (0 before any sample). */
  get ms(): number {
    if (this.samples.length === 0) return 0;
    const sorted = [...this.samples].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    // Within the header's own resolution there is nothing to correct.
    return Math.abs(median) < DATE_RESOLUTION_MS ? 0 : Math.round(median);
  }
}

/** ms left until `deadline` (ISO 8601) at device time `clientNow` with the server offset; never negative. */
export function remainingMs(deadline: string | number, clientNow: number, offsetMs: number): number {
  const end = typeof deadline === "number" ? deadline : Date.parse(deadline);
  if (Number.isNaN(end)) return 0;
  return Math.max(0, end - (clientNow + offsetMs));
}

/** `1:05:09`, `45:00`, `0:07` — the countdown as shown (whole seconds, rounded up). */
export function formatRemaining(ms: number): string {
  const total = Math.ceil(Math.max(0, ms) / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** The countdown in words for assistive technology ("1 hour 5 minutes left"). */
export function spokenRemaining(ms: number): string {
  const minutes = Math.ceil(Math.max(0, ms) / 60_000);
  if (minutes <= 1) return ms <= 0 ? "Time is up" : "Less than 1 minute left";
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  const parts: string[] = [];
  if (h) parts.push(`${h} hour${h === 1 ? "" : "s"}`);
  if (m) parts.push(`${m} minute${m === 1 ? "" : "s"}`);
  return `${parts.join(" ")} left`;
}

/** The warnings, in minutes before the deadline, each announced once. */
export const WARNING_MINUTES = [10, 2] as const;

/**
 * The warning to announce now, if any: the smallest threshold at or above the time left that
 * was not announced yet (a page opened with 5 minutes left announces the 10-minute warning once,
 * not both). Thresholds passed are added to `announced`.
 */
export function dueWarning(ms: number, announced: Set<number>): number | null {
  if (ms <= 0) return null;
  let due: number | null = null;
  for (const minutes of WARNING_MINUTES) {
    if (ms <= minutes * 60_000 && !announced.has(minutes)) {
      announced.add(minutes);
      due = minutes;
    }
  }
  // Thresholds are descending, so `due` is the smallest one just crossed.
  return due;
}

/**
 * Forgets the warnings the time left is now above again (extra time was granted), so they are
 * announced again when the new deadline comes near.
 */
export function resetWarnings(ms: number, announced: Set<number>): void {
  for (const minutes of [...announced]) if (ms > minutes * 60_000) announced.delete(minutes);
}

/** Minutes by which the deadline moved later (rounded), or 0 when it did not move later. */
export function extensionMinutes(previous: string | null, next: string | null): number {
  if (!previous || !next) return 0;
  const delta = Date.parse(next) - Date.parse(previous);
  return Number.isFinite(delta) && delta > 0 ? Math.round(delta / 60_000) : 0;
}
