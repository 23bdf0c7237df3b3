/**
 * Chaos on Kafka, against the in-process emulator with the real kafkajs
 * client over TCP. 3,000 messages go out through the core publisher,
 * stamped for loss detection, while the broker fails produce requests
 * (leader moved, replication timed out), loses produce responses after
 * storing the records, fails offset commits, delays fetches, drops every
 * connection, and one of two consumers of the deduped group is killed in the
 * middle of its handlers (running handlers interrupted, no time to finish; a
 * replacement joins and the group rebalances). Then, for every confirmed send:
 *
 * - the deduped group has exactly one effect: none lost, none doubled — the
 *   effect and its dedupe key are recorded in one step (an in-memory inbox,
 *   standing in for the SQL inbox);
 * - a loss detector consuming every message in a group of its own saw it,
 *   and reports no gap.
 *
 * The tally is independent of Lossless: the handlers append to a list the
 * test reads directly.
 */
import { describe, expect, it } from "@effect/vitest"
import { Consumer, LossDetector, Publisher, type Transport } from "@lossless/core"
import { KafkaTransport } from "@lossless/kafka"
import { Harness } from "@lossless/testkit"
import * as KafkaEmulator from "@lossless/testkit/kafka"
import { Deferred, Effect, Exit, Schedule, Scope } from "effect"
import { afterAll } from "vitest"
import { memoryInbox } from "./memoryInbox.ts"
import { jobTopic } from "./shared.ts"

const emulator = await KafkaEmulator.start({ autoCreateTopics: false })
afterAll(() => emulator.close())

const total = 3_000
const senders = 8
const batchSize = 10
const batchPause = "40 millis"
const groups = { inbox: "inbox", audit: "audit" } as const

// Kafka error codes the broker answers with.
const NOT_LEADER_OR_FOLLOWER = 6
const REQUEST_TIMED_OUT = 7
const COORDINATOR_NOT_AVAILABLE = 15

type Fault =
  | "produce refused: leader moved"
  | "produce responses lost"
  | "commits refused"
  | "fetches delayed"
  | "kill a consumer"
  | "connections dropped"
  | "produce refused: replication timed out"

/** The faults, in order, each when that many sends are confirmed. */
const timeline: ReadonlyArray<{ readonly at: number; readonly fault: Fault }> = [
  { at: 300, fault: "produce refused: leader moved" },
  { at: 700, fault: "produce responses lost" },
  { at: 1_100, fault: "kill a consumer" },
  { at: 1_500, fault: "commits refused" },
  { at: 1_900, fault: "fetches delayed" },
  { at: 2_200, fault: "connections dropped" },
  { at: 2_500, fault: "produce refused: replication timed out" }
]

describe("chaos on Kafka (emulator), one group deduped through an inbox", () => {
  it.live(
    "3,000 sends through refused and lost produce requests, refused commits, dropped connections and a killed consumer: none lost, no effect doubled, no gap",
    () =>
      Effect.gen(function* () {
        const began = Date.now()
        const testScope = yield* Effect.scope
        const topic = Harness.uniqueName("e2e-chaos")
        const Jobs = jobTopic(topic)
        yield* Harness.declare(
          [topic],
          [groups.inbox, groups.audit].map((g) => [topic, g] as const)
        )

        const gapsReported: Array<LossDetector.Gap> = []
        const detector = yield* LossDetector.make({
          sweepInterval: "1 second",
          onLoss: (gap) => Effect.sync(() => gapsReported.push(gap))
        })
        const audited = new Map<string, number>()
        yield* Consumer.start({
          topic: Jobs,
          group: groups.audit,
          lossDetector: detector,
          concurrency: 4,
          prefetch: 64,
          ordering: "none",
          handler: (message) =>
            Effect.sync(() => {
              audited.set(message.id, (audited.get(message.id) ?? 0) + 1)
            })
        })

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
        const sends = { confirmed: new Set<string>(), failed: 0, resent: 0, next: 0 }
        const sender = Effect.gen(function* () {
          while (sends.next < total) {
            const from = sends.next
            const size = Math.min(batchSize, total - from)
            sends.next += size
            const batch = Array.from({ length: size }, (_, i) => ({
              payload: { n: from + i },
              key: `k${(from + i) % 32}`
            }))
            yield* publisher.sendBatch(Jobs, batch).pipe(
              Effect.flatMap((sent) =>
                Effect.sync(() => {
                  for (const s of sent) {
                    sends.confirmed.add(s.id)
                    if (s.attempts > 1) sends.resent++
                  }
                })
              ),
              Effect.catchTag("SendFailed", (failed) =>
                Effect.sync(() => {
                  for (const id of failed.confirmed) sends.confirmed.add(id)
                  sends.failed += failed.failures.length
                })
              ),
              Effect.orDie
            )
            yield* Effect.sleep(batchPause)
          }
        })

        let killed: { readonly name: string; readonly inflight: number } | undefined
        const strike = (fault: Fault): Effect.Effect<string, unknown, Transport.Transport> => {
          switch (fault) {
            case "produce refused: leader moved":
              // More refusals than kafkajs retries one request: the publisher's schedule has to resend.
              return Effect.sync(() => emulator.faults.failNext("Produce", NOT_LEADER_OR_FOLLOWER, 8)).pipe(
                Effect.as("the next 8 produce requests answered NOT_LEADER_OR_FOLLOWER")
              )
            case "produce refused: replication timed out":
              return Effect.sync(() => emulator.faults.failNext("Produce", REQUEST_TIMED_OUT, 8)).pipe(
                Effect.as("the next 8 produce requests answered REQUEST_TIMED_OUT")
              )
            case "produce responses lost":
              return Effect.sync(() => emulator.faults.dropNext("Produce", { count: 5, applied: true })).pipe(
                Effect.as("the next 5 produce requests stored, then their connections closed unanswered")
              )
            case "commits refused":
              return Effect.sync(() => emulator.faults.failNext("OffsetCommit", COORDINATOR_NOT_AVAILABLE, 6)).pipe(
                Effect.as("the next 6 offset commits answered COORDINATOR_NOT_AVAILABLE")
              )
            case "fetches delayed":
              return Effect.sync(() => emulator.faults.delayNext("Fetch", 400, 6)).pipe(
                Effect.as("the next 6 fetch responses delayed by 400 ms")
              )
            case "connections dropped":
              return Effect.sync(() => emulator.faults.dropConnections()).pipe(
                Effect.as("every client connection closed")
              )
            case "kill a consumer":
              return Effect.gen(function* () {
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
                killed = { name: victim.name, inflight: running }
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
          }
        }
        const strikes: Array<{ readonly fault: Fault; readonly confirmed: number; readonly detail: string }> = []
        const chaos = Effect.forEach(
          timeline,
          ({ at, fault }) =>
            Effect.gen(function* () {
              yield* Harness.eventually(`${at} sends confirmed`, () => sends.confirmed.size >= at, "2 minutes")
              const confirmed = sends.confirmed.size
              const detail = yield* strike(fault)
              strikes.push({ fault, confirmed, detail })
              yield* Effect.log(`chaos fault at ${confirmed} confirmed: ${fault}: ${detail}`)
            }),
          { discard: true }
        )
        yield* Effect.all(
          [
            Effect.forEach(Array.from({ length: senders }), () => sender, { concurrency: "unbounded", discard: true }),
            chaos
          ],
          { concurrency: "unbounded", discard: true }
        )

        // Drain: every confirmed message with an effect in the deduped group and audited.
        const effectIds = () => new Set(effects.map((e) => e.id))
        yield* Harness.eventually(
          "every confirmed send handled in both groups",
          () => {
            const handled = effectIds()
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
        const partitions = emulator.topics().find((t) => t.name === topic)?.partitions ?? 0
        let stored = 0
        for (let p = 0; p < partitions; p++) stored += emulator.records(topic, p).length
        yield* Effect.log(
          [
            `chaos tally (${((Date.now() - began) / 1000).toFixed(1)} s):`,
            `  sent ${total}, confirmed ${sends.confirmed.size}, failed ${sends.failed}, re-sent ${sends.resent}, stored by the broker ${stored}`,
            ...strikes.map((s) => `  at ${s.confirmed} confirmed: ${s.fault}: ${s.detail}`),
            `  inbox group: ${counts.size} messages with an effect, ${lost.length} lost, ${doubled.length} doubled, ${inbox.found()} redeliveries absorbed`,
            `  detector: ${report.observed} observed, lost ${report.lost}, pending ${report.pending}, duplicates ${report.duplicates}, gaps ${report.gaps.length}`
          ].join("\n")
        )

        expect(sends.failed).toBe(0)
        expect(sends.confirmed.size).toBe(total)
        expect(strikes.map((s) => s.fault)).toEqual(timeline.map((t) => t.fault))
        expect(strikes.every((s) => s.confirmed < total)).toBe(true)
        // Refusals beyond kafkajs's own retries were resent by the publisher.
        expect(sends.resent).toBeGreaterThan(0)
        expect(stored).toBeGreaterThanOrEqual(total)
        expect(killed?.inflight).toBeGreaterThan(0)
        expect(lost).toEqual([])
        expect(doubled).toEqual([])
        expect(confirmed.filter((id) => !audited.has(id))).toEqual([])
        expect({ lost: report.lost, late: report.late, pending: report.pending, gaps: report.gaps }).toEqual({
          lost: 0,
          late: 0,
          pending: 0,
          gaps: []
        })
        expect(gapsReported).toEqual([])
        for (const c of consumers) yield* Scope.close(c.scope, Exit.void)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          KafkaTransport.layer({
            url: `kafka://${emulator.brokers.join(",")}`,
            heartbeatInterval: "300 millis",
            sessionTimeout: "6 seconds",
            maxWaitTime: "100 millis",
            requestTimeout: "5 seconds",
            logLevel: "nothing"
          })
        )
      ),
    180_000
  )
})
