import { Services } from "@lossless/testkit"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { assess, runRound } from "../src/Runner.ts"
import { type Feature, only, plan, runtimeTarget, type Scenario } from "../src/Scenario.ts"
import { memory } from "../src/targets/memory.ts"
import { runtime } from "../src/targets/runtime.ts"
import type { Target } from "../src/targets/Target.ts"

const scenario = (overrides: Partial<Scenario>): Scenario => ({
  id: "test",
  label: "test",
  target: "memory",
  operation: "publish-consume",
  payloadBytes: 100,
  amount: { messages: 5000 },
  batchSize: 100,
  publishConcurrency: 1,
  prefetch: 50,
  maxInFlight: 500,
  ...overrides
})

const roundOn = (target: Target, s: Scenario) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(target.open, (c) => runRound(c, s, 10_000))))
const round = (s: Scenario) => roundOn(memory, s)

describe("a publish-consume round on memory", () => {
  it("by count delivers every message once, with one latency sample each", async () => {
    const r = await round(scenario({ amount: { messages: 5003 } })) // last batch partial
    expect(r.messages).toBe(5003)
    expect(r.duplicates).toBe(0)
    expect(r.latencyMs.count).toBe(5003)
    expect(r.latencyMs.p50).toBeGreaterThanOrEqual(0)
    expect(r.latencyMs.max).toBeGreaterThanOrEqual(r.latencyMs.p99)
    expect(r.throughput).toBeGreaterThan(0)
  })

  it("by time runs about that long and drains what it published, with several publishers", async () => {
    // Several rounds: publishers contending at the in-flight limit once made slots collide now and then.
    const s = scenario({ amount: { seconds: 0.2 }, publishConcurrency: 3, batchSize: 10, maxInFlight: 40 })
    const rounds = await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(memory.open, (c) => Effect.forEach(Array.from({ length: 4 }), () => runRound(c, s, 10_000)))
      )
    )
    for (const r of rounds) {
      expect(r.elapsedMs).toBeGreaterThanOrEqual(200)
      expect(r.elapsedMs).toBeLessThan(5000)
      expect(r.duplicates).toBe(0)
      expect(r.latencyMs.count).toBe(r.messages)
    }
  })

  it("one at a time works too", async () => {
    const r = await round(scenario({ batchSize: 1, amount: { messages: 1000 } }))
    expect(r.messages).toBe(1000)
  })
})

const features: ReadonlyArray<Feature> = ["plain", "loss-detection", "memory-dedupe", "redis-dedupe"]
const everything = [
  { name: "memory", kind: "lossless" as const },
  ...features.map((f) => ({ name: runtimeTarget(f), kind: "runtime" as const }))
]

describe("a publish-consume round through the core runtime", () => {
  const redis = Services.check("redis", 1000)
  for (const feature of features) {
    it(`${feature}: delivers every message once, ending at the last ack`, async ({ skip }) => {
      if (feature === "redis-dedupe") {
        const check = await redis
        if (!check.available) skip(check.reason)
      }
      const r = await roundOn(
        runtime(feature),
        scenario({ target: runtimeTarget(feature), amount: { messages: 3003 } })
      )
      expect(r.messages).toBe(3003)
      expect(r.duplicates).toBe(0)
      expect(r.latencyMs.count).toBe(3003)
    })
  }

  it("by time drains what it published", async () => {
    const r = await roundOn(
      runtime("loss-detection"),
      scenario({ target: "runtime+loss-detection", amount: { seconds: 0.2 } })
    )
    expect(r.duplicates).toBe(0)
    expect(r.latencyMs.count).toBe(r.messages)
    expect(r.messages).toBeGreaterThan(0)
  })
})

describe("the plan", () => {
  it("sets each feature beside the plain runtime, and the plain runtime beside the transport", () => {
    const [comparison] = plan("quick", everything).comparisons.filter((c) => c.name.startsWith("core runtime"))
    const byTarget = new Map(comparison?.scenarios.map((s) => [s.target, s]))
    const transport = byTarget.get("memory")
    const plain = byTarget.get("runtime")
    expect(comparison?.baseline).toBe(transport?.id)
    expect(plain?.versus).toBeUndefined()
    expect(byTarget.get("runtime+loss-detection")).toMatchObject({ versus: plain?.id, maxCost: 0.05 })
    expect(byTarget.get("runtime+memory-dedupe")).toMatchObject({ versus: plain?.id, maxCost: undefined })
    expect(byTarget.get("runtime+redis-dedupe")).toMatchObject({ versus: plain?.id, maxCost: 0.1 })
  })

  it("leaves out the scenarios of unavailable targets", () => {
    const available = everything.filter((t) => t.name !== "runtime+redis-dedupe")
    const ids = plan("quick", available).comparisons.flatMap((c) => c.scenarios.map((s) => s.target))
    expect(ids).toContain("runtime+loss-detection")
    expect(ids).not.toContain("runtime+redis-dedupe")
  })
})

describe("--only", () => {
  it("keeps matching scenarios and their baseline", () => {
    const comparisons = only(plan("full", [{ name: "memory", kind: "lossless" }]).comparisons, "naive")
    expect(comparisons.length).toBe(3)
    for (const c of comparisons) {
      expect(c.scenarios.map((s) => s.id)).toEqual([c.baseline, c.scenarios[1]?.id])
      expect(c.scenarios[1]?.id).toContain("naive")
    }
    expect(only(plan("quick", [{ name: "memory", kind: "lossless" }]).comparisons, "no such thing")).toEqual([])
  })

  it("keeps the scenario a kept one is divided by, and that one's", () => {
    const [comparison, ...rest] = only(plan("quick", everything).comparisons, "redis")
    expect(rest).toEqual([])
    expect(comparison?.scenarios.map((s) => s.target)).toEqual(["memory", "runtime", "runtime+redis-dedupe"])
  })
})

describe("requirements", () => {
  const ratios = (min: number, median: number, max: number) => ({ count: 5, min, q1: min, median, q3: max, max })
  it("are met when the median ratio loses at most the limit", () => {
    expect(assess(ratios(0.96, 0.97, 0.99), 0.05)).toMatchObject({ met: true, straddles: false })
    expect(assess(ratios(0.95, 0.95, 0.95), 0.05).met).toBe(true)
    expect(assess(ratios(0.9, 0.97, 1.01), 0.05)).toMatchObject({ met: true, straddles: true })
  })
  it("are missed when it loses more, and say so when the rounds disagree", () => {
    const missed = assess(ratios(0.9, 0.92, 0.99), 0.05)
    expect(missed).toMatchObject({ met: false, straddles: true })
    expect(missed.cost).toBeCloseTo(0.08, 10)
    expect(assess(ratios(0.2, 0.25, 0.3), 0.1)).toMatchObject({ met: false, straddles: false })
  })
})
