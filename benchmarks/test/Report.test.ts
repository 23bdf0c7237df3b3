import { describe, expect, it } from "vitest"
import * as Report from "../src/Report.ts"
import { assess, type ScenarioResult } from "../src/Runner.ts"
import type { Scenario } from "../src/Scenario.ts"
import * as Stats from "../src/Stats.ts"

const scenario = (id: string, label: string, extra: Partial<Scenario> = {}): Scenario => ({
  id,
  label,
  target: "memory",
  operation: "publish-consume",
  payloadBytes: 100,
  amount: { seconds: 1 },
  batchSize: 100,
  publishConcurrency: 1,
  prefetch: 100,
  maxInFlight: 1000,
  ...extra
})

const result = (s: Scenario, baseline: string, ratios: ReadonlyArray<number> | undefined): ScenarioResult => {
  const ratio = ratios === undefined ? undefined : { ...Stats.summarize(ratios), baseline: s.versus ?? baseline }
  return {
    comparison: "c",
    scenario: s,
    isBaseline: s.id === baseline,
    rounds: [],
    throughput: Stats.summarize([1000, 1100, 900]),
    latencyMs: { p50: 1, p95: 2, p99: 3, max: 4 },
    heapPeakDeltaMiB: 1,
    heapRetainedMiB: 0,
    rssPeakMiB: 100,
    duplicates: 0,
    cpuMicrosPerMessage: 10,
    ratio,
    cpuRatio: ratios === undefined ? undefined : Stats.summarize(ratios.map((r) => 1 / r)),
    requirement: ratio === undefined || s.maxCost === undefined ? undefined : assess(ratio, s.maxCost),
    error: undefined
  }
}

const transport = scenario("t", "transport")
const plain = scenario("p", "runtime plain")
const loss = scenario("l", "runtime + loss detection", { versus: "p", maxCost: 0.05 })
const redis = scenario("r", "runtime + Redis dedupe", { versus: "p", maxCost: 0.1 })

describe("tables", () => {
  const results = [
    result(transport, "t", undefined),
    result(plain, "t", [0.14, 0.13, 0.15]),
    result(loss, "t", [0.97, 0.96, 0.99]),
    result(redis, "t", [0.25, 0.3, 0.2])
  ]

  it("name the reference when it is not the baseline, and judge requirements", () => {
    const text = Report.tables(results)
    const rows = text.split("\n")
    const row = (label: string) => rows.find((line) => line.startsWith(`| ${label} `)) ?? ""
    expect(row("runtime plain")).toContain("0.14× (0.13–0.15) |")
    expect(row("runtime plain")).not.toContain("vs runtime plain")
    expect(row("runtime + loss detection")).toContain("0.97× (0.96–0.99) vs runtime plain")
    expect(row("runtime + loss detection")).toContain("≤5 % cost: met")
    expect(row("runtime + Redis dedupe")).toContain("≤10 % cost: missed")
    expect(text).toContain("- runtime + loss detection costs 3 % of runtime plain's throughput")
    expect(text).toContain("- runtime + Redis dedupe costs 75 % of runtime plain's throughput")
  })

  it("show the requirement column only where some scenario has one", () => {
    expect(Report.table(results)).toContain("requirement")
    expect(Report.table(results.slice(0, 2))).not.toContain("requirement")
  })

  it("say borderline when the rounds fall on both sides of the limit", () => {
    expect(Report.requirementCell(result(loss, "t", [0.93, 0.96, 1.01]))).toBe("≤5 % cost: met (borderline)")
    expect(Report.requirementCell(result(loss, "t", [0.9, 0.94, 0.97]))).toBe("≤5 % cost: missed (borderline)")
    expect(Report.requirementCell(result(loss, "t", undefined))).toBe("≤5 % cost: -")
  })
})
