import { describe, expect, it } from "vitest"
import * as Report from "../src/Report.ts"
import { assess, assessAtLeast, type ScenarioResult } from "../src/Runner.ts"
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

const result = (
  s: Scenario,
  baseline: string,
  ratios: ReadonlyArray<number> | undefined,
  /** Per-round ratios to each `atLeast` reference, by its id. */
  multiples: Readonly<Record<string, ReadonlyArray<number>>> = {}
): ScenarioResult => {
  const ratio = ratios === undefined ? undefined : { ...Stats.summarize(ratios), baseline: s.versus ?? baseline }
  const reference = s.versus ?? baseline
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
    atLeast: (s.atLeast ?? []).map((q) => {
      const versus = q.versus ?? reference
      const rounds = versus === reference ? ratios : multiples[versus]
      return assessAtLeast(
        versus,
        rounds === undefined ? undefined : Stats.summarize(rounds),
        q.ratio,
        versus === reference
      )
    }),
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

describe("requirements as multiples", () => {
  const publish = { operation: "publish", target: "rabbitmq-raw", prefetch: 0 } as const
  const raw = scenario("raw", "amqplib windowed", publish)
  const naive = scenario("naive", "amqplib naive", { ...publish, batchSize: 1 })
  const send = scenario("send", "Lossless send", {
    ...publish,
    target: "rabbitmq-runtime",
    atLeast: [{ ratio: 0.9 }, { ratio: 8, versus: "naive" }]
  })
  const results = [
    result(raw, "raw", undefined),
    result(send, "raw", [0.93, 0.95, 0.97], { naive: [7.5, 9.1, 9.9] }),
    result(naive, "raw", [0.1, 0.11, 0.12])
  ]

  it("name the other reference and its ratio in the cell, not the comparison's own", () => {
    const row = Report.table(results)
      .split("\n")
      .find((line) => line.startsWith("| Lossless send "))
    expect(row).toContain("≥0.9×: met; ≥8× vs amqplib naive (9.10×): met (borderline)")
  })

  it("spell each one out below the table", () => {
    const text = Report.tables(results)
    expect(text).toContain(
      "- Lossless send reaches 0.95× amqplib windowed's throughput (rounds 0.93–0.97; required ≥0.9×): met"
    )
    expect(text).toContain(
      "- Lossless send reaches 9.10× amqplib naive's throughput (rounds 7.50–9.90; required ≥8×): met (borderline)"
    )
  })

  it("say when a requirement could not be judged", () => {
    const unmeasured = result(send, "raw", undefined)
    expect(Report.requirementCell(unmeasured)).toBe("≥0.9×: -; ≥8× vs naive: -")
    expect(Report.requirementLines([unmeasured])[0]).toContain("so its requirement (≥0.9×) was not checked")
  })

  it("say what the latency measures when not publish to receipt, and leave out a publisher's prefetch", () => {
    const table = Report.table(results)
    expect(table).toContain("| latency ")
    expect(table).toContain("publish→confirm")
    const row = table.split("\n").find((line) => line.startsWith("| amqplib windowed ")) ?? ""
    expect(row).toMatch(/\| rabbitmq-raw\s+\|\s+100 \|\s+- \|/)
    expect(Report.table([result(transport, "t", undefined)])).not.toContain("latency")
  })
})

describe("the chart", () => {
  const report = (results: ReadonlyArray<ScenarioResult>): Report.RunReport => ({
    startedAt: "2026-01-01T00:00:00.000Z",
    durationMs: 1000,
    mode: "quick",
    only: undefined,
    environment: { node: "v24", platform: "linux-x64", cpus: 2, cpuModel: "cpu", gc: true },
    warmupRounds: 1,
    rounds: 3,
    targets: [],
    results
  })

  it("writes requirement verdicts on a line of their own, under the bar", () => {
    const text = Report.svg(
      report([
        result(transport, "t", undefined),
        result(plain, "t", [0.14, 0.13, 0.15]),
        result(loss, "t", [0.97, 0.96, 0.99])
      ])
    )
    expect(text).toContain('class="note">≤5 % cost: met</text>')
    expect(text).toContain("(0.97× vs runtime plain)</text>")
  })

  it("scales each comparison to its own fastest scenario", () => {
    const fast = { ...result(transport, "t", undefined), throughput: Stats.summarize([1000]) }
    const slow = {
      ...result(plain, "p", undefined),
      comparison: "d",
      isBaseline: true,
      throughput: Stats.summarize([10])
    }
    const widths = [...Report.svg(report([fast, slow])).matchAll(/<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)"/g)].map(
      (m) => Number(m[1])
    )
    // One bar per comparison, each the full width of its own scale.
    expect(widths).toHaveLength(2)
    expect(widths[0]).toBeGreaterThan(100)
    expect(widths[1]).toBe(widths[0])
  })
})
