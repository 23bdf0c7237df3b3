import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { runRound } from "../src/Runner.ts"
import { only, plan, type Scenario } from "../src/Scenario.ts"
import { memory } from "../src/targets/memory.ts"

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

const round = (s: Scenario) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(memory.open, (c) => runRound(c, s, 10_000))))

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
    const r = await round(scenario({ amount: { seconds: 0.2 }, publishConcurrency: 3, batchSize: 10, maxInFlight: 40 }))
    expect(r.elapsedMs).toBeGreaterThanOrEqual(200)
    expect(r.elapsedMs).toBeLessThan(5000)
    expect(r.duplicates).toBe(0)
    expect(r.latencyMs.count).toBe(r.messages)
  })

  it("one at a time works too", async () => {
    const r = await round(scenario({ batchSize: 1, amount: { messages: 1000 } }))
    expect(r.messages).toBe(1000)
  })
})

describe("--only", () => {
  it("keeps matching scenarios and their baseline", () => {
    const comparisons = only(plan("full", ["memory"]).comparisons, "naive")
    expect(comparisons.length).toBe(3)
    for (const c of comparisons) {
      expect(c.scenarios.map((s) => s.id)).toEqual([c.baseline, c.scenarios[1]?.id])
      expect(c.scenarios[1]?.id).toContain("naive")
    }
    expect(only(plan("quick", ["memory"]).comparisons, "no such thing")).toEqual([])
  })
})
