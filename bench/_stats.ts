/**
 * Small statistics for the benchmark report.
 *
 * @module
 */

/**
 * The nearest-rank percentile of sorted samples.
 *
 * @param sorted Samples in ascending order.
 * @param q The quantile, from 0 to 1 (0.99 for p99).
 * @returns The sample at that rank, or NaN when there are none.
 */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

/** Median and range of repeated measurements. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  /** Number of measurements. */
  n: number;
}

/**
 * Summarises repeated measurements, ignoring NaN and null.
 *
 * @param values The measurements.
 * @returns Median, minimum, maximum and count.
 */
export function summarize(values: readonly number[]): Summary {
  // NaN stands for "not measured"; a results file read back has null in its place.
  const v = values.filter((x) => typeof x === "number" && !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = v.length >> 1;
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}
