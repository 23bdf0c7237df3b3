/**
 * The chaos run shared by the brokers whose emulators live in the test's own
 * process (Kafka, RocketMQ): messages go out through the core publisher,
 * stamped for loss detection, from several senders, while the broker's
 * faults strike on a timeline and one of two consumers of the deduped group
 * is killed in the middle of its handlers (running handlers interrupted, no
 * time to finish; a replacement joins). Then the run drains and counts:
 *
 * - the deduped group's effects per confirmed send: the effect and its
 *   dedupe key are recorded in one step (an in-memory inbox, standing in for
 *   the SQL inbox of the RabbitMQ chaos test);
 * - what a loss detector consuming every message in a group of its own saw.
 *
 * The tally is independent of Lossless: the handlers append to a list the
 * run reads directly. The broker's own faults and what it stored come from
 * the caller; the caller asserts on the tally (`expectNoneLostOrDoubled` has
 * the checks every broker shares).
 */
import { expect } from "@effect/vitest"
import { Consumer, type LossDetector, Publisher, type Transport } from "@lossless/core"
import { Harness } from "@lossless/testkit"
import { Deferred, type Duration, Effect, Exit, Schedule, Scope } from "effect"
import { startAudit } from "./Audit.ts"
import { memoryInbox } from "./memoryInbox.ts"
import { makeSends, sender } from "./Senders.ts"
import { jobTopic } from "./shared.ts"

/** The fault every run has: a consumer of the deduped group killed with handlers running. */
export const killConsumer = "kill a consumer"

export interface ChaosOptions<Fault extends string> {
  /** Messages sent in all. */
  readonly total: number
  /** The pause each sender takes between its batches of 10. */
  readonly batchPause: Duration.Input
  /** The faults, in order, each when that many sends are confirmed. */
  readonly timeline: ReadonlyArray<{ readonly at: number; readonly fault: Fault | typeof killConsumer }>
  /** Applies one of the broker's faults; says what it did. */
  readonly strike: (fault: Fault) => Effect.Effect<string>
  /** How many records the broker holds for the topic (copies included). */
  readonly stored: (topic: string) => number
}

export interface ChaosTally<Fault extends string> {
  readonly total: number
  readonly confirmed: ReadonlyArray<string>
  readonly failed: number
  /** Sends confirmed only after more than one attempt. */
  readonly resent: number
  readonly strikes: ReadonlyArray<{ readonly fault: Fault | typeof killConsumer; readonly confirmed: number }>
  /** Handlers the killed consumer had running when it was killed. */
  readonly killedInflight: number
  /** Confirmed sends without an effect in the deduped group, and messages with more than one. */
  readonly lost: ReadonlyArray<string>
  readonly doubled: ReadonlyArray<string>
  /** Confirmed sends the loss detector's group never handled. */
  readonly unaudited: ReadonlyArray<string>
  readonly report: LossDetector.Report
  readonly gapsReported: ReadonlyArray<LossDetector.Gap>
  readonly stored: number
}

const senders = 8
const batchSize = 10
const groups = { inbox: "inbox", audit: "audit" } as const

/** Runs the chaos and returns its tally; logs each fault and the tally as it goes. */
export const run = <Fault extends string>(
  options: ChaosOptions<Fault>
): Effect.Effect<ChaosTally<Fault>, unknown, Transport.Transport | Scope.Scope> =>
  Effect.gen(function* () {
    const began = Date.now()
    const testScope = yield* Effect.scope
    const { total } = options
    const topic = Harness.uniqueName("e2e-chaos")
    const Jobs = jobTopic(topic)
    yield* Harness.declare(
      [topic],
      [groups.inbox, groups.audit].map((g) => [topic, g] as const)
    )

    const { detector, gapsReported, audited } = yield* startAudit(Jobs, groups.audit, 64)

    const inbox = memoryInbox()
    const effects: Array<{ readonly id: string; readonly consumer: string }> = []
    const inflight = new Map<string, number>()
    /** A consumer of the deduped group in a scope of its own, so that it can be killed. */
    const startConsumer = (name: string) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        inflight.set(name, 0)
        yield* Consumer.start({
          topic: Jobs,
          group: groups.inbox,
          concurrency: 8,
          prefetch: 32,
          ordering: "none",
          // Killed means killed: running handlers get no time to finish.
          shutdownTimeout: 0,
          dedupe: { store: inbox },
          handler: (message) =>
            Effect.gen(function* () {
              inflight.set(name, (inflight.get(name) ?? 0) + 1)
              yield* Effect.sync(() => effects.push({ id: message.id, consumer: name })).pipe(
                Effect.andThen(Effect.sleep("5 millis")),
                Effect.ensuring(Effect.sync(() => inflight.set(name, (inflight.get(name) ?? 1) - 1)))
              )
            })
        }).pipe(Scope.provide(scope))
        return { name, scope }
      })
    const consumers = [yield* startConsumer("consumer-1"), yield* startConsumer("consumer-2")]

    const publisher = yield* Publisher.make({
      lossDetection: { name: "chaos" },
      retry: Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 300 })),
      attemptTimeout: "10 seconds"
    })
    const sends = makeSends()
    const send = sender({ publisher, topic: Jobs, sends, total, batchSize, pause: options.batchPause })

    let killedInflight = 0
    const kill = Effect.gen(function* () {
      const victim = consumers[0] as (typeof consumers)[number]
      yield* Harness.eventually(
        `handlers running in ${victim.name}`,
        () => (inflight.get(victim.name) ?? 0) > 0,
        "20 seconds"
      )
      const running = inflight.get(victim.name) ?? 0
      const closing = Date.now()
      yield* Scope.close(victim.scope, Exit.void)
      const closedIn = Date.now() - closing
      killedInflight = running
      // Consumer.start's fibers are children of the fiber that starts it: give the replacement
      // a fiber of its own in the test's scope, which outlives this fault.
      const started = yield* Deferred.make<void>()
      yield* Effect.forkIn(
        Effect.gen(function* () {
          consumers.push(yield* startConsumer("consumer-3"))
          yield* Deferred.succeed(started, undefined)
          return yield* Effect.never
        }),
        testScope
      )
      yield* Deferred.await(started)
      return `killed ${victim.name} with ${running} handler(s) running (closed in ${closedIn} ms); consumer-3 joined the group`
    })

    const strikes: Array<{ readonly fault: Fault | typeof killConsumer; readonly confirmed: number }> = []
    const strikeLines: Array<string> = []
    const chaos = Effect.forEach(
      options.timeline,
      ({ at, fault }) =>
        Effect.gen(function* () {
          yield* Harness.eventually(`${at} sends confirmed`, () => sends.confirmed.size >= at, "2 minutes")
          const confirmed = sends.confirmed.size
          const detail = yield* fault === killConsumer ? kill : options.strike(fault as Fault)
          strikes.push({ fault, confirmed })
          strikeLines.push(`  at ${confirmed} confirmed: ${fault}: ${detail}`)
          yield* Effect.log(`chaos fault at ${confirmed} confirmed: ${fault}: ${detail}`)
        }),
      { discard: true }
    )
    yield* Effect.all(
      [Effect.forEach(Array.from({ length: senders }), () => send, { concurrency: "unbounded", discard: true }), chaos],
      { concurrency: "unbounded", discard: true }
    )

    // Drain: every confirmed message with an effect in the deduped group and audited.
    yield* Harness.eventually(
      "every confirmed send handled in both groups",
      () => {
        const handled = new Set(effects.map((e) => e.id))
        for (const id of sends.confirmed) if (!handled.has(id) || !audited.has(id)) return false
        return true
      },
      "90 seconds"
    )
    // Redeliveries still on their way would show up as doubled effects: give them a moment.
    yield* Effect.sleep("2 seconds")
    yield* detector.sweep

    const confirmed = [...sends.confirmed]
    const counts = new Map<string, number>()
    for (const e of effects) counts.set(e.id, (counts.get(e.id) ?? 0) + 1)
    const lost = confirmed.filter((id) => !counts.has(id))
    const doubled = [...counts].filter(([, n]) => n > 1).map(([id]) => id)
    const report = yield* detector.report
    const stored = options.stored(topic)
    yield* Effect.log(
      [
        `chaos tally (${((Date.now() - began) / 1000).toFixed(1)} s):`,
        `  sent ${total}, confirmed ${sends.confirmed.size}, failed ${sends.failed}, re-sent ${sends.resent}, stored by the broker ${stored}`,
        ...strikeLines,
        `  inbox group: ${counts.size} messages with an effect, ${lost.length} lost, ${doubled.length} doubled, ${inbox.found()} redeliveries absorbed`,
        `  detector: ${report.observed} observed, lost ${report.lost}, pending ${report.pending}, duplicates ${report.duplicates}, gaps ${report.gaps.length}`
      ].join("\n")
    )
    for (const c of consumers) yield* Scope.close(c.scope, Exit.void)
    return {
      total,
      confirmed,
      failed: sends.failed,
      resent: sends.resent,
      strikes,
      killedInflight,
      lost,
      doubled,
      unaudited: confirmed.filter((id) => !audited.has(id)),
      report,
      gapsReported,
      stored
    }
  })

/**
 * What every chaos run must show: every send confirmed, every fault struck
 * before the last send, the killed consumer had handlers running, and
 * nothing lost, doubled, unaudited or reported as a gap.
 */
export const expectNoneLostOrDoubled = <Fault extends string>(
  tally: ChaosTally<Fault>,
  timeline: ChaosOptions<Fault>["timeline"]
): void => {
  expect(tally.failed).toBe(0)
  expect(tally.confirmed.length).toBe(tally.total)
  expect(tally.strikes.map((s) => s.fault)).toEqual(timeline.map((t) => t.fault))
  expect(tally.strikes.every((s) => s.confirmed < tally.total)).toBe(true)
  expect(tally.killedInflight).toBeGreaterThan(0)
  expect(tally.lost).toEqual([])
  expect(tally.doubled).toEqual([])
  expect(tally.unaudited).toEqual([])
  const { report } = tally
  expect({ lost: report.lost, late: report.late, pending: report.pending, gaps: report.gaps }).toEqual({
    lost: 0,
    late: 0,
    pending: 0,
    gaps: []
  })
  expect(tally.gapsReported).toEqual([])
}
