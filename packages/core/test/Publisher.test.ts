import { expect, it } from "@effect/vitest"
import {
  ConnectionLost,
  Publisher,
  SchemaViolation,
  SendFailed,
  Topic,
  TopicNotFound,
  Unroutable
} from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Faulty, Harness } from "@lossless/testkit"
import { Effect, Fiber, Layer, Schedule, Schema } from "effect"
import { TestClock } from "effect/testing"

const Order = Schema.Struct({ id: Schema.String, total: Schema.Number })
const Orders = Topic.make("orders", Order)

/** Memory broker, a faulty wrapper over it, and a publisher over that. */
const setup = (options: Publisher.PublisherOptions = {}, faults: Partial<Faulty.Faults> = {}) => {
  const faulty = Faulty.make(faults)
  const layer = Publisher.layer(options).pipe(
    Layer.provideMerge(faulty.layer),
    Layer.provideMerge(MemoryTransport.layerWithBroker())
  )
  return { layer, control: faulty.control }
}

/** Narrows a send's error to `SendFailed`, failing the test otherwise. */
const asSendFailed = (error: unknown): SendFailed => {
  expect(error).toBeInstanceOf(SendFailed)
  return error as SendFailed
}

const declareOrders = Harness.declare(["orders"], [["orders", "billing"]])
const stats = MemoryTransport.Broker.useSync((b) => b.stats("orders", "billing"))
const lost = (e: { id: string; topic: string }) =>
  new ConnectionLost({ transport: "memory", reason: `planted loss of ${e.id}` })

it.effect("send succeeds once the broker has the message", () => {
  const { layer } = setup()
  return Effect.gen(function* () {
    yield* declareOrders
    const sent = yield* Publisher.send(Orders, { id: "o-1", total: 12.5 })
    expect(sent.attempts).toBe(1)
    expect(sent.topic).toBe("orders")
    expect((yield* stats)?.ready).toBe(1)
  }).pipe(Effect.provide(layer))
})

it.effect("a payload that fails its schema is refused with SchemaViolation and nothing is published", () => {
  const { layer, control } = setup()
  return Effect.gen(function* () {
    yield* declareOrders
    const error = yield* Effect.flip(Publisher.send(Orders, { id: "o-1", total: "twelve" } as never))
    expect(error).toBeInstanceOf(SchemaViolation)
    expect(error.message).toContain("orders")
    expect(error.message).toContain("total")
    expect(control.publishCalls()).toBe(0)
    expect((yield* stats)?.ready).toBe(0)
  }).pipe(Effect.provide(layer))
})

it.effect("a retryable failure is retried with the same message id until confirmed", () => {
  const { layer, control } = setup(
    { retry: Schedule.recurs(5) },
    { publish: (call) => (call <= 2 ? { _tag: "Fail", error: lost } : Faulty.pass) }
  )
  return Effect.gen(function* () {
    yield* declareOrders
    const sent = yield* Publisher.send(Orders, { id: "o-1", total: 1 })
    expect(sent.attempts).toBe(3)
    expect(control.publishCalls()).toBe(3)
    const sub = yield* Harness.subscribe("orders", "billing")
    const got = yield* sub.next()
    expect(got.envelope.id).toBe(sent.id)
    expect((yield* stats)?.ready).toBe(0)
  }).pipe(Effect.provide(layer))
})

it.effect("retries wait on the schedule: exponential delays on the clock", () => {
  const { layer, control } = setup(
    { retry: Schedule.exponential("100 millis").pipe(Schedule.upTo({ times: 3 })) },
    { publish: (call) => (call <= 3 ? { _tag: "Fail", error: lost } : Faulty.pass) }
  )
  return Effect.gen(function* () {
    yield* declareOrders
    const fiber = yield* Effect.forkChild(Publisher.send(Orders, { id: "o-1", total: 1 }))
    yield* TestClock.adjust("99 millis")
    expect(control.publishCalls()).toBe(1)
    yield* TestClock.adjust("1 millis")
    expect(control.publishCalls()).toBe(2)
    yield* TestClock.adjust("200 millis")
    expect(control.publishCalls()).toBe(3)
    yield* TestClock.adjust("400 millis")
    expect((yield* Fiber.join(fiber)).attempts).toBe(4)
  }).pipe(Effect.provide(layer))
})

it.effect("a permanent failure is not retried and the error carries the message", () => {
  const { layer, control } = setup({ retry: Schedule.recurs(5) })
  return Effect.gen(function* () {
    // Topic declared without any group: the broker cannot route it.
    yield* Harness.declare(["orders"], [])
    const error = asSendFailed(yield* Effect.flip(Publisher.send(Orders, { id: "o-1", total: 1 }, { key: "c-9" })))
    expect(control.publishCalls()).toBe(1)
    expect(error.retryable).toBe(false)
    expect(error.failures).toHaveLength(1)
    const failure = error.failures[0]!
    expect(failure.error).toBeInstanceOf(Unroutable)
    expect(failure.attempts).toBe(1)
    expect(failure.envelope.key).toBe("c-9")
    expect(JSON.parse(Harness.text(failure.envelope.payload))).toEqual({ id: "o-1", total: 1 })
  }).pipe(Effect.provide(layer))
})

it.effect("when retries run out, the final error lists the message and its last error", () => {
  const { layer, control } = setup({ retry: Schedule.recurs(3) }, { publish: () => ({ _tag: "Fail", error: lost }) })
  return Effect.gen(function* () {
    yield* declareOrders
    const error = asSendFailed(yield* Effect.flip(Publisher.send(Orders, { id: "o-1", total: 1 })))
    expect(control.publishCalls()).toBe(4)
    expect(error.failures[0]?.attempts).toBe(4)
    expect(error.failures[0]?.error).toBeInstanceOf(ConnectionLost)
    expect(error.retryable).toBe(true)
    expect((yield* stats)?.ready).toBe(0)
  }).pipe(Effect.provide(layer))
})

it.effect("an attempt without a confirm times out and is retried", () => {
  const { layer, control } = setup(
    { retry: Schedule.recurs(2), attemptTimeout: "1 second" },
    { publish: (call) => (call === 1 ? { _tag: "Hang" } : Faulty.pass) }
  )
  return Effect.gen(function* () {
    yield* declareOrders
    const fiber = yield* Effect.forkChild(Publisher.send(Orders, { id: "o-1", total: 1 }))
    yield* TestClock.adjust("999 millis")
    expect(control.publishCalls()).toBe(1)
    yield* TestClock.adjust("1 millis")
    const sent = yield* Fiber.join(fiber)
    expect(sent.attempts).toBe(2)
    expect((yield* stats)?.ready).toBe(1)
  }).pipe(Effect.provide(layer))
})

it.effect("a lost confirm leads to a re-send with the same id (a duplicate dedupe can remove)", () => {
  const { layer } = setup(
    { retry: Schedule.recurs(2) },
    { publish: (call) => (call === 1 ? { _tag: "LoseConfirm", error: lost } : Faulty.pass) }
  )
  return Effect.gen(function* () {
    yield* declareOrders
    const sent = yield* Publisher.send(Orders, { id: "o-1", total: 1 })
    const sub = yield* Harness.subscribe("orders", "billing")
    const [a, b] = yield* sub.take(2)
    expect(a?.envelope.id).toBe(sent.id)
    expect(b?.envelope.id).toBe(sent.id)
  }).pipe(Effect.provide(layer))
})

it.effect("sendBatch confirms each message, and a partial failure names the failed and the confirmed", () => {
  const { layer } = setup({ retry: Schedule.recurs(1) })
  return Effect.gen(function* () {
    yield* declareOrders
    const sent = yield* Publisher.sendBatch(
      Orders,
      Array.from({ length: 20 }, (_, i) => ({ payload: { id: `o-${i}`, total: i }, key: `c-${i % 3}` }))
    )
    expect(sent).toHaveLength(20)
    expect(new Set(sent.map((s) => s.id)).size).toBe(20)
    expect((yield* stats)?.ready).toBe(20)

    const publisher = yield* Publisher.Publisher
    const good = Harness.envelope("orders")
    const bad = Harness.envelope("no-such-topic")
    const error = yield* Effect.flip(publisher.publish([good, bad]))
    expect(error.confirmed).toEqual([good.id])
    expect(error.failures.map((f) => f.envelope.id)).toEqual([bad.id])
    expect(error.failures[0]?.error).toBeInstanceOf(TopicNotFound)
  }).pipe(Effect.provide(layer))
})

it.effect("at most maxInFlight messages are outstanding; further sends wait", () => {
  const { layer, control } = setup({ maxInFlight: 2, attemptTimeout: "1 hour" }, { publish: () => ({ _tag: "Hang" }) })
  return Effect.gen(function* () {
    yield* declareOrders
    const fibers = yield* Effect.forEach([1, 2, 3], (i) =>
      Effect.forkChild(Publisher.send(Orders, { id: `o-${i}`, total: i }))
    )
    yield* TestClock.adjust("1 second")
    expect(control.publishCalls()).toBe(2)
    yield* Fiber.interrupt(fibers[0]!)
    yield* TestClock.adjust("1 second")
    expect(control.publishCalls()).toBe(3)
    yield* Fiber.interruptAll(fibers)
  }).pipe(Effect.provide(layer))
})

it.effect("interceptors stamp every batch once, before the first attempt", () => {
  let runs = 0
  const { layer } = setup(
    {
      retry: Schedule.recurs(2),
      interceptors: [
        (envelopes) =>
          Effect.sync(() => {
            runs++
            return envelopes.map((e) => ({ ...e, headers: { ...e.headers, "x-stamp": String(runs) } }))
          })
      ]
    },
    { publish: (call) => (call === 1 ? { _tag: "Fail", error: lost } : Faulty.pass) }
  )
  return Effect.gen(function* () {
    yield* declareOrders
    yield* Publisher.send(Orders, { id: "o-1", total: 1 })
    const sub = yield* Harness.subscribe("orders", "billing")
    expect((yield* sub.next()).envelope.headers["x-stamp"]).toBe("1")
    expect(runs).toBe(1)
  }).pipe(Effect.provide(layer))
})
