import { expect, it } from "@effect/vitest"
import { Consumer, type Dedupe, Message, Publisher, StoreUnavailable, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Harness } from "@lossless/testkit"
import { Effect, Layer, Schedule, Schema, Semaphore } from "effect"
import { TestClock } from "effect/testing"

const Orders = Topic.make("orders", Schema.Struct({ id: Schema.String }))
const group = "billing"
const layer = Publisher.layer({ retry: Schedule.recurs(0) }).pipe(Layer.provideMerge(MemoryTransport.layerWithBroker()))
const stats = MemoryTransport.Broker.useSync((b) => b.stats("orders", group)!)
const settle = Effect.gen(function* () {
  for (let i = 0; i < 30; i++) yield* Effect.yieldNow
})

/**
 * An inbox over a set, with one lock standing in for the database's
 * transaction: the key is kept only when the handler succeeds.
 */
const setInbox = Effect.gen(function* () {
  const done = new Set<string>()
  const lock = yield* Semaphore.make(1)
  let down = false
  const inbox: Dedupe.Inbox = {
    name: "set",
    once: (key, handle) =>
      Semaphore.withPermit(
        lock,
        Effect.gen(function* () {
          if (down) return yield* new StoreUnavailable({ store: "set", reason: "database unreachable" })
          if (done.has(key)) return false
          yield* handle
          done.add(key)
          return true
        })
      )
  }
  return { inbox, done, setDown: (value: boolean) => (down = value) }
})

it.effect("with an inbox, a duplicate delivery is acked without running the handler", () =>
  Effect.gen(function* () {
    yield* Harness.declare(["orders"], [["orders", group]])
    const { inbox, done } = yield* setInbox
    const effects: Array<string> = []
    yield* Consumer.start({
      topic: Orders,
      group,
      dedupe: { store: inbox },
      handler: (m) => Effect.sync(() => effects.push(m.payload.id))
    })
    // The same message twice, as after a producer retry whose confirm was lost.
    const envelope = yield* Message.encode(Orders, { id: "o-1" })
    yield* Harness.publishAll([envelope, envelope])
    yield* settle
    expect(effects).toEqual(["o-1"])
    expect(done.has(`${group}:${envelope.id}`)).toBe(true)
    expect(yield* stats).toMatchObject({ ready: 0, inflight: 0 })
  }).pipe(Effect.provide(layer))
)

it.effect("with an inbox, a failed handler records nothing and its retry runs it again", () =>
  Effect.gen(function* () {
    yield* Harness.declare(["orders"], [["orders", group]])
    const { inbox, done } = yield* setInbox
    const attempts: Array<number> = []
    yield* Consumer.start({
      topic: Orders,
      group,
      dedupe: { store: inbox },
      retry: { immediate: 1, delayed: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 3 })) },
      handler: (_, context) =>
        Effect.suspend(() => {
          attempts.push(context.attempt)
          return context.attempt === 1 ? Effect.fail(new Error("deadlock")) : Effect.void
        })
    })
    yield* Publisher.send(Orders, { id: "o-1" })
    yield* settle
    // One run and one immediate retry, each its own transaction; nothing recorded.
    expect(attempts).toEqual([1, 1])
    expect(done.size).toBe(0)
    yield* TestClock.adjust("1 second")
    yield* settle
    expect(attempts).toEqual([1, 1, 2])
    expect(done.size).toBe(1)
  }).pipe(Effect.provide(layer))
)

it.effect("with the inbox's database down, the message is handed back, neither acked nor dead-lettered", () =>
  Effect.gen(function* () {
    yield* Harness.declare(["orders"], [["orders", group]])
    const { inbox, setDown } = yield* setInbox
    setDown(true)
    let runs = 0
    yield* Consumer.start({
      topic: Orders,
      group,
      dedupe: { store: inbox, storeRetry: Schedule.spaced("5 seconds") },
      handler: () => Effect.sync(() => runs++)
    })
    yield* Publisher.send(Orders, { id: "o-1" })
    yield* settle
    expect(runs).toBe(0)
    expect(yield* stats).toMatchObject({ delayed: 1, deadLetters: 0 })
    setDown(false)
    yield* TestClock.adjust("5 seconds")
    yield* settle
    expect(runs).toBe(1)
    expect(yield* stats).toMatchObject({ ready: 0, delayed: 0, inflight: 0, deadLetters: 0 })
  }).pipe(Effect.provide(layer))
)
