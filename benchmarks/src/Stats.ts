/**
 * The statistics of the harness: percentiles, median, spread, throughput, and
 * a growable buffer of samples that allocates nothing per sample.
 *
 * Percentiles interpolate linearly between the two nearest ranks of the sorted
 * samples: for `n` samples, percentile `p` lies at rank `p / 100 * (n - 1)`.
 */

/** The `p`-th percentile (0..100) of samples already sorted ascending; `NaN` when there are none. */
export const percentileOfSorted = (sorted: ArrayLike<number>, p: number): number => {
  const n = sorted.length
  if (n === 0) return Number.NaN
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile out of range: ${p}`)
  const rank = (p / 100) * (n - 1)
  const lo = Math.floor(rank)
  const hi = Math.ceil(rank)
  const a = sorted[lo] as number
  const b = sorted[hi] as number
  return a + (b - a) * (rank - lo)
}

/** A sorted copy of the samples (numeric order; the input is left as it was). */
export const sorted = (samples: ArrayLike<number>): Float64Array => Float64Array.from(samples).sort()

/** The `p`-th percentile (0..100) of unsorted samples. */
export const percentile = (samples: ArrayLike<number>, p: number): number => percentileOfSorted(sorted(samples), p)

/** The median of unsorted samples: the mean of the two middle values when their count is even. */
export const median = (samples: ArrayLike<number>): number => percentile(samples, 50)

/** Where most samples lie and how far they spread. */
export interface Summary {
  readonly count: number
  readonly min: number
  readonly q1: number
  readonly median: number
  readonly q3: number
  readonly max: number
}

/** Min, quartiles, median and max of unsorted samples. */
export const summarize = (samples: ArrayLike<number>): Summary => {
  const s = sorted(samples)
  return {
    count: s.length,
    min: s.length === 0 ? Number.NaN : (s[0] as number),
    q1: percentileOfSorted(s, 25),
    median: percentileOfSorted(s, 50),
    q3: percentileOfSorted(s, 75),
    max: s.length === 0 ? Number.NaN : (s[s.length - 1] as number)
  }
}

/** Half the min–max range relative to the median, as a fraction (0.05 = ±5 %). */
export const relativeSpread = (summary: Summary): number =>
  summary.median === 0 || !Number.isFinite(summary.median)
    ? Number.NaN
    : (summary.max - summary.min) / 2 / summary.median

/** Latency percentiles, in the unit of the samples. */
export interface Latency {
  readonly count: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
}

/** p50/p95/p99/max of the samples. Sorts `samples` in place: pass a buffer you no longer need in order. */
export const latencyInPlace = (samples: Float64Array): Latency => {
  samples.sort()
  return {
    count: samples.length,
    p50: percentileOfSorted(samples, 50),
    p95: percentileOfSorted(samples, 95),
    p99: percentileOfSorted(samples, 99),
    max: samples.length === 0 ? Number.NaN : (samples[samples.length - 1] as number)
  }
}

/** Operations per second for `count` operations over `elapsedMs` milliseconds. */
export const throughput = (count: number, elapsedMs: number): number =>
  elapsedMs > 0 ? (count * 1000) / elapsedMs : Number.NaN

/**
 * Samples appended one at a time into a preallocated `Float64Array` that
 * doubles when full, so recording a sample allocates nothing in the common case.
 */
export class SampleBuffer {
  private data: Float64Array
  private size = 0

  constructor(capacity = 1024) {
    this.data = new Float64Array(Math.max(1, capacity))
  }

  get length(): number {
    return this.size
  }

  push(value: number): void {
    if (this.size === this.data.length) {
      const next = new Float64Array(this.data.length * 2)
      next.set(this.data)
      this.data = next
    }
    this.data[this.size++] = value
  }

  /** The samples recorded so far, as a view over the buffer (valid until the next `push`). */
  view(): Float64Array {
    return this.data.subarray(0, this.size)
  }
}
