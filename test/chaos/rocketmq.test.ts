/**
 * Chaos on RocketMQ, against the in-process emulator with the real client
 * over gRPC. 4,000 messages go out through the core publisher, stamped for
 * loss detection, while the proxy answers sends with flush and replica
 * timeouts (the strict transport retries them), refuses connections, ends
 * every telemetry stream and connection, and one of two consumers of the
 * deduped group is killed in the middle of its handlers (its running
 * handlers interrupted, no time to finish; a replacement takes its place).
 * Then, for every confirmed send:
 *
 * - the deduped group has exactly one effect: none lost, none doubled — the
 *   effect and its dedupe key are recorded in one step (an in-memory inbox,
 *   standing in for the SQL inbox of the RabbitMQ chaos test);
 * - a loss detector consuming every message in a group of its own saw it,
 *   and reports no gap.
 *
 * The tally is independent of Lossless: the handlers append to a list the
 * test reads directly.
 */
import { describe, expect, it } from "@effect/vitest"
import { Consumer, LossDetector, Publisher, type Transport } from "@lossless/core"
import { RocketTransport } from "@lossless/rocketmq"
import { Harness } from "@lossless/testkit"
import * as RocketEmulator from "@lossless/testkit/rocketmq"
import { Deferred, Effect, Exit, Schedule, Scope } from "effect"
import { afterAll } from "vitest"
import { memoryInbox } from "./memoryInbox.ts"
import { jobTopic } from "./shared.ts"

const { Code } = RocketEmulator
const emulator = await RocketEmulator.start()
afterAll(() => emulator.close())

const total = 4_000
const senders = 8
const batchSize = 10
const batchPause = "20 millis"
const groups = { inbox: "inbox", audit: "audit" } as const

type Fault =
  | "flush timeouts"
  | "replica timeouts"
  | "connections refused"
  | "telemetry streams dropped"
  | "connections dropped"
  | "kill a consumer"

/** The faults, in order, each when that many sends are confirmed. */
const timeline: ReadonlyArray<{ readonly at: number; readonly fault: Fault }> = [
  { at: 400, fault: "flush timeouts" },
  { at: 900, fault: "telemetry streams dropped" },
  { at: 1_400, fault: "connections refused" },
  { at: 1_900, fault: "kill a consumer" },
  { at: 2_500, fault: "connections dropped" },
  { at: 3_100, fault: "replica timeouts" }
]

describe("chaos on RocketMQ (emulator), one group deduped through an inbox", () => {
  it.live(
    "4,000 sends through persistence timeouts, refused and dropped connections and a killed consumer: none lost, no effect doubled, no gap",
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
            case "flush timeouts":
              return Effect.sync(() => emulator.faults.sendStatus(Code.MASTER_PERSISTENCE_TIMEOUT, 25)).pipe(
                Effect.as("the next 25 sends stored without a confirmed flush")
              )
            case "replica timeouts":
              return Effect.sync(() => emulator.faults.sendStatus(Code.SLAVE_PERSISTENCE_TIMEOUT, 25)).pipe(
                Effect.as("the next 25 sends stored without a confirmed replica")
              )
            case "connections refused":
              return Effect.sync(() => emulator.faults.sendStatus("unavailable", 10)).pipe(
                Effect.as("the next 10 sends failed as unreachable")
              )
            case "telemetry streams dropped":
              return Effect.sync(() => emulator.faults.dropStreams()).pipe(Effect.as("every telemetry stream ended"))
            case "connections dropped":
              return Effect.sync(() => emulator.faults.dropStreams({ connections: true })).pipe(
                Effect.as("every stream and connection ended")
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
                yield* Scope.close(victim.scope, Exit.void)
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
                return `killed ${victim.name} with ${running} handler(s) running; consumer-3 took over`
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
        const stored = emulator.messages(topic).length
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
        // The persistence timeouts stored copies the strict transport did not count as sent: they were re-sent.
        expect(sends.resent).toBeGreaterThan(0)
        expect(stored).toBeGreaterThan(total)
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
      }).pipe(Effect.scoped, Effect.provide(RocketTransport.layer({ url: `rocketmq://${emulator.endpoint}` }))),
    180_000
  )
})
