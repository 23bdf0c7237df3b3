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
    peakInFlight: 1000,
    serverCpuMicrosPerMessage: Number.NaN,
    heapPerInFlightBytes: 1024,
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
    relative: (s.compareTo ?? []).map((versus) => ({
      versus,
      ratio: multiples[versus] === undefined ? undefined : Stats.summarize(multiples[versus] ?? [])
    })),
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
    skipped: [],
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

describe("peers, other ratios and fixed rates", () => {
  const raw = scenario("raw", "amqplib consume", { target: "rabbitmq-raw", operation: "consume" })
  const lossless = scenario("ll", "Lossless Consumer.start", { target: "rabbitmq-runtime", operation: "consume" })
  const peer = scenario("peer", "rascal consume", {
    target: "rascal",
    operation: "consume",
    concurrency: 16,
    compareTo: ["ll"]
  })
  const results = [
    result(raw, "raw", undefined),
    result(lossless, "raw", [0.7, 0.75, 0.8]),
    result(peer, "raw", [0.9, 1, 1.1], { ll: [1.2, 1.3, 1.4] })
  ]
  const status = (name: string, kind: Report.TargetStatus["kind"], note?: string): Report.TargetStatus => ({
    name,
    kind,
    description: name,
    available: true,
    reason: undefined,
    note
  })

  it("give a peer's ratio to Lossless beside its ratio to the raw client", () => {
    const text = Report.tables(results)
    const row = text.split("\n").find((line) => line.startsWith("| rascal consume ")) ?? ""
    expect(row).toContain("1.00× (0.90–1.10)")
    expect(row).toContain("1.30× (1.20–1.40) vs Lossless Consumer.start")
    expect(text).toContain("- rascal consume: 1.30× (1.20–1.40) vs Lossless Consumer.start")
  })

  it("note, once, where each peer that ran differs from Lossless", () => {
    const targets = [
      status("rascal", "peer", "redelivery counts live in memory"),
      status("rabbitmq-client", "peer", "not in these results"),
      status("rabbitmq-raw", "raw")
    ]
    expect(Report.peerNotes(results, targets)).toEqual(["- rascal: redelivery counts live in memory"])
  })

  it("show the offered rate and what the latency measures for a paced scenario", () => {
    const paced = scenario("p", "amqplib at 5k/s", { rate: 5000, amount: { messages: 5000 }, batchSize: 1 })
    const table = Report.table([result(paced, "p", undefined)])
    expect(table).toContain("offered")
    expect(table).toContain("5k/s")
    expect(table).toContain("due→handler")
  })

  it("tell a target that ran from one that was available but had no scenario in the run", () => {
    const lines = Report.targetLines([
      { ...status("kafka-raw", "raw"), used: true },
      { ...status("kafka-raw-6p", "raw"), used: false },
      { ...status("rocketmq", "lossless"), available: false, reason: "not reachable" }
    ]).split("\n")
    expect(lines).toEqual([
      "- kafka-raw (raw): ran — kafka-raw",
      "- kafka-raw-6p (raw): available, no scenario of this run — kafka-raw-6p",
      "- rocketmq (lossless): skipped — not reachable"
    ])
  })

  it("gather every requirement's verdict, and list what was skipped and why", () => {
    const withRequirement = [
      result(transport, "t", undefined),
      result(plain, "t", [0.14, 0.13, 0.15]),
      result(loss, "t", [0.9, 0.92, 0.93])
    ]
    const summary = Report.requirementSummary(withRequirement)
    expect(summary[0]).toBe("c:")
    expect(summary[1]).toContain("runtime + loss detection costs 8 %")
    expect(summary[1]).toContain("missed")
    const skipped = Report.skippedLines(
      [{ ...status("kafka", "lossless"), available: false, reason: "Kafka at x: refused" }],
      [{ what: "partition-count sweep", why: "no partitioned target" }]
    )
    expect(skipped).toEqual([
      "- skipped: kafka (Kafka at x: refused)",
      "- skipped: partition-count sweep (no partitioned target)"
    ])
  })

  it("put the verdicts, the skipped list and the peers' notes in latest.md", () => {
    const md = Report.markdown({
      startedAt: "2026-01-01T00:00:00.000Z",
      durationMs: 1000,
      mode: "quick",
      only: undefined,
      environment: { node: "v24", platform: "linux-x64", cpus: 2, cpuModel: "cpu", gc: true },
      warmupRounds: 1,
      rounds: 3,
      targets: [status("rascal", "peer", "redelivery counts live in memory")],
      skipped: [{ what: "scaling", why: "full mode only" }],
      results: [...results, result(loss, "t", [0.9, 0.92, 0.93])]
    })
    expect(md).toContain("Requirements:")
    expect(md).toContain("- skipped: scaling (full mode only)")
    expect(md).toContain(`${Report.peerNotesTitle}:`)
    expect(md).toContain("- rascal: redelivery counts live in memory")
  })
})

describe("a ratio next to its limit", () => {
  it("prints enough decimals to fall on the side its verdict says", () => {
    expect(Report.timesAgainst(0.7995, 0.8)).toBe("0.799×")
    expect(Report.timesAgainst(0.795, 0.8)).toBe("0.795×")
    expect(Report.timesAgainst(0.8, 0.8)).toBe("0.80×")
    expect(Report.timesAgainst(0.87, 0.9)).toBe("0.87×")
    expect(Report.timesAgainst(Number.NaN, 0.9)).toBe("-")
  })
})

describe("heap per message in flight", () => {
  const withHeap = (s: Scenario, base: string, heapMiB: number, inFlight: number): ScenarioResult => ({
    ...result(s, base, s.id === base ? undefined : [1, 1, 1]),
    heapPeakDeltaMiB: heapMiB,
    peakInFlight: inFlight
  })
  const small = scenario("small", "1,000 in flight")
  const large = scenario("large", "10,000 in flight")

  it("is the slope between a small and a large in-flight window", () => {
    const slope = Report.heapSlope(withHeap(small, "small", 80, 1000), withHeap(large, "small", 89, 10_000))
    expect(slope).toBeCloseTo((9 * 1024 * 1024) / 9000, 6)
    const text = Report.tables([withHeap(small, "small", 80, 1000), withHeap(large, "small", 89, 10_000)])
    expect(text).toContain("- 10,000 in flight: about 1.02 KiB of heap per message in flight beyond 1,000 in flight's")
  })

  it("is not estimated when the windows are too close", () => {
    expect(Report.heapSlope(withHeap(small, "small", 80, 1000), withHeap(large, "small", 89, 1500))).toBeUndefined()
    expect(Report.heapSlope(withHeap(small, "small", 80, 0), withHeap(large, "small", 89, 1500))).toBeUndefined()
  })
})

describe("heap per message in flight across targets", () => {
  it("is not estimated between different targets", () => {
    const a = { ...result(scenario("a", "amqplib"), "a", undefined), heapPeakDeltaMiB: 30, peakInFlight: 300 }
    const b = {
      ...result(scenario("b", "Lossless", { target: "rabbitmq-runtime" }), "a", [1, 1, 1]),
      heapPeakDeltaMiB: 60,
      peakInFlight: 800
    }
    expect(Report.heapSlope(a, b)).toBeUndefined()
  })
})
