import { expect, it } from "@effect/vitest"
import { Consumer, DeadLetter, PermanentFailure, Publisher, RetryPolicy, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Harness } from "@lossless/testkit"
import { Duration, Effect, Exit, Fiber, Latch, Layer, Schedule, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"

const Order = Schema.Struct({ id: Schema.String, n: Schema.Number })
const Orders = Topic.make("orders", Order)
const group = "billing"

const layer = Publisher.layer({ retry: Schedule.recurs(0) }).pipe(Layer.provideMerge(MemoryTransport.layerWithBroker()))
const stats = MemoryTransport.Broker.useSync((b) => b.stats("orders", group)!)
/** Lets forked fibers run until they block. */
const settle = Effect.gen(function* () {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})
const publish = (n: number, key?: (i: number) => string) =>
  Publisher.sendBatch(
    Orders,
    Array.from({ length: n }, (_, i) => ({ payload: { id: `o-${i}`, n: i }, key: key?.(i) }))
  )
const declare = Harness.declare(["orders"], [["orders", group]])

it.effect("a delivery is acked only after the handler's effect has finished", () =>
  Effect.gen(function* () {
    yield* declare
    const release = yield* Latch.make()
    let finished = 0
    yield* Consumer.start({
      topic: Orders,
      group,
      handler: () =>
        release.await.pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              finished++
            })
          )
        )
    })
    yield* publish(1)
    yield* settle
    expect(yield* stats).toMatchObject({ ready: 0, inflight: 1 })
    yield* release.open
    yield* settle
    expect(finished).toBe(1)
    expect(yield* stats).toMatchObject({ ready: 0, inflight: 0, delayed: 0, deadLetters: 0 })
  }).pipe(Effect.provide(layer))
)

it.effect("a failing handler is retried at once, then later on the schedule, then dead-lettered with the reason", () =>
  Effect.gen(function* () {
    yield* declare
    const calls: Array<number> = []
    yield* Consumer.start({
      topic: Orders,
      group,
      retry: { immediate: 1, delayed: Schedule.exponential("1 minute").pipe(Schedule.upTo({ times: 2 })) },
      handler: (_, context) =>
        Effect.suspend(() => {
          calls.push(context.attempt)
          return Effect.fail(new Error("ledger unavailable"))
        })
    })
    yield* publish(1)
    yield* settle
    // Attempt 1: the first run and one immediate retry, then handed back for 1 minute.
    expect(calls).toEqual([1, 1])
    expect(yield* stats).toMatchObject({ delayed: 1, inflight: 0 })
    yield* TestClock.adjust("59 seconds")
    yield* settle
    expect(calls).toEqual([1, 1])
    yield* TestClock.adjust("1 second")
    yield* settle
    expect(calls).toEqual([1, 1, 2, 2])
    // The second delayed retry waits twice as long.
    yield* TestClock.adjust("2 minutes")
    yield* settle
    expect(calls).toEqual([1, 1, 2, 2, 3, 3])
    // The schedule allows two delayed retries: attempt 3 was the last.
    expect(yield* stats).toMatchObject({ delayed: 0, inflight: 0, ready: 0, deadLetters: 1 })
    const dead = yield* Harness.subscribe("orders", group, { source: "dead-letters" })
    const letter = yield* dead.next()
    const reason = DeadLetter.reason(letter.envelope)
    expect(reason?.attempt).toBe(3)
    expect(reason?.originalTopic).toBe("orders")
    expect(reason?.error).toContain("retries exhausted after 3 attempt(s)")
    expect(reason?.error).toContain("ledger unavailable")
  }).pipe(Effect.provide(layer))
)

it.effect("a permanent failure goes to the dead letters at once, without retries", () =>
  Effect.gen(function* () {
    yield* declare
    let calls = 0
    yield* Consumer.start({
      topic: Orders,
      group,
      handler: () =>
        Effect.suspend(() => {
          calls++
          return Effect.fail(new PermanentFailure({ reason: "amount must be positive" }))
        })
    })
    yield* publish(1)
    yield* settle
    expect(calls).toBe(1)
    expect(yield* stats).toMatchObject({ delayed: 0, deadLetters: 1 })
    const dead = yield* Harness.subscribe("orders", group, { source: "dead-letters" })
    expect(DeadLetter.reason((yield* dead.next()).envelope)?.error).toContain("amount must be positive")
  }).pipe(Effect.provide(layer))
)

it.effect("a payload that does not decode goes to the dead letters without reaching the handler", () =>
  Effect.gen(function* () {
    yield* declare
    let calls = 0
    yield* Consumer.start({ topic: Orders, group, handler: () => Effect.sync(() => calls++) })
    yield* Harness.publishAll([Harness.envelope("orders", { payload: '{"id": 42}' })])
    yield* settle
    expect(calls).toBe(0)
    const dead = yield* Harness.subscribe("orders", group, { source: "dead-letters" })
    const reason = DeadLetter.reason((yield* dead.next()).envelope)
    expect(reason?.error).toContain("DecodeFailed")
  }).pipe(Effect.provide(layer))
)

it.effect("a handler that throws is treated as a failure and retried, not lost", () =>
  Effect.gen(function* () {
    yield* declare
    const calls: Array<number> = []
    yield* Consumer.start({
      topic: Orders,
      group,
      retry: { immediate: 0, delayed: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 3 })) },
      handler: (_, context) =>
        Effect.sync(() => {
          calls.push(context.attempt)
          if (context.attempt === 1) throw new TypeError("undefined is not a function")
        })
    })
    yield* publish(1)
    yield* settle
    yield* TestClock.adjust("1 second")
    yield* settle
    expect(calls).toEqual([1, 2])
    expect(yield* stats).toMatchObject({ ready: 0, inflight: 0, delayed: 0, deadLetters: 0 })
  }).pipe(Effect.provide(layer))
)

it.effect("at most `concurrency` handlers run at once", () =>
  Effect.gen(function* () {
    yield* declare
    const release = yield* Latch.make()
    let running = 0
    let peak = 0
    yield* Consumer.start({
      topic: Orders,
      group,
      concurrency: 3,
      ordering: "none",
      handler: () =>
        Effect.gen(function* () {
          running++
          peak = Math.max(peak, running)
          yield* release.await
          running--
        })
    })
    yield* publish(10)
    yield* settle
    expect(running).toBe(3)
    yield* release.open
    yield* settle
    expect(peak).toBe(3)
    expect(yield* stats).toMatchObject({ ready: 0, inflight: 0 })
  }).pipe(Effect.provide(layer))
)

it.effect("messages with the same key are handled one at a time, in order; other keys run alongside", () =>
  Effect.gen(function* () {
    yield* declare
    const order = new Map<string, Array<number>>()
    const active = new Map<string, number>()
    let overlapSameKey = false
    let peak = 0
    let running = 0
    yield* Consumer.start({
      topic: Orders,
      group,
      concurrency: 4,
      handler: (message) =>
        Effect.gen(function* () {
          const key = message.key as string
          if ((active.get(key) ?? 0) > 0) overlapSameKey = true
          active.set(key, (active.get(key) ?? 0) + 1)
          running++
          peak = Math.max(peak, running)
          yield* Effect.sleep("10 millis")
          order.set(key, [...(order.get(key) ?? []), message.payload.n])
          active.set(key, (active.get(key) ?? 0) - 1)
          running--
        })
    })
    yield* publish(40, (i) => `customer-${i % 4}`)
    for (let i = 0; i < 20; i++) {
      yield* settle
      yield* TestClock.adjust("10 millis")
    }
    yield* settle
    expect(overlapSameKey).toBe(false)
    expect(peak).toBeGreaterThan(1)
    for (const [key, ns] of order) {
      expect(ns, key).toEqual([...ns].sort((a, b) => a - b))
      expect(ns).toHaveLength(10)
    }
  }).pipe(Effect.provide(layer))
)

it.effect("shutdown lets running handlers finish and ack, and leaves the rest for redelivery", () =>
  Effect.gen(function* () {
    yield* declare
    const handled: Array<string> = []
    const scope = yield* Scope.make()
    yield* Consumer.start({
      topic: Orders,
      group,
      concurrency: 2,
      ordering: "none",
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
    // Nothing was settled without being handled; the other eight are back in the queue.
    expect(yield* stats).toMatchObject({ ready: 8, inflight: 0, delayed: 0, deadLetters: 0 })

    const again: Array<string> = []
    yield* Consumer.start({
      topic: Orders,
      group,
      handler: (message) => Effect.sync(() => again.push(message.payload.id))
    })
    yield* settle
    Harness.assertExactlyOnce(
      Array.from({ length: 10 }, (_, i) => `o-${i}`),
      [...handled, ...again]
    )
  }).pipe(Effect.provide(layer))
)

it.effect("a handler still running at the shutdown deadline is interrupted and its message redelivered", () =>
  Effect.gen(function* () {
    yield* declare
    const scope = yield* Scope.make()
    let completed = 0
    yield* Consumer.start({
      topic: Orders,
      group,
      shutdownTimeout: "5 seconds",
      handler: () => Effect.sleep("1 hour").pipe(Effect.andThen(Effect.sync(() => completed++)))
    }).pipe(Scope.provide(scope))
    yield* publish(1)
    yield* settle
    const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
    yield* settle
    yield* TestClock.adjust("5 seconds")
    yield* Fiber.join(closing)
    expect(completed).toBe(0)
    expect(yield* stats).toMatchObject({ ready: 1, inflight: 0, deadLetters: 0 })
  }).pipe(Effect.provide(layer))
)

it.effect("the delay for each attempt comes from the retry schedule, and its end means dead letter", () =>
  Effect.gen(function* () {
    const policy = RetryPolicy.make({ delayed: Schedule.exponential("1 second").pipe(Schedule.upTo({ times: 3 })) })
    const delays = yield* Effect.forEach([1, 2, 3, 4], (attempt) => RetryPolicy.delayAfter(policy, attempt, "boom"))
    expect(delays.map((d) => (d._tag === "Some" ? Duration.toMillis(d.value) : "dead letter"))).toEqual([
      1000,
      2000,
      4000,
      "dead letter"
    ])
  })
)
