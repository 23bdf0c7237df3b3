/**
 * The offset tracker commits only what is settled: whatever order
 * deliveries settle in, the commit point never passes an unsettled offset.
 */
import { describe, expect, it } from "vitest"
import { follows, PartitionTracker } from "../src/internal/offsets.ts"

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
    const [i10, i11, i12, i15] = ["10", "11", "12", "15"].map((offset) => tracker.add(offset)) as [
      number,
      number,
      number,
      number
    ]
    expect(tracker.commitPoint()).toBe(10n)
    expect(tracker.settle(i11)).toBe(true)
    expect(tracker.commitPoint()).toBe(10n)
    expect(tracker.settle(i10)).toBe(true)
    expect(tracker.commitPoint()).toBe(12n)
    expect(tracker.settle(i15)).toBe(true)
    expect(tracker.settle(i12)).toBe(true)
    // Offsets need not be contiguous: 13 and 14 were never handed out (compaction, markers).
    expect(tracker.commitPoint()).toBe(16n)
    expect(tracker.unsettled()).toBe(0)
  })

  it("refuses unknown and repeated settlements, and offsets that do not increase", () => {
    const tracker = new PartitionTracker()
    const first = tracker.add("1")
    expect(tracker.settle(first + 1)).toBe(false)
    expect(tracker.settle(first - 1)).toBe(false)
    expect(tracker.settle(first)).toBe(true)
    expect(tracker.settle(first)).toBe(false)
    expect(() => tracker.add("1")).toThrow()
    expect(() => tracker.add("0")).toThrow()
  })

  it("orders decimal offsets by value, not as text", () => {
    expect(follows("10", "9")).toBe(true)
    expect(follows("9", "10")).toBe(false)
    expect(follows("12", "12")).toBe(false)
    expect(follows("9007199254740993", "9007199254740992")).toBe(true)
    const tracker = new PartitionTracker()
    const nine = tracker.add("9")
    const ten = tracker.add("10")
    expect(() => tracker.add("8")).toThrow()
    expect(tracker.nextFetch()).toBe(11n)
    tracker.settle(nine)
    expect(tracker.commitPoint()).toBe(10n)
    tracker.settle(ten)
    expect(tracker.commitPoint()).toBe(11n)
    // Past 2^53 offsets stay exact.
    const big = new PartitionTracker()
    big.add("9223372036854775806")
    expect(big.nextFetch()).toBe(9223372036854775807n)
  })

  it("reports a commit only when the point moved past the last commit", () => {
    const tracker = new PartitionTracker()
    const i0 = tracker.add("0")
    const i1 = tracker.add("1")
    expect(tracker.pendingCommit()).toBe(0n)
    tracker.committed(0n)
    expect(tracker.pendingCommit()).toBeUndefined()
    tracker.settle(i0)
    expect(tracker.pendingCommit()).toBe(1n)
    tracker.committed(1n)
    tracker.settle(i1)
    expect(tracker.pendingCommit()).toBe(2n)
  })

  it("a revoked partition gives back its unsettled count once and is no longer active", () => {
    const tracker = new PartitionTracker()
    const indices = ["0", "1", "2"].map((offset) => tracker.add(offset))
    tracker.settle(indices[1] as number)
    expect(tracker.revoke()).toBe(2)
    expect(tracker.revoke()).toBe(0)
    expect(tracker.active).toBe(false)
  })

  it("in any settle order, the commit point never passes an unsettled offset and ends after the last", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed)
      const tracker = new PartitionTracker()
      const handed: Array<bigint> = []
      const indices: Array<number> = []
      let offset = BigInt(Math.floor(next() * 1000))
      const count = 1 + Math.floor(next() * 3000)
      for (let i = 0; i < count; i++) {
        offset += 1n + (next() < 0.1 ? BigInt(Math.floor(next() * 5)) : 0n)
        handed.push(offset)
        indices.push(tracker.add(String(offset)))
      }
      const order = handed.map((_, i) => i)
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1))
        ;[order[i], order[j]] = [order[j] as number, order[i] as number]
      }
      const settled = new Set<number>()
      let firstUnsettled = 0
      let lastPoint = -1n
      for (const at of order) {
        if (!tracker.settle(indices[at] as number)) throw new Error(`seed ${seed}: settling ${handed[at]} was refused`)
        if (tracker.settle(indices[at] as number)) throw new Error(`seed ${seed}: ${handed[at]} settled twice`)
        settled.add(at)
        while (firstUnsettled < handed.length && settled.has(firstUnsettled)) firstUnsettled++
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
