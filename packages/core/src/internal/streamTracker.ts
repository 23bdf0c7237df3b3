/**
 * The state of one sequence stream (one producer epoch, topic and partition):
 * the highest sequence seen, the gaps below it with the time each was first
 * noticed, and the ranges already declared lost. Gaps and lost ranges are
 * kept as sorted, disjoint ranges, so the state stays small however many
 * messages pass.
 */

export interface Range {
  from: number
  to: number
}

export interface Gap extends Range {
  readonly noticedAt: number
}

export interface LostRange extends Range {
  readonly detectedAt: number
}

export type Observation = "new" | "repeat" | "late" | "beforeStart"

/** Index of the range containing `n`, or -1. Ranges are sorted and disjoint. */
const find = (ranges: ReadonlyArray<Range>, n: number): number => {
  let lo = 0
  let hi = ranges.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const r = ranges[mid] as Range
    if (n < r.from) hi = mid - 1
    else if (n > r.to) lo = mid + 1
    else return mid
  }
  return -1
}

/** Removes `n` from the range at `index`, splitting it when `n` is inside. */
const punch = <R extends Range>(ranges: Array<R>, index: number, n: number): void => {
  const r = ranges[index] as R
  if (r.from === r.to) ranges.splice(index, 1)
  else if (n === r.from) r.from++
  else if (n === r.to) r.to--
  else {
    ranges.splice(index + 1, 0, { ...r, from: n + 1 })
    r.to = n - 1
  }
}

export class StreamTracker {
  /** Lowest sequence this tracker accounts for. */
  start: number
  /** Highest sequence seen. */
  max: number
  readonly gaps: Array<Gap> = []
  readonly lost: Array<LostRange> = []
  /** Until when sequences below `start` still lower it (joining mid-stream, reordered first messages). */
  readonly openUntil: number
  lastSeen: number

  constructor(first: number, fromBeginning: boolean, now: number, grace: number) {
    this.start = fromBeginning ? 1 : first
    this.max = this.start - 1
    this.openUntil = fromBeginning ? -Infinity : now + grace
    this.lastSeen = now
  }

  observe(seq: number, now: number): Observation {
    this.lastSeen = now
    if (seq > this.max) {
      if (seq > this.max + 1) this.gaps.push({ from: this.max + 1, to: seq - 1, noticedAt: now })
      this.max = seq
      return "new"
    }
    if (seq < this.start) {
      if (now > this.openUntil) return "beforeStart"
      if (seq + 1 <= this.start - 1) this.gaps.unshift({ from: seq + 1, to: this.start - 1, noticedAt: now })
      this.start = seq
      return "new"
    }
    const gap = find(this.gaps, seq)
    if (gap >= 0) {
      punch(this.gaps, gap, seq)
      return "new"
    }
    const lost = find(this.lost, seq)
    if (lost >= 0) {
      punch(this.lost, lost, seq)
      return "late"
    }
    return "repeat"
  }

  /** Declares lost every gap noticed `grace` or longer before `now`; returns them. */
  expire(now: number, grace: number, keepLost: number): Array<LostRange> {
    const expired: Array<LostRange> = []
    for (let i = 0; i < this.gaps.length; ) {
      const gap = this.gaps[i] as Gap
      if (gap.noticedAt + grace <= now) {
        this.gaps.splice(i, 1)
        const range = { from: gap.from, to: gap.to, detectedAt: now }
        expired.push(range)
        // Kept sorted so a late arrival can be found and un-lost.
        const at = this.lost.findIndex((r) => r.from > range.from)
        this.lost.splice(at < 0 ? this.lost.length : at, 0, range)
      } else i++
    }
    if (this.lost.length > keepLost) this.lost.splice(0, this.lost.length - keepLost)
    return expired
  }
}
