/**
 * Runs a plan: per comparison, warm-up rounds, then measured rounds with the
 * comparison's scenarios interleaved (A B, B A, A B, ...) so slow drift of the
 * machine (thermal, other load, GC growth) falls on all of them alike. Ratios
 * against the baseline are taken per round, from neighbouring measurements,
 * then summarized. A scenario may name its own reference (`versus`) and a
 * requirement on its cost against it (`maxCost`).
 *
 * The timed loop keeps harness work per message to a few array writes: messages
 * and payloads are built before the clock starts, publisher fibers are
 * per scenario (not per message), and send times and samples live in typed arrays.
 */
import { Cause, Deferred, Effect, Exit, Fiber, Latch, Scope } from "effect"
import * as Pacing from "./Pacing.ts"
import { type Comparison, consumes, type Plan, type Scenario } from "./Scenario.ts"
import * as Stats from "./Stats.ts"
import { type BenchClient, BenchError, type Target } from "./targets/Target.ts"

/** What one round measured. */
export interface RoundSample {
  /** Messages published and acked. */
  readonly messages: number
  readonly elapsedMs: number
  /** Messages per second, end to end (first publish to last ack). */
  readonly throughput: number
  /** Publish-to-receipt latency, milliseconds. */
  readonly latencyMs: Stats.Latency
  /** Highest heap use during the round above the heap use at its start (after a GC when available), MiB. */
  readonly heapPeakDeltaMiB: number
  /** Heap still in use after the round and a GC, above the heap before it, MiB (leaks, retained broker state). */
  readonly heapRetainedMiB: number
  /** Highest resident set size seen during the round, MiB. */
  readonly rssPeakMiB: number
  /** Messages received more than once (redeliveries). */
  readonly duplicates: number
  /**
   * Process CPU time (user + system, all threads) from first publish to last
   * ack per message, microseconds. Less disturbed by other load on the machine than msg/s.
   */
  readonly cpuMicrosPerMessage: number
  /** The most messages published and not yet settled at once during the round (0 for a consume round). */
  readonly peakInFlight: number
  /** CPU time of the target's other server (`BenchClient.serverCpuSeconds`) per message, microseconds; `NaN` without one. */
  readonly serverCpuMicrosPerMessage: number
}

/** A scenario's throughput as a multiple of another's of the same comparison, for information (no requirement). */
export interface Relative {
  /** The `id` of the scenario divided by. */
  readonly versus: string
  /** The per-round ratios; absent when either scenario has no rounds. */
  readonly ratio: Stats.Summary | undefined
}

export interface ScenarioResult {
  readonly comparison: string
  readonly scenario: Scenario
  readonly isBaseline: boolean
  readonly rounds: ReadonlyArray<RoundSample>
  /** Messages per second over the rounds. */
  readonly throughput: Stats.Summary
  /** Medians over the rounds of each round's p50/p95/p99; `max` is the largest of all. */
  readonly latencyMs: Omit<Stats.Latency, "count">
  /** Median over the rounds. */
  readonly heapPeakDeltaMiB: number
  /** Median over the rounds. */
  readonly heapRetainedMiB: number
  /** Largest over the rounds. */
  readonly rssPeakMiB: number
  readonly duplicates: number
  /** Median over the rounds. */
  readonly cpuMicrosPerMessage: number
  /** Median over the rounds of the most messages in flight at once. */
  readonly peakInFlight: number
  /** Median over the rounds; `NaN` when the target has no other server. */
  readonly serverCpuMicrosPerMessage: number
  /** Median over the rounds of peak heap growth per message in flight, bytes (`NaN` when nothing was in flight). */
  readonly heapPerInFlightBytes: number
  /**
   * Throughput divided by that of `baseline` (the scenario's `versus`, else the
   * comparison's baseline) in the same round, over the rounds; absent for the baseline.
   */
  readonly ratio: (Stats.Summary & { readonly baseline: string }) | undefined
  /** CPU µs/msg divided by that of the same reference in the same round, over the rounds. */
  readonly cpuRatio: Stats.Summary | undefined
  /** Whether the ratio meets the scenario's `maxCost`, when it has one and a ratio. */
  readonly requirement: Requirement | undefined
  /** The scenario's `atLeast` requirements, each with the ratio it is judged by. */
  readonly atLeast: ReadonlyArray<MinRatio>
  /** Its throughput against each scenario of `compareTo`, round by round. */
  readonly relative: ReadonlyArray<Relative>
  /** Why it has no rounds, if it failed. */
  readonly error: string | undefined
}

/** A scenario's throughput cost against its reference, judged by its requirement. */
export interface Requirement {
  /** The most throughput it may lose, as a fraction. */
  readonly maxCost: number
  /** Throughput lost: 1 − the median ratio (negative when faster). */
  readonly cost: number
  /** `cost` is at most `maxCost`. */
  readonly met: boolean
  /** Some rounds' ratios lie on each side of the limit: the verdict is within the rounds' noise. */
  readonly straddles: boolean
}

/** A scenario's throughput as a multiple of another's, judged against the least multiple required. */
export interface MinRatio {
  /** The `id` of the scenario divided by. */
  readonly versus: string
  /** The least ratio required. */
  readonly atLeast: number
  /** The per-round ratios; absent when either scenario has no rounds. */
  readonly ratio: Stats.Summary | undefined
  /** The median ratio is at least `atLeast`; absent without a ratio. */
  readonly met: boolean | undefined
  /** Some rounds' ratios lie on each side of `atLeast`. */
  readonly straddles: boolean
  /** `versus` is the scenario's own reference, the one its "vs baseline" ratio is taken against. */
  readonly ownReference: boolean
}

/** Judges per-round throughput ratios against the least multiple required, by their median. */
export const assessAtLeast = (
  versus: string,
  ratio: Stats.Summary | undefined,
  atLeast: number,
  ownReference = false
): MinRatio => ({
  versus,
  atLeast,
  ownReference,
  ratio,
  met: ratio === undefined ? undefined : ratio.median >= atLeast,
  straddles: ratio !== undefined && ratio.min < atLeast && ratio.max >= atLeast
})

/** Judges per-round throughput ratios against a cost limit, by their median. */
export const assess = (ratio: Stats.Summary, maxCost: number): Requirement => {
  // Compared as ratios: 1 - 0.95 is not exactly 0.05 in floating point.
  const floor = 1 - maxCost
  return {
    maxCost,
    cost: 1 - ratio.median,
    met: ratio.median >= floor,
    straddles: ratio.min < floor && ratio.max >= floor
  }
}

export type Progress = (line: string) => void

const MiB = 1024 * 1024

let collectGarbage: () => void = () => {}
let canCollect = false

/** Has every round start with a full collection, so rounds start from a similar heap. */
export const useGarbageCollector = (gc: () => void): void => {
  collectGarbage = gc
  canCollect = true
}

/** Samples heap and RSS every few milliseconds on one shared timer while a round runs. */
const memorySampler = Effect.acquireRelease(
  Effect.sync(() => {
    collectGarbage()
    const start = process.memoryUsage()
    const peak = { heap: start.heapUsed, rss: start.rss }
    const sample = () => {
      const now = process.memoryUsage()
      if (now.heapUsed > peak.heap) peak.heap = now.heapUsed
      if (now.rss > peak.rss) peak.rss = now.rss
    }
    const timer = setInterval(sample, 5)
    timer.unref()
    return { start, peak, sample, timer }
  }),
  (sampler) => Effect.sync(() => clearInterval(sampler.timer))
)

let topicCounter = 0

/** One round of any operation (see `Operation`). */
const measure = (
  client: BenchClient,
  scenario: Scenario,
  expectedMessages: number
): Effect.Effect<RoundSample, BenchError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const id = ++topicCounter
      const topic = `bench-${process.pid}-${id}`
      const group = `bench-${id}`
      const cleanup = client.cleanup
      // Registered before `prepare`, so a half-done prepare is cleaned up too; runs after the timing.
      if (cleanup !== undefined) yield* Effect.addFinalizer(() => Effect.ignore(cleanup(topic, group)))
      yield* client.prepare(topic, group)
      // After `prepare` (which may clean the server up), so only the round's own work is counted.
      const serverBefore = client.serverCpuSeconds === undefined ? undefined : yield* client.serverCpuSeconds

      const operation = scenario.operation
      const withConsumer = consumes(operation)
      const prefilled = operation === "consume"
      const timesLatency = operation !== "consume"
      const B = Math.max(1, scenario.batchSize)
      const C = Math.max(1, scenario.publishConcurrency)
      const maxInFlight = Math.max(1, scenario.maxInFlight)
      const rate = scenario.rate
      const paced = rate !== undefined && !prefilled
      const amount = scenario.amount
      const count = "messages" in amount ? amount.messages : 0
      const seconds = "seconds" in amount ? amount.seconds : 0
      const byCount = "messages" in amount
      if (prefilled && !byCount) {
        return yield* new BenchError({ message: "a consume round needs an amount of messages, not of time" })
      }
      if (paced && !byCount) {
        return yield* new BenchError({ message: "a paced round needs an amount of messages, not of time" })
      }
      // Message numbers: all of them when counting; otherwise a ring wide enough
      // that a number comes round again only after its previous message was acked.
      const slots = byCount ? Math.max(1, Math.ceil(count / B)) : Math.ceil((2 * (maxInFlight + B * C)) / B)
      const total = byCount ? count : slots * B
      const payload = new Uint8Array(scenario.payloadBytes)
      for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff
      const batches: Array<Effect.Effect<void, BenchError>> = []
      const sizes: Array<number> = []
      for (let k = 0; k < slots; k++) {
        const size = Math.min(B, total - k * B)
        sizes.push(size)
        batches.push(client.prepareBatch(topic, k * B, size, payload))
      }
      const ring = slots * B
      const sentAt = new Float64Array(ring)
      const seen = new Uint8Array(ring)
      // Per slot, its messages not yet received, when slots are reused (rounds by time with a consumer).
      const unreceived = withConsumer && !byCount ? new Int32Array(slots) : undefined
      // Sized from the previous round when running by time, so it rarely grows while timed.
      const latencies = new Stats.SampleBuffer(
        !timesLatency ? 1 : byCount ? total : Math.ceil(Math.max(1 << 16, expectedMessages * 1.25))
      )

      let dispatched = 0
      let peakInFlight = 0
      let acked = 0
      let duplicates = 0
      let target = byCount ? total : Number.POSITIVE_INFINITY
      let startedAt = 0
      let endedAt = 0
      let cpuStart: NodeJS.CpuUsage | undefined
      let cpu: NodeJS.CpuUsage | undefined
      const start = () => {
        cpuStart = process.cpuUsage()
        startedAt = performance.now()
      }
      const end = () => {
        if (endedAt !== 0) return
        endedAt = performance.now()
        cpu = process.cpuUsage(cpuStart)
      }
      let gateClosed = false
      const gate = Latch.makeUnsafe(true)
      const lowWater = Math.floor(maxInFlight / 2)
      const finished = Deferred.makeUnsafe<void>()

      /** `n` more messages acked (or confirmed, when nothing consumes); `false` once the round is complete. */
      const settle = (n: number): boolean => {
        acked += n
        if (gateClosed && dispatched - acked <= lowWater) {
          gateClosed = false
          gate.openUnsafe()
        }
        if (acked >= target) {
          end()
          Deferred.doneUnsafe(finished, Effect.void)
          return false
        }
        return true
      }

      const sink = {
        onReceive: (seq: number, since?: number) => {
          // A consume round's clock starts at its first delivery: subscribing is not what it measures.
          if (startedAt === 0) start()
          if (timesLatency) {
            const from = since === undefined || Number.isNaN(since) ? (sentAt[seq] as number) : since
            latencies.push(performance.now() - from)
          }
          if (seen[seq] === 1) duplicates++
          else {
            seen[seq] = 1
            if (unreceived !== undefined) {
              const slot = (seq / B) | 0
              unreceived[slot] = (unreceived[slot] as number) - 1
            }
          }
        },
        onSettled: () => settle(1)
      }

      if (prefilled) {
        // Filled by the target's own publish (or its `prepareFill`), before the clock and the memory sampler start.
        const fill = client.prepareFill
        const filling = fill === undefined ? batches : sizes.map((size, k) => fill(topic, k * B, size, payload))
        yield* Effect.forEach(filling, (batch) => batch, { concurrency: C, discard: true })
        dispatched = total
      }

      const sampler = yield* memorySampler
      const consumer = withConsumer
        ? yield* Effect.forkChild(
            client.consume(topic, group, scenario.prefetch, sink, { concurrency: scenario.concurrency })
          )
        : undefined
      yield* Effect.yieldNow

      let nextBatch = 0
      let stop = false
      if (!prefilled) start()
      const deadline = byCount ? Number.POSITIVE_INFINITY : startedAt + seconds * 1000
      const publisher = Effect.gen(function* () {
        while (!stop) {
          while (dispatched - acked >= maxInFlight) {
            gateClosed = true
            gate.closeUnsafe()
            yield* gate.await
          }
          // The batch number is taken only now, together with the dispatch: a publisher
          // that held one while waiting could be lapped by the others and reuse a slot
          // whose messages are still in flight (counted as duplicates).
          const k = nextBatch
          if (stop || (byCount ? k >= slots : performance.now() >= deadline)) {
            stop = true
            return
          }
          nextBatch++
          const slot = k % slots
          const size = sizes[slot] as number
          const first = slot * B
          if (unreceived !== undefined) {
            // A consumer may deliver some messages far behind the rest (unordered, concurrent
            // handlers): a slot is reused only once every message of its previous turn arrived,
            // or a late one would be taken for a duplicate of its successor. Rarely waits.
            while ((unreceived[slot] as number) > 0) yield* Effect.sleep(1)
            unreceived[slot] = size
          }
          if (paced) {
            // By count, so slots are never reused: holding this one while waiting for its time is safe.
            const due = Pacing.dueAt(startedAt, first, rate as number)
            // Timers have whole-millisecond resolution and may fire early against this clock: wait until it is due.
            for (
              let wait = Pacing.waitFor(due, performance.now());
              wait > 0;
              wait = Pacing.waitFor(due, performance.now())
            )
              yield* Effect.sleep(Math.ceil(wait))
            // From when it was due: a late publish's delay is part of its latency.
            sentAt.fill(due, first, first + size)
          } else {
            sentAt.fill(performance.now(), first, first + size)
          }
          seen.fill(0, first, first + size)
          dispatched += size
          if (dispatched - acked > peakInFlight) peakInFlight = dispatched - acked
          yield* batches[slot] as Effect.Effect<void, BenchError>
          if (consumer === undefined) {
            // Nothing consumes: the confirm is the end of these messages' way.
            const now = performance.now()
            for (let i = 0; i < size; i++) latencies.push(now - (sentAt[first + i] as number))
            settle(size)
          }
        }
      })
      const publishers = Effect.forEach(Array.from({ length: C }), () => publisher, {
        concurrency: "unbounded",
        discard: true
      })

      const published = prefilled
        ? Effect.void
        : Effect.andThen(
            publishers,
            Effect.sync(() => {
              if (!byCount) target = dispatched
              if (acked >= target) {
                end()
                Deferred.doneUnsafe(finished, Effect.void)
              }
            })
          )
      const completed =
        consumer === undefined
          ? Deferred.await(finished)
          : Effect.raceFirst(
              Deferred.await(finished),
              Effect.flatMap(Effect.exit(Fiber.join(consumer)), (exit) =>
                Deferred.isDoneUnsafe(finished)
                  ? Effect.void
                  : Effect.fail(
                      new BenchError({
                        message: Exit.isFailure(exit)
                          ? `consumer failed: ${Cause.pretty(exit.cause)}`
                          : `consumer stopped after ${acked} of ${dispatched} messages`
                      })
                    )
              )
            )
      yield* Effect.all([published, completed], { concurrency: "unbounded", discard: true })
      if (consumer !== undefined) yield* Fiber.interrupt(consumer)
      sampler.sample()
      const serverAfter = client.serverCpuSeconds === undefined ? undefined : yield* client.serverCpuSeconds

      const elapsedMs = endedAt - startedAt
      return {
        messages: acked,
        elapsedMs,
        throughput: Stats.throughput(acked, elapsedMs),
        latencyMs: Stats.latencyInPlace(latencies.view()),
        heapPeakDeltaMiB: (sampler.peak.heap - sampler.start.heapUsed) / MiB,
        heapRetainedMiB: Number.NaN,
        rssPeakMiB: sampler.peak.rss / MiB,
        duplicates,
        cpuMicrosPerMessage: cpu === undefined || acked === 0 ? Number.NaN : (cpu.user + cpu.system) / acked,
        peakInFlight,
        serverCpuMicrosPerMessage:
          serverBefore === undefined || serverAfter === undefined || acked === 0
            ? Number.NaN
            : ((serverAfter - serverBefore) * 1e6) / acked
      } satisfies RoundSample
    })
  )

/**
 * One round of a scenario, failing after the plan's timeout rather than
 * hanging. `expectedMessages` (e.g. the previous round's count) presizes buffers.
 */
export const runRound = (
  client: BenchClient,
  scenario: Scenario,
  timeoutMs: number,
  expectedMessages = 0
): Effect.Effect<RoundSample, BenchError> =>
  Effect.gen(function* () {
    collectGarbage()
    const before = process.memoryUsage().heapUsed
    const sample = yield* measure(client, scenario, expectedMessages).pipe(
      Effect.timeoutOrElse({
        duration: timeoutMs,
        orElse: () => Effect.fail(new BenchError({ message: `round timed out after ${timeoutMs} ms` }))
      })
    )
    collectGarbage()
    // Without a forced GC the difference would be mostly uncollected garbage: leave it out.
    const retained = canCollect ? (process.memoryUsage().heapUsed - before) / MiB : Number.NaN
    return { ...sample, heapRetainedMiB: retained }
  })

const fmtRate = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-")
const fmtMs = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 1 ? 3 : 2) : "-")

/** `f(a) / f(b)` of the rounds two scenarios ran side by side (round i of each), over the rounds. */
const ratiosOf = (
  rounds: ReadonlyArray<RoundSample>,
  reference: ReadonlyArray<RoundSample> | undefined,
  f: (r: RoundSample) => number
): Array<number> => {
  const out: Array<number> = []
  const n = reference === undefined ? 0 : Math.min(rounds.length, reference.length)
  for (let i = 0; i < n; i++)
    out.push(f(rounds[i] as RoundSample) / f((reference as ReadonlyArray<RoundSample>)[i] as RoundSample))
  return out
}

export const summarizeScenario = (
  comparison: Comparison,
  scenario: Scenario,
  samples: ReadonlyMap<string, ReadonlyArray<RoundSample>>,
  error: string | undefined
): ScenarioResult => {
  const isBaseline = scenario.id === comparison.baseline
  const versus = scenario.versus ?? comparison.baseline
  const rounds = samples.get(scenario.id) ?? []
  const pick = (f: (r: RoundSample) => number) => rounds.map(f)
  const reference = isBaseline ? undefined : samples.get(versus)
  const ratios = ratiosOf(rounds, reference, (r) => r.throughput)
  const cpuRatios = ratiosOf(rounds, reference, (r) => r.cpuMicrosPerMessage)
  const ratio = ratios.length > 0 ? { ...Stats.summarize(ratios), baseline: versus } : undefined
  const atLeast = (scenario.atLeast ?? []).map((required) => {
    const against = required.versus ?? versus
    const multiples = ratiosOf(rounds, samples.get(against), (r) => r.throughput)
    const summary = multiples.length > 0 ? Stats.summarize(multiples) : undefined
    return assessAtLeast(against, summary, required.ratio, against === versus)
  })
  const relative = (scenario.compareTo ?? []).map((against): Relative => {
    const multiples = ratiosOf(rounds, samples.get(against), (r) => r.throughput)
    return { versus: against, ratio: multiples.length > 0 ? Stats.summarize(multiples) : undefined }
  })
  return {
    comparison: comparison.name,
    scenario,
    isBaseline,
    rounds,
    throughput: Stats.summarize(pick((r) => r.throughput)),
    latencyMs: {
      p50: Stats.median(pick((r) => r.latencyMs.p50)),
      p95: Stats.median(pick((r) => r.latencyMs.p95)),
      p99: Stats.median(pick((r) => r.latencyMs.p99)),
      max: rounds.length === 0 ? Number.NaN : Math.max(...pick((r) => r.latencyMs.max))
    },
    heapPeakDeltaMiB: Stats.median(pick((r) => r.heapPeakDeltaMiB)),
    heapRetainedMiB: Stats.median(pick((r) => r.heapRetainedMiB)),
    rssPeakMiB: rounds.length === 0 ? Number.NaN : Math.max(...pick((r) => r.rssPeakMiB)),
    duplicates: pick((r) => r.duplicates).reduce((a, b) => a + b, 0),
    cpuMicrosPerMessage: Stats.median(pick((r) => r.cpuMicrosPerMessage)),
    peakInFlight: Stats.median(pick((r) => r.peakInFlight)),
    serverCpuMicrosPerMessage: Stats.median(pick((r) => r.serverCpuMicrosPerMessage)),
    heapPerInFlightBytes: Stats.median(pick((r) => Pacing.heapPerInFlight(r.heapPeakDeltaMiB * MiB, r.peakInFlight))),
    ratio,
    cpuRatio: cpuRatios.length > 0 ? Stats.summarize(cpuRatios) : undefined,
    requirement: ratio === undefined || scenario.maxCost === undefined ? undefined : assess(ratio, scenario.maxCost),
    atLeast,
    relative,
    error
  }
}

/**
 * Runs one comparison: opens a client per target it uses, warms every
 * scenario up, then runs the measured rounds interleaved. A scenario that
 * fails is reported with its error; the others go on.
 */
export const runComparison = (
  comparison: Comparison,
  plan: Plan,
  targets: ReadonlyMap<string, Target>,
  progress: Progress
): Effect.Effect<ReadonlyArray<ScenarioResult>> =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const clients = new Map<string, BenchClient>()
    const errors = new Map<string, string>()
    const samples = new Map<string, Array<RoundSample>>(comparison.scenarios.map((s) => [s.id, []]))
    const lastCount = new Map<string, number>()

    // Before any client opens, and released after they all closed (the scope closes in reverse).
    const exclusives = new Set(comparison.scenarios.flatMap((s) => targets.get(s.target)?.exclusive ?? []))
    for (const exclusive of exclusives) yield* Scope.provide(scope)(exclusive(progress))

    for (const scenario of comparison.scenarios) {
      if (clients.has(scenario.target)) continue
      const target = targets.get(scenario.target)
      const opened =
        target === undefined
          ? Exit.fail(new BenchError({ message: `unknown target ${scenario.target}` }))
          : yield* Effect.exit(Scope.provide(scope)(target.open))
      if (Exit.isSuccess(opened)) clients.set(scenario.target, opened.value)
      else progress(`  ${scenario.target}: could not open: ${Cause.pretty(opened.cause)}`)
    }

    const runOne = (scenario: Scenario, what: string) =>
      Effect.gen(function* () {
        if (errors.has(scenario.id)) return
        const client = clients.get(scenario.target)
        if (client === undefined) {
          errors.set(scenario.id, `target ${scenario.target} could not be opened`)
          return
        }
        const exit = yield* Effect.exit(runRound(client, scenario, plan.roundTimeoutMs, lastCount.get(scenario.id)))
        if (Exit.isFailure(exit)) {
          const message = Cause.pretty(exit.cause).split("\n")[0] ?? "failed"
          errors.set(scenario.id, message)
          progress(`  ${what} ${scenario.label}: FAILED ${message}`)
          return
        }
        const r = exit.value
        lastCount.set(scenario.id, r.messages)
        if (what.startsWith("round")) samples.get(scenario.id)?.push(r)
        progress(
          `  ${what.padEnd(11)} ${scenario.label.padEnd(52)} ${fmtRate(r.throughput).padStart(11)} msg/s` +
            `  p50 ${fmtMs(r.latencyMs.p50)} ms  p99 ${fmtMs(r.latencyMs.p99)} ms  heap +${r.heapPeakDeltaMiB.toFixed(1)} MiB` +
            `  CPU ${r.cpuMicrosPerMessage.toFixed(1)} µs/msg`
        )
      })

    progress(`${comparison.name} (${comparison.scenarios.length} scenarios, baseline ${comparison.baseline})`)
    for (let w = 0; w < (comparison.warmupRounds ?? plan.warmupRounds); w++) {
      for (const scenario of comparison.scenarios) yield* runOne(scenario, `warm-up ${w + 1}`)
    }
    const rounds = comparison.rounds ?? plan.rounds
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? comparison.scenarios : [...comparison.scenarios].reverse()
      for (const scenario of order) yield* runOne(scenario, `round ${r + 1}/${rounds}`)
    }
    yield* Scope.close(scope, Exit.void)

    return comparison.scenarios.map((scenario) =>
      summarizeScenario(comparison, scenario, samples, errors.get(scenario.id))
    )
  })

/** Runs every comparison of the plan in order. */
export const runPlan = (
  plan: Plan,
  targets: ReadonlyMap<string, Target>,
  progress: Progress
): Effect.Effect<ReadonlyArray<ScenarioResult>> =>
  Effect.map(
    Effect.forEach(plan.comparisons, (comparison) => runComparison(comparison, plan, targets, progress)),
    (results) => results.flat()
  )
