import { expect, it } from "@effect/vitest"
import { Consumer, Dedupe, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Harness } from "@lossless/testkit"
import { Effect, Exit, Fiber, Layer, Schedule, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"

const Order = Schema.Struct({ id: Schema.String })
const Orders = Topic.make("orders", Order)
const group = "billing"

const layer = Publisher.layer({ retry: Schedule.recurs(0) }).pipe(Layer.provideMerge(MemoryTransport.layerWithBroker()))
const stats = MemoryTransport.Broker.useSync((b) => b.stats("orders", group)!)
const settle = Effect.gen(function* () {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})
const ids = (n: number) => Array.from({ length: n }, (_, i) => `o-${i}`)
const publish = (n: number) =>
  Publisher.sendBatch(
    Orders,
    ids(n).map((id) => ({ payload: { id } }))
  )
const declare = Harness.declare(["orders"], [["orders", group]])

/** The store, counting its calls and every claim answer. */
const counting = (store: Dedupe.DedupeStore) => {
  const calls = { claim: 0, claimMany: 0, complete: 0, completeMany: 0, release: 0 }
  const answers: Array<Dedupe.Claim["_tag"]> = []
  const counted: Dedupe.DedupeStore = {
    name: store.name,
    claim: (key, lease) => {
      calls.claim++
      return Effect.tap(store.claim(key, lease), (c) => Effect.sync(() => answers.push(c._tag)))
    },
    claimMany: (keys, lease) => {
      calls.claimMany++
      return Effect.tap(Dedupe.claimAll(store, keys, lease), (cs) =>
        Effect.sync(() => answers.push(...cs.map((c) => c._tag)))
      )
    },
    complete: (key, token, ttl) => {
      calls.complete++
      return store.complete(key, token, ttl)
    },
    completeMany: (claims, ttl) => {
      calls.completeMany++
      return Dedupe.completeAll(store, claims, ttl)
    },
    release: (key, token) => {
      calls.release++
      return store.release(key, token)
    }
  }
  return { store: counted, calls, answers }
}

it.effect("a chunk of deliveries is claimed in one store call and recorded done in one more", () =>
  Effect.gen(function* () {
    yield* declare
    const { store, calls, answers } = counting(yield* Dedupe.memoryStore())
    const handled: Array<string> = []
    yield* publish(50)
    yield* Consumer.start({
      topic: Orders,
      group,
      prefetch: 100,
      dedupe: { store },
      handler: (message) => Effect.sync(() => handled.push(message.payload.id))
    })
    yield* settle
    Harness.assertExactlyOnce(ids(50), handled)
    expect(answers).toEqual(Array.from({ length: 50 }, () => "Acquired"))
    expect(calls.claim).toBe(0)
    expect(calls.claimMany).toBeGreaterThan(0)
    expect(calls.claimMany).toBeLessThanOrEqual(5)
    expect(calls.complete).toBe(0)
    expect(calls.completeMany).toBeLessThan(50)
    expect(yield* stats).toMatchObject({ ready: 0, inflight: 0, delayed: 0, deadLetters: 0 })
  }).pipe(Effect.provide(layer))
)

it.effect(
  "shutdown gives back the claims of deliveries it did not handle, so the next consumer handles them at once",
  () =>
    Effect.gen(function* () {
      yield* declare
      const { store, answers } = counting(yield* Dedupe.memoryStore())
      const handled: Array<string> = []
      const scope = yield* Scope.make()
      yield* Consumer.start({
        topic: Orders,
        group,
        concurrency: 2,
        prefetch: 10,
        ordering: "none",
        dedupe: { store },
        handler: (message) =>
          Effect.sleep("1 second").pipe(Effect.andThen(Effect.sync(() => handled.push(message.payload.id))))
      }).pipe(Scope.provide(scope))
      yield* publish(10)
      yield* settle
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      expect(handled).toHaveLength(2)
      expect(yield* stats).toMatchObject({ ready: 8, inflight: 0, delayed: 0, deadLetters: 0 })

      // Without the clock moving: a claim still held would answer Busy and wait out the busy delay.
      const again: Array<string> = []
      answers.length = 0
      yield* Consumer.start({
        topic: Orders,
        group,
        dedupe: { store },
        handler: (message) => Effect.sync(() => again.push(message.payload.id))
      })
      yield* settle
      expect(answers).not.toContain("Busy")
      Harness.assertExactlyOnce(ids(10), [...handled, ...again])
      expect(yield* stats).toMatchObject({ ready: 0, inflight: 0, delayed: 0, deadLetters: 0 })
    }).pipe(Effect.provide(layer))
)

it.effect("a store without batch operations is claimed key by key, with the same outcome", () =>
  Effect.gen(function* () {
    yield* declare
    const memory = yield* Dedupe.memoryStore()
    const single: Dedupe.DedupeStore = {
      name: "single",
      claim: memory.claim,
      complete: memory.complete,
      release: memory.release
    }
    const handled: Array<string> = []
    yield* publish(20)
    // Each message twice: the second copy is acked without running the handler.
    yield* publish(20)
    yield* Consumer.start({
      topic: Orders,
      group,
      dedupe: { store: single, key: (m) => (m.payload as { id: string }).id },
      handler: (message) => Effect.sync(() => handled.push(message.payload.id))
    })
    yield* settle
    yield* TestClock.adjust("5 seconds")
    yield* settle
    Harness.assertExactlyOnce(ids(20), handled)
    expect(yield* stats).toMatchObject({ ready: 0, inflight: 0, delayed: 0, deadLetters: 0 })
  }).pipe(Effect.provide(layer))
)
