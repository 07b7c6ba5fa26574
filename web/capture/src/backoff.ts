/**
 * When to retry: exponential backoff with jitter, and the server's `Retry-After`.
 *
 * "Equal jitter": the n-th retry waits between half and all of `min(maxMs, baseMs * 2^(n-1))`,
 * so retries of many candidates after one outage spread out, and each wait is still at least
 * half the nominal one (the backoff really grows).
 */

/** The backoff schedule's parameters. */
export interface BackoffOptions {
  /** The nominal wait before the first retry, in ms (500). */
  baseMs?: number;
  /** The longest nominal wait, in ms (30,000). */
  maxMs?: number;
}

/** The wait before retry number `attempt` (1 for the first retry), for `random()` in [0, 1). */
export function backoffDelay(attempt: number, random: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const nominal = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return nominal / 2 + (nominal / 2) * random;
}

/**
 * The wait a `Retry-After` header asks for, in ms: delay-seconds or an HTTP date (measured
 * against `nowMs`); `null` when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | null {
  if (value == null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

/**
 * The wait before a retry the server asked to delay: never less than it asked, plus up to 10%
 * (at most a second) of jitter so that the candidates it throttled do not return in one instant.
 */
export function retryAfterDelay(retryAfterMs: number, random: number): number {
  return retryAfterMs + Math.min(1000, retryAfterMs * 0.1) * random;
}
