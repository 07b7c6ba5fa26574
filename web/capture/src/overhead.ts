/**
 * Time spent in the capture path per captured event, kept in a ring of the latest samples so
 * that a long session measures its recent behaviour in bounded memory.
 */

/** A summary of the capture path's cost, in milliseconds. */
export interface OverheadSummary {
  /** Samples in the summary (the latest `capacity` at most). */
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Percentile `p` (0..100) of sorted `values`, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? 0;
}

/** Samples of the capture path's duration. */
export class OverheadMeter {
  private readonly samples: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(capacity = 10_000) {
    this.samples = new Float64Array(capacity);
  }

  /** Records one sample, in ms. */
  record(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samples.length;
    this.filled = Math.min(this.filled + 1, this.samples.length);
  }

  /** p50, p99 and max over the kept samples. */
  summary(): OverheadSummary {
    const sorted = Array.from(this.samples.subarray(0, this.filled)).sort((a, b) => a - b);
    return {
      count: sorted.length,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted[sorted.length - 1] ?? 0,
    };
  }
}
