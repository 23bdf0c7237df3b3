/**
 * Scenarios as data: what to run, on which target, with which sizes. The
 * runner reads these and nothing else, so adding a case is adding a value.
 *
 * Scenarios are grouped into comparisons. The scenarios of one comparison run
 * interleaved, round by round, and each reports its throughput as a ratio to
 * the comparison's named baseline (or another scenario it names, `versus`)
 * measured in the same rounds.
 */
import type { Kind } from "./targets/Target.ts"

/**
 * `publish-consume`: publish messages in batches (each batch awaited until
 * the broker confirmed every message) while one subscriber consumes and acks;
 * throughput is end to end, latency is from publish to receipt.
 */
export type Operation = "publish-consume"

/** How much work one round does: a fixed number of messages, or as many as fit in a time. */
export type Amount = { readonly messages: number } | { readonly seconds: number }

export interface Scenario {
  /** Unique and stable: the key in results and for `--only`. */
  readonly id: string
  /** Short human name, shown in tables and charts. */
  readonly label: string
  /** The target (see `targets/`) that runs it. */
  readonly target: string
  readonly operation: Operation
  readonly payloadBytes: number
  readonly amount: Amount
  /** Messages per publish call; the publisher awaits the confirm of each call. */
  readonly batchSize: number
  /** Publish calls in flight at once (publisher fibers). */
  readonly publishConcurrency: number
  /** The subscriber's prefetch: deliveries unsettled at once. */
  readonly prefetch: number
  /**
   * Most messages published and not yet acked; the publisher waits above it.
   * Keeps queues bounded so latency measures the pipeline, not a backlog.
   */
  readonly maxInFlight: number
  /**
   * The scenario of the same comparison whose throughput this one's is divided
   * by, round by round; the comparison's baseline when absent.
   */
  readonly versus?: string | undefined
  /**
   * A requirement: the most throughput this scenario may lose against `versus`,
   * as a fraction (0.05: at most 5 % below it). The report says whether the
   * median ratio over the rounds meets it.
   */
  readonly maxCost?: number | undefined
}

/** Scenarios run interleaved against one baseline among them. */
export interface Comparison {
  readonly name: string
  /** The `id` of the scenario the others are divided by. */
  readonly baseline: string
  readonly scenarios: ReadonlyArray<Scenario>
  /** Warm-up rounds per scenario, when this comparison needs more than the plan's. */
  readonly warmupRounds?: number | undefined
}

export type Mode = "quick" | "full"

export interface Plan {
  readonly mode: Mode
  /** Rounds per scenario run first and discarded (JIT, caches, pools). */
  readonly warmupRounds: number
  /** Measured rounds per scenario. */
  readonly rounds: number
  /** A round taking longer fails instead of hanging the run. */
  readonly roundTimeoutMs: number
  readonly comparisons: ReadonlyArray<Comparison>
}

/** A payload size as a short label: "100 B", "1 KiB", "16 KiB". */
export const formatBytes = (bytes: number): string =>
  bytes >= 1024 && bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} B`

const sizeTag = (bytes: number): string => formatBytes(bytes).replace(" ", "")

/** The batched publisher versus the naive one (publish one, await its confirm, next), end to end. */
const batchedVersusNaive = (target: string, payloadBytes: number, amount: Amount): Comparison => {
  const prefix = `${target}/publish-consume/${sizeTag(payloadBytes)}`
  const common = {
    target,
    operation: "publish-consume",
    payloadBytes,
    amount,
    prefetch: 100,
    maxInFlight: 1000
  } as const
  const batched: Scenario = {
    ...common,
    id: `${prefix}/batch-100`,
    label: `publish→consume ${formatBytes(payloadBytes)}, batch 100`,
    batchSize: 100,
    publishConcurrency: 1
  }
  const naive: Scenario = {
    ...common,
    id: `${prefix}/naive`,
    label: `publish→consume ${formatBytes(payloadBytes)}, one at a time`,
    batchSize: 1,
    publishConcurrency: 1
  }
  return {
    name: `${target} publish→consume ${formatBytes(payloadBytes)}`,
    baseline: batched.id,
    scenarios: [batched, naive]
  }
}

/** Batch size and prefetch swept around the batched default (100/100). */
const sweep = (target: string, amount: Amount): Comparison => {
  const prefix = `${target}/publish-consume/100B`
  const make = (batchSize: number, prefetch: number, publishConcurrency = 1): Scenario => ({
    id: `${prefix}/batch-${batchSize}-prefetch-${prefetch}${publishConcurrency > 1 ? `-x${publishConcurrency}` : ""}`,
    label: `batch ${batchSize}, prefetch ${prefetch}${publishConcurrency > 1 ? `, ${publishConcurrency} publishers` : ""}`,
    target,
    operation: "publish-consume",
    payloadBytes: 100,
    amount,
    batchSize,
    publishConcurrency,
    prefetch,
    maxInFlight: Math.max(1000, 4 * batchSize * publishConcurrency)
  })
  const baseline = make(100, 100)
  return {
    name: `${target} publish→consume 100 B, batch and prefetch sweep`,
    baseline: baseline.id,
    scenarios: [baseline, make(10, 100), make(1000, 100), make(100, 10), make(100, 1000), make(100, 100, 4)]
  }
}

/** A core feature the runtime targets switch on, one target each. */
export type Feature = "plain" | "loss-detection" | "memory-dedupe" | "redis-dedupe"

/** The name of the runtime target with `feature`: "runtime", "runtime+loss-detection", ... */
export const runtimeTarget = (feature: Feature): string => (feature === "plain" ? "runtime" : `runtime+${feature}`)

/**
 * What the core runtime and each of its features cost, on the memory broker.
 * The plain runtime is divided by the bare transport (the runtime's own
 * overhead); each feature by the plain runtime (the feature's cost), with the
 * project's requirement where it has one. All run interleaved in the same rounds.
 */
export const runtimeSuite = (mode: Mode, available: ReadonlySet<string>): ReadonlyArray<Comparison> => {
  if (!available.has("memory") || !available.has(runtimeTarget("plain"))) return []
  const payloadBytes = 100
  const prefix = `runtime/publish-consume/${sizeTag(payloadBytes)}`
  const common = {
    operation: "publish-consume",
    payloadBytes,
    // Longer rounds in full mode: the ratios this comparison is for are a few percent.
    amount: { seconds: mode === "quick" ? 1 : 1.5 },
    batchSize: 100,
    publishConcurrency: 1,
    prefetch: 100,
    maxInFlight: 1000
  } as const
  const transport: Scenario = {
    ...common,
    id: `${prefix}/transport`,
    label: "transport only (no runtime)",
    target: "memory"
  }
  const plain: Scenario = {
    ...common,
    id: `${prefix}/plain`,
    label: "runtime plain",
    target: runtimeTarget("plain")
  }
  const feature = (name: Feature, label: string, maxCost?: number): Array<Scenario> =>
    available.has(runtimeTarget(name))
      ? [{ ...common, id: `${prefix}/${name}`, label, target: runtimeTarget(name), versus: plain.id, maxCost }]
      : []
  return [
    {
      name: `core runtime on memory, ${formatBytes(payloadBytes)}, batch 100: what each feature costs`,
      baseline: transport.id,
      // The runtime's code paths take longer to reach steady speed than the transport's.
      warmupRounds: mode === "quick" ? 2 : 3,
      scenarios: [
        transport,
        plain,
        ...feature("loss-detection", "runtime + loss detection", 0.05),
        ...feature("memory-dedupe", "runtime + memory dedupe"),
        ...feature("redis-dedupe", "runtime + Redis dedupe", 0.1)
      ]
    }
  ]
}

/** The comparisons for one target that drives the Lossless `Transport` contract. */
export const transportSuite = (target: string, mode: Mode): ReadonlyArray<Comparison> => {
  // Rounds by time rather than count: equally long whatever the target's speed.
  const round: Amount = { seconds: 1 }
  return mode === "quick"
    ? [batchedVersusNaive(target, 100, round)]
    : [
        batchedVersusNaive(target, 100, round),
        batchedVersusNaive(target, 1024, round),
        batchedVersusNaive(target, 16 * 1024, round),
        sweep(target, round)
      ]
}

/** The plan for a run over the given available targets. */
export const plan = (mode: Mode, targets: ReadonlyArray<{ readonly name: string; readonly kind: Kind }>): Plan => ({
  mode,
  warmupRounds: mode === "quick" ? 1 : 2,
  rounds: mode === "quick" ? 5 : 7,
  roundTimeoutMs: 120_000,
  comparisons: [
    ...targets.filter((t) => t.kind === "lossless").flatMap((t) => transportSuite(t.name, mode)),
    ...runtimeSuite(mode, new Set(targets.map((t) => t.name)))
  ]
})

/**
 * Keeps the scenarios whose id or label, or whose comparison's name, contains
 * `needle` (case-insensitive). A comparison that keeps any scenario keeps its
 * baseline and the scenarios kept ones are divided by (`versus`), so its ratios
 * stay measurable.
 */
export const only = (comparisons: ReadonlyArray<Comparison>, needle: string): ReadonlyArray<Comparison> => {
  const n = needle.toLowerCase()
  return comparisons.flatMap((comparison) => {
    const whole = comparison.name.toLowerCase().includes(n)
    const matches = (s: Scenario) => whole || s.id.toLowerCase().includes(n) || s.label.toLowerCase().includes(n)
    if (!comparison.scenarios.some(matches)) return []
    const keep = new Set(comparison.scenarios.filter(matches).map((s) => s.id))
    keep.add(comparison.baseline)
    // References may chain (a feature versus the plain runtime, which is versus the baseline).
    for (let added = true; added; ) {
      added = false
      for (const s of comparison.scenarios) {
        if (keep.has(s.id) && s.versus !== undefined && !keep.has(s.versus)) {
          keep.add(s.versus)
          added = true
        }
      }
    }
    return [{ ...comparison, scenarios: comparison.scenarios.filter((s) => keep.has(s.id)) }]
  })
}
