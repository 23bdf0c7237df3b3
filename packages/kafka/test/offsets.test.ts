/**
 * The offset tracker commits only what is settled: whatever order
 * deliveries settle in, the commit point never passes an unsettled offset.
 */
import { describe, expect, it } from "vitest"
import { PartitionTracker } from "../src/internal/offsets.ts"

/** A small deterministic generator (mulberry32), so a failing case can be replayed from its seed. */
const random = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe("PartitionTracker", () => {
  it("commits the first unsettled offset, or the one after the last handed out when all are settled", () => {
    const tracker = new PartitionTracker()
    expect(tracker.commitPoint()).toBeUndefined()
    for (const offset of [10n, 11n, 12n, 15n]) tracker.add(offset)
    expect(tracker.commitPoint()).toBe(10n)
    expect(tracker.settle(11n)).toBe(true)
    expect(tracker.commitPoint()).toBe(10n)
    expect(tracker.settle(10n)).toBe(true)
    expect(tracker.commitPoint()).toBe(12n)
    expect(tracker.settle(15n)).toBe(true)
    expect(tracker.settle(12n)).toBe(true)
    // Offsets need not be contiguous: 13 and 14 were never handed out (compaction, markers).
    expect(tracker.commitPoint()).toBe(16n)
    expect(tracker.unsettled()).toBe(0)
  })

  it("refuses unknown and repeated settlements, and offsets that do not increase", () => {
    const tracker = new PartitionTracker()
    tracker.add(1n)
    expect(tracker.settle(2n)).toBe(false)
    expect(tracker.settle(1n)).toBe(true)
    expect(tracker.settle(1n)).toBe(false)
    expect(() => tracker.add(1n)).toThrow()
  })

  it("reports a commit only when the point moved past the last commit", () => {
    const tracker = new PartitionTracker()
    tracker.add(0n)
    tracker.add(1n)
    expect(tracker.pendingCommit()).toBe(0n)
    tracker.committed(0n)
    expect(tracker.pendingCommit()).toBeUndefined()
    tracker.settle(0n)
    expect(tracker.pendingCommit()).toBe(1n)
    tracker.committed(1n)
    tracker.settle(1n)
    expect(tracker.pendingCommit()).toBe(2n)
  })

  it("a revoked partition gives back its unsettled count once and is no longer active", () => {
    const tracker = new PartitionTracker()
    for (const offset of [0n, 1n, 2n]) tracker.add(offset)
    tracker.settle(1n)
    expect(tracker.revoke()).toBe(2)
    expect(tracker.revoke()).toBe(0)
    expect(tracker.active).toBe(false)
  })

  it("in any settle order, the commit point never passes an unsettled offset and ends after the last", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed)
      const tracker = new PartitionTracker()
      const handed: Array<bigint> = []
      let offset = BigInt(Math.floor(next() * 1000))
      const count = 1 + Math.floor(next() * 3000)
      for (let i = 0; i < count; i++) {
        offset += 1n + (next() < 0.1 ? BigInt(Math.floor(next() * 5)) : 0n)
        handed.push(offset)
        tracker.add(offset)
      }
      const order = [...handed]
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1))
        ;[order[i], order[j]] = [order[j] as bigint, order[i] as bigint]
      }
      const settled = new Set<bigint>()
      let firstUnsettled = 0
      let lastPoint = -1n
      for (const o of order) {
        if (!tracker.settle(o)) throw new Error(`seed ${seed}: settling ${o} was refused`)
        settled.add(o)
        while (firstUnsettled < handed.length && settled.has(handed[firstUnsettled] as bigint)) firstUnsettled++
        const point = tracker.commitPoint() as bigint
        // Exactly the first unsettled offset: everything below it is settled, nothing above it counts.
        const expected = firstUnsettled < handed.length ? handed[firstUnsettled] : (handed.at(-1) as bigint) + 1n
        if (point !== expected) throw new Error(`seed ${seed}: commit point ${point}, first unsettled ${expected}`)
        if (point < lastPoint) throw new Error(`seed ${seed}: commit point moved back`)
        lastPoint = point
      }
      expect(tracker.commitPoint(), `seed ${seed}`).toBe((handed.at(-1) as bigint) + 1n)
      expect(tracker.unsettled()).toBe(0)
    }
  })
})
