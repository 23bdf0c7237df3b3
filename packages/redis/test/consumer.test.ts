/**
 * The core consumer deduplicating through Redis, over the memory transport:
 * racing consumers, failed handlers and crashed consumers each give one effect.
 */
import { describe, expect, it } from "@effect/vitest"
import { Consumer, Dedupe, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { RedisClient, RedisDedupeStore } from "@lossless/redis"
import { Harness, Services } from "@lossless/testkit"
import { Deferred, Duration, Effect, Exit, Layer, Schedule, Schema, Scope } from "effect"

const redis = await Services.require("redis")

const Order = Schema.Struct({ n: Schema.Number })

const layer = Publisher.layer().pipe(Layer.provideMerge(MemoryTransport.layerWithBroker()))

/** A topic, group and store no other test uses. */
const setup = Effect.gen(function* () {
  const topic = Topic.make(Harness.uniqueName("orders"), Order)
  const group = Harness.uniqueName("billing")
  yield* Harness.declare([topic.name], [[topic.name, group]])
  const client = yield* RedisClient.make(Services.url("redis"))
  const store = RedisDedupeStore.make(client, { prefix: `lossless:test:${Harness.uniqueName("consumer")}:` })
  const stats = MemoryTransport.Broker.useSync((broker) => broker.stats(topic.name, group))
  return { topic, group, store, stats }
})

/** Waits, on the real clock, until `check` holds; fails with the last value after `within`. */
const eventually = <A, E, R>(read: Effect.Effect<A, E, R>, check: (a: A) => boolean, within = Duration.seconds(2)) =>
  Effect.gen(function* () {
    const deadline = Date.now() + Duration.toMillis(within)
    let last = yield* read
    while (!check(last)) {
      if (Date.now() > deadline) throw new Error(`condition not met in time; last: ${JSON.stringify(last)}`)
      yield* Effect.sleep("20 millis")
      last = yield* read
    }
    return last
  })

const settled = { ready: 0, inflight: 0, delayed: 0, deadLetters: 0 }
const isSettled = (stats: unknown) => JSON.stringify(stats) === JSON.stringify(settled)

/** The store, recording each claim's answer (single and batched, as the consumer claims a chunk at once). */
const recording = (store: Dedupe.DedupeStore, answers: Array<string>): Dedupe.DedupeStore => ({
  ...store,
  claim: (key, lease) => Effect.tap(store.claim(key, lease), (claim) => Effect.sync(() => answers.push(claim._tag))),
  claimMany: (keys, lease) =>
    Effect.tap(Dedupe.claimAll(store, keys, lease), (claims) =>
      Effect.sync(() => answers.push(...claims.map((claim) => claim._tag)))
    )
})

describe.skipIf(!redis.available)(`the consumer with RedisDedupeStore (${redis.url})`, () => {
  it.live("two consumers racing on one message id give one effect, and both deliveries are acked", () =>
    Effect.gen(function* () {
      const { topic, group, store, stats } = yield* setup
      const answers: Array<string> = []
      let effects = 0
      const consumer = () =>
        Consumer.start({
          topic,
          group,
          concurrency: 1,
          prefetch: 1,
          dedupe: { store: recording(store, answers), busyDelay: "50 millis", ttl: "1 minute" },
          // Slow enough that the other consumer receives the duplicate meanwhile.
          handler: () =>
            Effect.andThen(
              Effect.sleep("100 millis"),
              Effect.sync(() => {
                effects++
              })
            )
        })
      yield* consumer()
      yield* consumer()
      // The same envelope twice: a producer retry after a lost confirm.
      const envelope = Harness.envelope(topic.name, { payload: JSON.stringify({ n: 1 }) })
      yield* Harness.publishAll([envelope, envelope])
      yield* eventually(stats, isSettled)
      expect(effects).toBe(1)
      expect(answers.filter((a) => a === "Acquired")).toHaveLength(1)
      // The second delivery found the claim held, then the key done.
      expect(answers).toContain("Busy")
      expect(answers.at(-1)).toBe("Done")
    }).pipe(Effect.provide(layer))
  )

  it.live("a failing handler's claim is released, so its retry runs the handler", () =>
    Effect.gen(function* () {
      const { topic, group, store, stats } = yield* setup
      const attempts: Array<number> = []
      let effects = 0
      yield* Consumer.start({
        topic,
        group,
        retry: { immediate: 0, delayed: Schedule.spaced("50 millis") },
        dedupe: { store, ttl: "1 minute" },
        handler: (_, context) =>
          Effect.suspend(() => {
            attempts.push(context.attempt)
            if (context.attempt === 1) return Effect.fail(new Error("ledger unavailable"))
            effects++
            return Effect.void
          })
      })
      const envelope = Harness.envelope(topic.name, { payload: JSON.stringify({ n: 1 }) })
      yield* Harness.publishAll([envelope])
      yield* eventually(stats, isSettled)
      expect(attempts).toEqual([1, 2])
      expect(effects).toBe(1)
      // A later duplicate is acked without running the handler.
      yield* Harness.publishAll([envelope])
      yield* eventually(stats, isSettled)
      expect(attempts).toEqual([1, 2])
    }).pipe(Effect.provide(layer))
  )

  it.live("a consumer stopped mid-handler leaves its message to another consumer, which runs it", () =>
    Effect.gen(function* () {
      const { topic, group, store, stats } = yield* setup
      const started = yield* Deferred.make<void>()
      let effects = 0
      const first = yield* Scope.make()
      yield* Consumer.start({
        topic,
        group,
        shutdownTimeout: "50 millis",
        dedupe: { store, lease: "1 minute", ttl: "1 minute" },
        handler: () => Effect.andThen(Deferred.succeed(started, undefined), Effect.never)
      }).pipe(Scope.provide(first))
      yield* Publisher.send(topic, { n: 1 })
      yield* Deferred.await(started)
      yield* Consumer.start({
        topic,
        group,
        dedupe: { store, lease: "1 minute", ttl: "1 minute" },
        handler: () =>
          Effect.sync(() => {
            effects++
          })
      })
      // Interrupted after the shutdown timeout: unsettled, and its claim released
      // (with a 1-minute lease, only the release lets the second consumer run it in time).
      yield* Scope.close(first, Exit.void)
      yield* eventually(stats, isSettled)
      expect(effects).toBe(1)
    }).pipe(Effect.provide(layer))
  )

  it.live("a crashed consumer's claim, never released, expires after its lease and the message runs again", () =>
    Effect.gen(function* () {
      const { topic, group, store, stats } = yield* setup
      const answers: Array<string> = []
      let effects = 0
      yield* Consumer.start({
        topic,
        group,
        dedupe: { store: recording(store, answers), busyDelay: "100 millis", lease: "1 minute", ttl: "1 minute" },
        handler: () =>
          Effect.sync(() => {
            effects++
          })
      })
      // A consumer claimed the message, then its process died: nothing releases the claim.
      const sent = Harness.envelope(topic.name, { payload: JSON.stringify({ n: 1 }) })
      const crashed = yield* store.claim(Dedupe.storeKey(group, sent.id), Duration.millis(300))
      expect(crashed._tag).toBe("Acquired")
      yield* Harness.publishAll([sent])
      yield* eventually(stats, isSettled)
      expect(effects).toBe(1)
      expect(answers[0]).toBe("Busy")
      expect(answers.at(-1)).toBe("Acquired")
    }).pipe(Effect.provide(layer))
  )
})
