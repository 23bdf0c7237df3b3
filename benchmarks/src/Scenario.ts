/**
 * Scenarios as data: what to run, on which target, with which sizes. The
 * runner reads these and nothing else, so adding a case is adding a value.
 *
 * Scenarios are grouped into comparisons. The scenarios of one comparison run
 * interleaved, round by round, and each reports its throughput as a ratio to
 * the comparison's named baseline measured in the same rounds.
 */

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
}

/** Scenarios run interleaved against one baseline among them. */
export interface Comparison {
  readonly name: string
  /** The `id` of the scenario the others are divided by. */
  readonly baseline: string
  readonly scenarios: ReadonlyArray<Scenario>
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
export const plan = (mode: Mode, targets: ReadonlyArray<string>): Plan => ({
  mode,
  warmupRounds: mode === "quick" ? 1 : 2,
  rounds: mode === "quick" ? 5 : 7,
  roundTimeoutMs: 120_000,
  comparisons: targets.flatMap((target) => transportSuite(target, mode))
})

/**
 * Keeps the scenarios whose id or label, or whose comparison's name, contains
 * `needle` (case-insensitive). A comparison that keeps any scenario keeps its
 * baseline too, so its ratios stay measurable.
 */
export const only = (comparisons: ReadonlyArray<Comparison>, needle: string): ReadonlyArray<Comparison> => {
  const n = needle.toLowerCase()
  return comparisons.flatMap((comparison) => {
    const whole = comparison.name.toLowerCase().includes(n)
    const matches = (s: Scenario) => whole || s.id.toLowerCase().includes(n) || s.label.toLowerCase().includes(n)
    if (!comparison.scenarios.some(matches)) return []
    return [
      { ...comparison, scenarios: comparison.scenarios.filter((s) => matches(s) || s.id === comparison.baseline) }
    ]
  })
}
