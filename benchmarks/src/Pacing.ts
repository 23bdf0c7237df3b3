/**
 * Publishing at a fixed offered rate, and what memory each message in flight
 * holds. Pure arithmetic, kept apart from the runner so it can be tested alone.
 *
 * A paced round gives every message a due time on a fixed schedule from the
 * round's start: message `i` is due at `start + i / rate` seconds. A batch is
 * due with its first message. Latency counts from the due time, not from when
 * the publisher got round to it: when the pipeline falls behind, the wait it
 * caused is part of what a caller would see (no coordinated omission).
 */

/** When message number `index` (0-based, counted from the round's start) is due, in the clock's milliseconds. */
export const dueAt = (startMs: number, index: number, ratePerSecond: number): number => {
  if (!(ratePerSecond > 0)) throw new RangeError(`rate must be positive: ${ratePerSecond}`)
  return startMs + (index * 1000) / ratePerSecond
}

/** How long to wait, at `nowMs`, before publishing what is due at `dueMs`: never negative. */
export const waitFor = (dueMs: number, nowMs: number): number => Math.max(0, dueMs - nowMs)

/** How many messages a round of `seconds` at `ratePerSecond` publishes: whole batches, at least one. */
export const messagesFor = (seconds: number, ratePerSecond: number, batchSize: number): number => {
  const batch = Math.max(1, batchSize)
  return Math.max(1, Math.round((seconds * ratePerSecond) / batch)) * batch
}

/**
 * Messages in flight a fiber count must sustain at `ratePerSecond` when each
 * publish takes about `latencyMs` to confirm (Little's law), with headroom.
 */
export const publishersFor = (ratePerSecond: number, latencyMs: number, batchSize: number): number =>
  Math.max(1, Math.ceil(((ratePerSecond * latencyMs) / 1000 / Math.max(1, batchSize)) * 2))

/**
 * Heap per message in flight, in bytes: the peak heap growth of a round over
 * the most messages it had published and not yet settled. `NaN` without any.
 */
export const heapPerInFlight = (heapDeltaBytes: number, peakInFlight: number): number =>
  peakInFlight > 0 && Number.isFinite(heapDeltaBytes) ? heapDeltaBytes / peakInFlight : Number.NaN

/**
 * The share of the offered rate a paced round achieved (messages settled per
 * second over the offered rate); below 1 the target could not keep up.
 */
export const keptUp = (achievedPerSecond: number, offeredPerSecond: number): number =>
  offeredPerSecond > 0 ? achievedPerSecond / offeredPerSecond : Number.NaN
