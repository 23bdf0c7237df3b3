import { Services } from "@lossless/testkit"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { assess, assessAtLeast, type RoundSample, runRound, summarizeScenario } from "../src/Runner.ts"
import {
  type Comparison,
  type Feature,
  only,
  outboxTarget,
  partitionedName,
  peers,
  plan,
  rabbitmq,
  rabbitmqRuntimeTarget,
  runtimeTarget,
  type Scenario
} from "../src/Scenario.ts"
import { memory } from "../src/targets/memory.ts"
import { runtime } from "../src/targets/runtime.ts"
import { type BenchClient, BenchError, type Target } from "../src/targets/Target.ts"

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

describe("a publish round on memory", () => {
  it("ends at the last confirm, with a publish-to-confirm latency per message and nothing consumed", async () => {
    const r = await round(scenario({ operation: "publish", amount: { messages: 2050 }, batchSize: 100 }))
    expect(r.messages).toBe(2050)
    expect(r.latencyMs.count).toBe(2050)
    expect(r.duplicates).toBe(0)
  })

  it("by time confirms everything it published, with several publishers", async () => {
    const r = await round(
      scenario({
        operation: "publish",
        amount: { seconds: 0.2 },
        publishConcurrency: 4,
        batchSize: 10,
        maxInFlight: 40
      })
    )
    expect(r.elapsedMs).toBeGreaterThanOrEqual(200)
    expect(r.messages).toBeGreaterThan(0)
    expect(r.latencyMs.count).toBe(r.messages)
  })
})

describe("a consume round on memory", () => {
  it("fills the queue first and times only the consuming, without latencies", async () => {
    const r = await round(scenario({ operation: "consume", amount: { messages: 3010 }, prefetch: 100 }))
    expect(r.messages).toBe(3010)
    expect(r.duplicates).toBe(0)
    expect(r.latencyMs.count).toBe(0)
    expect(r.latencyMs.p50).toBeNaN()
    expect(r.throughput).toBeGreaterThan(0)
  })

  it("needs an amount of messages", async () => {
    await expect(round(scenario({ operation: "consume", amount: { seconds: 1 } }))).rejects.toThrow(
      /amount of messages/
    )
  })
})

/**
 * A client whose consumer hands each published message back on a timer and
 * says when it was "committed" (`since`), as the outbox target does; it
 * counts `cleanup` calls, and can fail its publishes.
 */
const fakeClient = (options: { readonly sinceAgoMs?: number; readonly failPublish?: boolean } = {}) => {
  const published: Array<number> = []
  const calls = { prepare: 0, cleanup: 0 }
  const client: BenchClient = {
    prepare: () => Effect.sync(() => void calls.prepare++),
    prepareBatch: (_topic, firstSeq, count) =>
      options.failPublish === true
        ? Effect.fail(new BenchError({ message: "refused" }))
        : Effect.sync(() => {
            for (let i = 0; i < count; i++) published.push(firstSeq + i)
          }),
    consume: (_topic, _group, _prefetch, sink) =>
      Effect.callback<void, BenchError>((resume) => {
        const timer = setInterval(() => {
          for (let seq = published.shift(); seq !== undefined; seq = published.shift()) {
            sink.onReceive(seq, options.sinceAgoMs === undefined ? undefined : performance.now() - options.sinceAgoMs)
            if (!sink.onSettled()) {
              clearInterval(timer)
              return resume(Effect.void)
            }
          }
        }, 1)
        return Effect.sync(() => clearInterval(timer))
      }),
    cleanup: () => Effect.sync(() => void calls.cleanup++)
  }
  return { client, calls }
}

describe("a round through a client that reports its own start times (outbox)", () => {
  const s = scenario({ operation: "outbox", amount: { messages: 500 }, batchSize: 50, maxInFlight: 200 })

  it("measures latency from the `since` the client gives", async () => {
    const { client } = fakeClient({ sinceAgoMs: 250 })
    const r = await Effect.runPromise(runRound(client, s, 10_000))
    expect(r.messages).toBe(500)
    expect(r.latencyMs.count).toBe(500)
    expect(r.latencyMs.p50).toBeGreaterThanOrEqual(250)
  })

  it("from the publish when it gives none", async () => {
    const { client } = fakeClient()
    const r = await Effect.runPromise(runRound(client, s, 10_000))
    expect(r.latencyMs.max).toBeLessThan(250)
  })

  it("cleans up after every round, also after a failed one", async () => {
    const { client, calls } = fakeClient()
    await Effect.runPromise(runRound(client, s, 10_000))
    expect(calls).toEqual({ prepare: 1, cleanup: 1 })
    const failing = fakeClient({ failPublish: true })
    await expect(Effect.runPromise(runRound(failing.client, s, 10_000))).rejects.toThrow(/refused/)
    expect(failing.calls).toEqual({ prepare: 1, cleanup: 1 })
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

const brokers = [
  { name: rabbitmq.raw, kind: "raw" as const },
  { name: rabbitmq.rawWire, kind: "raw" as const },
  { name: rabbitmq.transport, kind: "lossless" as const },
  { name: rabbitmq.runtime, kind: "runtime" as const },
  { name: outboxTarget, kind: "runtime" as const }
]

const comparisonOf = (comparisons: ReadonlyArray<Comparison>, prefix: string): Comparison => {
  const found = comparisons.find((c) => c.name.startsWith(prefix))
  if (found === undefined) throw new Error(`no comparison "${prefix}"`)
  return found
}

describe("the plan on RabbitMQ and the outbox", () => {
  it("sets Lossless beside amqplib with the requirements, amqplib's windowed publish as the baseline", () => {
    const comparisons = plan("quick", [...everything, ...brokers]).comparisons
    const publish = comparisonOf(comparisons, "rabbitmq publish")
    const byTarget = new Map(publish.scenarios.map((s) => [`${s.target}/${s.batchSize}`, s]))
    const windowed = byTarget.get(`${rabbitmq.raw}/100`)
    const naive = byTarget.get(`${rabbitmq.raw}/1`)
    expect(publish.baseline).toBe(windowed?.id)
    expect(windowed).toMatchObject({ operation: "publish", payloadBytes: 1024, publishConcurrency: 10 })
    expect(naive).toMatchObject({ operation: "publish", publishConcurrency: 1 })
    expect(byTarget.get(`${rabbitmq.runtime}/100`)?.atLeast).toEqual([{ ratio: 0.9 }, { ratio: 8, versus: naive?.id }])

    const consume = comparisonOf(comparisons, "rabbitmq consume")
    expect(consume.scenarios.map((s) => [s.target, s.operation, s.atLeast])).toEqual([
      [rabbitmq.raw, "consume", undefined],
      [rabbitmq.runtime, "consume", [{ ratio: 0.8 }]]
    ])

    const outbox = comparisonOf(comparisons, "outbox")
    expect(outbox.scenarios.map((s) => [s.target, s.operation, s.atLeast])).toEqual([
      [rabbitmq.raw, "publish", undefined],
      [outboxTarget, "outbox", [{ ratio: 0.7 }]]
    ])
    // RabbitMQ's adapter is measured in its own suite, not in the generic transport one.
    expect(comparisons.some((c) => c.name.startsWith("rabbitmq publish→consume"))).toBe(false)
  })

  it("adds the adapter alone and amqplib with Lossless's headers in full mode", () => {
    const comparisons = plan("full", [...everything, ...brokers]).comparisons
    expect(comparisonOf(comparisons, "rabbitmq publish").scenarios.map((s) => s.target)).toEqual([
      rabbitmq.raw,
      rabbitmq.rawWire,
      rabbitmq.transport,
      rabbitmq.runtime,
      rabbitmq.raw
    ])
    expect(comparisonOf(comparisons, "rabbitmq consume").scenarios.map((s) => s.target)).toEqual([
      rabbitmq.raw,
      rabbitmq.transport,
      rabbitmq.runtime
    ])
  })

  it("has no RabbitMQ or outbox comparison when the broker is unavailable, and no outbox without PostgreSQL", () => {
    const names = (targets: ReadonlyArray<{ readonly name: string; readonly kind: "raw" | "lossless" | "runtime" }>) =>
      plan("quick", targets).comparisons.map((c) => c.name)
    expect(names(everything).some((n) => /rabbitmq|outbox/i.test(n))).toBe(false)
    const withoutOutbox = names([...everything, ...brokers.filter((b) => b.name !== outboxTarget)])
    expect(withoutOutbox.some((n) => n.startsWith("rabbitmq publish"))).toBe(true)
    expect(withoutOutbox.some((n) => n.startsWith("outbox"))).toBe(false)
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

  it("keeps the scenarios a kept one's requirements are judged against", () => {
    const [comparison, ...rest] = only(plan("quick", [...everything, ...brokers]).comparisons, "sendBatch")
    expect(rest).toEqual([])
    expect(comparison?.scenarios.map((s) => [s.target, s.batchSize])).toEqual([
      [rabbitmq.raw, 100],
      [rabbitmq.runtime, 100],
      [rabbitmq.raw, 1]
    ])
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

describe("requirements as multiples", () => {
  const ratios = (min: number, median: number, max: number) => ({ count: 5, min, q1: min, median, q3: max, max })
  it("are met when the median ratio reaches the multiple", () => {
    expect(assessAtLeast("x", ratios(8.1, 9, 9.5), 8)).toMatchObject({ versus: "x", met: true, straddles: false })
    expect(assessAtLeast("x", ratios(0.9, 0.9, 0.9), 0.9).met).toBe(true)
    expect(assessAtLeast("x", ratios(0.85, 0.91, 0.95), 0.9)).toMatchObject({ met: true, straddles: true })
  })
  it("are missed below it, and undecided without a ratio", () => {
    expect(assessAtLeast("x", ratios(0.6, 0.7, 0.95), 0.8)).toMatchObject({ met: false, straddles: true })
    expect(assessAtLeast("x", undefined, 0.8)).toMatchObject({ met: undefined, straddles: false })
  })
})

describe("a scenario's summary", () => {
  const sample = (throughput: number): RoundSample => ({
    messages: 1000,
    elapsedMs: 1000,
    throughput,
    latencyMs: { count: 1, p50: 1, p95: 1, p99: 1, max: 1 },
    heapPeakDeltaMiB: 0,
    heapRetainedMiB: 0,
    rssPeakMiB: 0,
    duplicates: 0,
    peakInFlight: 0,
    cpuMicrosPerMessage: 10,
    serverCpuMicrosPerMessage: Number.NaN
  })
  const base = scenario({ id: "raw" })
  const naive = scenario({ id: "naive", batchSize: 1 })
  const lossless = scenario({ id: "lossless", atLeast: [{ ratio: 0.9 }, { ratio: 8, versus: "naive" }] })
  const comparison: Comparison = { name: "c", baseline: "raw", scenarios: [base, lossless, naive] }
  const samples = new Map([
    ["raw", [sample(1000), sample(2000), sample(1000)]],
    ["lossless", [sample(950), sample(1600), sample(800)]],
    ["naive", [sample(100), sample(250), sample(100)]]
  ])

  it("judges each requirement by the ratios of the rounds run side by side", () => {
    const r = summarizeScenario(comparison, lossless, samples, undefined)
    expect(r.ratio).toMatchObject({ baseline: "raw", min: 0.8, median: 0.8, max: 0.95 })
    const [own, versusNaive] = r.atLeast
    expect(own).toMatchObject({ versus: "raw", atLeast: 0.9, met: false, straddles: true })
    expect(versusNaive).toMatchObject({ versus: "naive", atLeast: 8, met: true, straddles: true })
    expect(versusNaive?.ratio).toMatchObject({ min: 6.4, median: 8, max: 9.5 })
  })

  it("has no ratio for a requirement against a scenario without rounds", () => {
    const r = summarizeScenario(comparison, lossless, new Map([["lossless", samples.get("lossless") ?? []]]), undefined)
    expect(r.atLeast.map((q) => q.met)).toEqual([undefined, undefined])
  })
})

describe("a paced round on memory", () => {
  it("publishes on schedule and measures latency from when each message was due", async () => {
    // 300 messages at 1500/s: the last is due 199 ms after the start.
    const r = await round(scenario({ amount: { messages: 300 }, rate: 1500, batchSize: 1, publishConcurrency: 8 }))
    expect(r.messages).toBe(300)
    expect(r.duplicates).toBe(0)
    expect(r.elapsedMs).toBeGreaterThanOrEqual(199)
    expect(r.throughput).toBeLessThanOrEqual(1500 * 1.02)
    expect(r.latencyMs.count).toBe(300)
    // Never published before it was due.
    expect(Math.min(r.latencyMs.p50, r.latencyMs.p95)).toBeGreaterThanOrEqual(0)
    expect(r.peakInFlight).toBeGreaterThan(0)
  })

  it("needs an amount of messages", async () => {
    await expect(round(scenario({ amount: { seconds: 0.1 }, rate: 100 }))).rejects.toThrow(/amount of messages/)
  })
})

describe("the plan beside other libraries and at fixed rates", () => {
  const peerTargets = peers.map((p) => ({ name: p.target, kind: "peer" as const }))
  const all = [...everything, ...brokers, ...peerTargets]

  it("sets each peer beside amqplib and Lossless, with the same window and prefetch", () => {
    const comparisons = plan("quick", all).comparisons
    const publish = comparisonOf(comparisons, "rabbitmq publish")
    const consume = comparisonOf(comparisons, "rabbitmq consume")
    const sendBatch = publish.scenarios.find((s) => s.target === rabbitmq.runtime)
    const consumer = consume.scenarios.find((s) => s.target === rabbitmq.runtime)
    for (const p of peers) {
      const pub = publish.scenarios.find((s) => s.target === p.target)
      expect(pub).toMatchObject({ batchSize: 100, publishConcurrency: 10, maxInFlight: 1000 })
      expect(pub?.compareTo).toEqual([sendBatch?.id])
      const con = consume.scenarios.find((s) => s.target === p.target)
      expect(con).toMatchObject({ operation: "consume", prefetch: consumer?.prefetch, concurrency: 16 })
      expect(con?.compareTo).toEqual([consumer?.id])
    }
    // The baselines stay amqplib's.
    expect(publish.baseline).toContain("raw-windowed")
  })

  it("says which peers it left out and why", () => {
    const skips = plan("quick", [...everything, ...brokers]).skipped
    for (const p of peers)
      expect(skips.some((s) => s.what.includes(p.label) && s.why.includes("not available"))).toBe(true)
  })

  it("offers fixed rates to amqplib, the runtime on RabbitMQ and the runtime on memory, paced by count", () => {
    const latency = plan("quick", all).comparisons.filter((c) => c.name.startsWith("end-to-end latency"))
    expect(latency.map((c) => c.scenarios[0]?.rate)).toEqual([1000, 5000])
    for (const c of latency) {
      expect(c.scenarios.map((s) => s.target)).toEqual([rabbitmq.raw, rabbitmq.runtime, "runtime"])
      expect(c.baseline).toBe(c.scenarios[0]?.id)
      for (const s of c.scenarios) {
        expect(s.amount).toEqual({ messages: (s.rate ?? 0) * 0.75 })
        expect(s.batchSize).toBe(1)
      }
    }
  })

  it("keeps the peers' references when filtered", () => {
    const comparisons = plan("quick", all).comparisons
    const kept = only(comparisons, "rascal")
    const publish = comparisonOf(kept, "rabbitmq publish")
    // amqplib windowed (the baseline), Lossless (the peer's other reference), amqplib naive (Lossless's requirement).
    expect(publish.scenarios.map((s) => `${s.target}/${s.batchSize}`).sort()).toEqual(
      [`${rabbitmq.raw}/100`, `${rabbitmq.raw}/1`, `${rabbitmq.runtime}/100`, "rascal/100"].sort()
    )
  })
})

describe("the full plan", () => {
  const features = (["loss-detection", "memory-dedupe", "redis-dedupe"] as const).map((f) => ({
    name: rabbitmqRuntimeTarget(f),
    kind: "runtime" as const
  }))
  const all = [...everything, ...brokers, ...features]

  it("costs each core feature on RabbitMQ against the plain runtime there, with the memory suite's requirements", () => {
    const c = comparisonOf(plan("full", all).comparisons, "core runtime on RabbitMQ")
    const byTarget = new Map(c.scenarios.map((s) => [s.target, s]))
    const plain = byTarget.get(rabbitmq.runtime)
    expect(c.baseline).toBe(byTarget.get(rabbitmq.transport)?.id)
    expect(byTarget.get(rabbitmqRuntimeTarget("loss-detection"))).toMatchObject({ versus: plain?.id, maxCost: 0.05 })
    expect(byTarget.get(rabbitmqRuntimeTarget("redis-dedupe"))).toMatchObject({ versus: plain?.id, maxCost: 0.1 })
    expect(comparisonOf(plan("quick", all).comparisons, "rabbitmq publish")).toBeDefined()
    expect(plan("quick", all).comparisons.some((c) => c.name.startsWith("core runtime on RabbitMQ"))).toBe(false)
  })

  it("sets the outbox beside the same sends without it", () => {
    const c = comparisonOf(plan("full", all).comparisons, "outbox")
    const direct = c.scenarios.find((s) => s.target === rabbitmq.runtime)
    const outbox = c.scenarios.find((s) => s.target === outboxTarget)
    expect(direct).toMatchObject({ operation: "publish", batchSize: 100, publishConcurrency: 4 })
    expect(outbox?.compareTo).toEqual([direct?.id])
    expect(outbox?.atLeast).toEqual([{ ratio: 0.7 }])
  })

  it("sweeps payload size, handler concurrency and the in-flight window", () => {
    const names = plan("full", all).comparisons.map((c) => c.name)
    for (const size of ["100 B", "1 KiB", "16 KiB"]) {
      expect(names).toContain(`rabbitmq publish→consume ${size}: amqplib and Lossless`)
    }
    const byConcurrency = comparisonOf(plan("full", all).comparisons, "core runtime on rabbitmq, 1 KiB")
    expect(byConcurrency.scenarios.map((s) => s.concurrency)).toEqual([16, 1, 64])
    expect(names).toContain("core runtime on memory, 1 KiB: heap per message in flight")
    // Without the Kafka targets the partition sweep says why it is missing.
    expect(plan("full", all).skipped).toContainEqual({
      what: "Kafka consume by partition count",
      why: "no Kafka targets available"
    })
  })

  it("sweeps Kafka's partition count in full mode, Lossless beside kafkajs at each count", () => {
    const kafka = [1, 3, 6].flatMap((p) => [
      { name: partitionedName("kafka-raw", p), kind: "raw" as const },
      { name: partitionedName("kafka-runtime", p), kind: "runtime" as const }
    ])
    const full = plan("full", [...all, ...kafka])
    const c = comparisonOf(full.comparisons, "kafka consume 1 KiB on the emulator by partition count")
    const targets = c.scenarios.map((s) => s.target)
    expect(targets).toEqual([
      "kafka-raw-1p",
      "kafka-runtime-1p",
      "kafka-raw",
      "kafka-runtime",
      "kafka-raw-6p",
      "kafka-runtime-6p"
    ])
    for (const s of c.scenarios.filter((s) => s.target.startsWith("kafka-runtime"))) {
      const raw = c.scenarios.find((r) => r.target === s.target.replace("runtime", "raw"))
      expect(s).toMatchObject({ operation: "consume", versus: raw?.id, prefetch: raw?.prefetch })
    }
    expect(c.baseline).toBe(c.scenarios[0]?.id)
    expect(full.skipped.map((s) => s.what)).not.toContain("Kafka consume by partition count")
    const quick = plan("quick", [...all, ...kafka])
    expect(quick.comparisons.some((c) => c.name.includes("by partition count"))).toBe(false)
    expect(quick.skipped).toContainEqual({ what: "Kafka consume by partition count", why: "full mode only: --full" })
  })
})
