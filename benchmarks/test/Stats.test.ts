import { describe, expect, it } from "vitest"
import * as Stats from "../src/Stats.ts"

describe("percentiles", () => {
  it("interpolate between the nearest ranks", () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    expect(Stats.percentile(s, 0)).toBe(1)
    expect(Stats.percentile(s, 100)).toBe(10)
    expect(Stats.percentile(s, 50)).toBe(5.5)
    // rank 0.95 * 9 = 8.55: between 9 and 10
    expect(Stats.percentile(s, 95)).toBeCloseTo(9.55, 10)
    expect(Stats.percentile(s, 99)).toBeCloseTo(9.91, 10)
    expect(Stats.percentile(s, 25)).toBeCloseTo(3.25, 10)
  })

  it("hit samples exactly on whole ranks", () => {
    const s = Array.from({ length: 101 }, (_, i) => i * 2) // 0, 2, ..., 200
    expect(Stats.percentile(s, 50)).toBe(100)
    expect(Stats.percentile(s, 95)).toBe(190)
    expect(Stats.percentile(s, 99)).toBe(198)
  })

  it("sort numerically, not as strings, and leave the input alone", () => {
    const s = [100, 9, 20, 3]
    expect(Stats.percentile(s, 0)).toBe(3)
    expect(Stats.percentile(s, 100)).toBe(100)
    expect(s).toEqual([100, 9, 20, 3])
  })

  it("of one sample is that sample; of none is NaN", () => {
    expect(Stats.percentile([7], 99)).toBe(7)
    expect(Stats.percentile([], 50)).toBeNaN()
  })

  it("reject out-of-range p", () => {
    expect(() => Stats.percentile([1, 2], 101)).toThrow(RangeError)
    expect(() => Stats.percentile([1, 2], -1)).toThrow(RangeError)
  })
})

describe("median", () => {
  it("is the middle sample when the count is odd", () => {
    expect(Stats.median([5, 1, 3])).toBe(3)
  })
  it("is the mean of the two middle samples when the count is even", () => {
    expect(Stats.median([4, 1, 3, 2])).toBe(2.5)
  })
})

describe("summarize", () => {
  it("gives min, quartiles, median and max", () => {
    expect(Stats.summarize([9, 1, 5, 3, 7])).toEqual({ count: 5, min: 1, q1: 3, median: 5, q3: 7, max: 9 })
  })
  it("spread is half the range relative to the median", () => {
    expect(Stats.relativeSpread(Stats.summarize([90, 100, 110]))).toBeCloseTo(0.1, 10)
  })
})

describe("latencyInPlace", () => {
  it("gives p50/p95/p99/max of 1..1000", () => {
    const samples = new Float64Array(1000)
    for (let i = 0; i < 1000; i++) samples[i] = 1000 - i // descending: must be sorted first
    const l = Stats.latencyInPlace(samples)
    expect(l.count).toBe(1000)
    expect(l.p50).toBeCloseTo(500.5, 10)
    expect(l.p95).toBeCloseTo(950.05, 10)
    expect(l.p99).toBeCloseTo(990.01, 10)
    expect(l.max).toBe(1000)
  })
})

describe("throughput", () => {
  it("is operations per second", () => {
    expect(Stats.throughput(5000, 250)).toBe(20_000)
    expect(Stats.throughput(1, 0)).toBeNaN()
  })
})

describe("SampleBuffer", () => {
  it("grows past its capacity and keeps every sample in order", () => {
    const b = new Stats.SampleBuffer(2)
    for (let i = 0; i < 10; i++) b.push(i)
    expect(b.length).toBe(10)
    expect(Array.from(b.view())).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  })
})
