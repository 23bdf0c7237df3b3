import { describe, expect, it } from "vitest"
import * as Pacing from "../src/Pacing.ts"

describe("a fixed-rate schedule", () => {
  it("spaces messages evenly from the start", () => {
    expect(Pacing.dueAt(100, 0, 1000)).toBe(100)
    expect(Pacing.dueAt(100, 1, 1000)).toBe(101)
    expect(Pacing.dueAt(100, 5000, 5000)).toBe(1100)
    expect(Pacing.dueAt(0, 3, 2000)).toBeCloseTo(1.5, 12)
  })

  it("refuses a rate that is not positive", () => {
    expect(() => Pacing.dueAt(0, 1, 0)).toThrow(RangeError)
    expect(() => Pacing.dueAt(0, 1, -5)).toThrow(RangeError)
    expect(() => Pacing.dueAt(0, 1, Number.NaN)).toThrow(RangeError)
  })

  it("waits until a message is due and never a negative time", () => {
    expect(Pacing.waitFor(110, 100)).toBe(10)
    expect(Pacing.waitFor(100, 100)).toBe(0)
    expect(Pacing.waitFor(100, 130)).toBe(0)
  })

  it("publishes whole batches for a round's length, at least one", () => {
    expect(Pacing.messagesFor(1, 1000, 1)).toBe(1000)
    expect(Pacing.messagesFor(2, 5000, 100)).toBe(10_000)
    expect(Pacing.messagesFor(1, 150, 100)).toBe(200)
    expect(Pacing.messagesFor(0.001, 10, 1)).toBe(1)
  })

  it("runs enough publishers to keep the schedule at the expected confirm latency", () => {
    // 5000/s × 25 ms = 125 messages in flight, doubled for headroom.
    expect(Pacing.publishersFor(5000, 25, 1)).toBe(250)
    expect(Pacing.publishersFor(5000, 25, 10)).toBe(25)
    expect(Pacing.publishersFor(1, 1, 1)).toBe(1)
  })
})

describe("memory per message in flight", () => {
  it("is the heap growth over the most messages in flight", () => {
    expect(Pacing.heapPerInFlight(1024 * 1000, 1000)).toBe(1024)
  })

  it("is undefined without anything in flight or a heap figure", () => {
    expect(Pacing.heapPerInFlight(1024, 0)).toBeNaN()
    expect(Pacing.heapPerInFlight(Number.NaN, 10)).toBeNaN()
  })
})

describe("keeping up", () => {
  it("is the achieved rate over the offered one", () => {
    expect(Pacing.keptUp(4500, 5000)).toBeCloseTo(0.9, 12)
    expect(Pacing.keptUp(100, 0)).toBeNaN()
  })
})
