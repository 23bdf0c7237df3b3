import { expect, it } from "@effect/vitest"
import {
  ConnectionLost,
  Consumer,
  Dedupe,
  HalfMessage,
  Outbox,
  OutboxRelay,
  Publisher,
  StoreUnavailable,
  Topic,
  Unroutable
} from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Faulty, Harness } from "@lossless/testkit"
import { Effect, Layer, Schedule, Schema } from "effect"
import { TestClock } from "effect/testing"

const Order = Schema.Struct({ id: Schema.String, n: Schema.Number })
const Orders = Topic.make("orders", Order)
const group = "billing"

/** Lets forked fibers run until they block. */
const settle = Effect.gen(function* () {
  for (let i = 0; i < 30; i++) yield* Effect.yieldNow
})
const stats = MemoryTransport.Broker.useSync((b) => b.stats("orders", group)!)

const setup = (faults: Partial<Faulty.Faults> = {}) => {
  const faulty = Faulty.make(faults)
  return {
    control: faulty.control,
    layer: faulty.layer.pipe(Layer.provideMerge(MemoryTransport.layerWithBroker()))
  }
}
const declare = Harness.declare(["orders"], [["orders", group]])
const lost = () => new ConnectionLost({ transport: "memory", reason: "broker down" })

/** Everything the consumer handled, in order. */
const consume = Effect.gen(function* () {
  const handled: Array<{ id: string; key: string | undefined; n: number }> = []
  yield* Consumer.start({
    topic: Orders,
    group,
    handler: (m) => Effect.sync(() => handled.push({ id: m.payload.id, key: m.key, n: m.payload.n }))
  })
  return handled
})

it.effect("an outbox send stores the message; the relay publishes it and marks it sent", () => {
  const { layer } = setup()
  return Effect.gen(function* () {
    yield* declare
    const store = yield* Outbox.memoryStore
    const sent = yield* Publisher.send(Orders, { id: "o-1", n: 1 }).pipe(Effect.provide(Publisher.layerOutbox(store)))
    expect(sent.attempts).toBe(0)
    expect(store.rows().map((r) => r.status)).toEqual(["pending"])
    expect((yield* stats).ready).toBe(0)
    yield* Effect.forkScoped(OutboxRelay.run({ store, sweepInterval: "1 hour" }))
    yield* settle
    // Woken by the new row, not by the hourly sweep.
    expect((yield* stats).ready).toBe(1)
    expect(store.rows().map((r) => r.status)).toEqual(["sent"])
  }).pipe(Effect.provide(layer))
})

it.effect("while the broker is down rows pile up as failed, then all drain with backoff, none lost", () => {
  let down = true
  const { layer, control } = setup({ publish: () => (down ? { _tag: "Fail", error: lost } : Faulty.pass) })
  return Effect.gen(function* () {
    yield* declare
    const store = yield* Outbox.memoryStore
    const handled = yield* consume
    const outbox = Publisher.layerOutbox(store)
    yield* Effect.forkScoped(
      OutboxRelay.run({
        store,
        sweepInterval: "1 second",
        retry: Schedule.exponential("1 second").pipe(Schedule.upTo({ times: 10 }))
      })
    )
    for (let i = 0; i < 30; i++)
      yield* Publisher.send(Orders, { id: `o-${i}`, n: i }, { key: `c-${i % 3}` }).pipe(Effect.provide(outbox))
    yield* settle
    // Rows pile up: failed ones wait for their next attempt, and the later rows of their keys wait behind them.
    const piled = yield* store.stats
    expect(piled.failed + piled.pending).toBe(30)
    expect(piled.failed).toBeGreaterThan(0)
    expect(piled.sent).toBe(0)
    expect(store.rows()[0]?.lastError).toContain("broker down")
    // Backoff: the second attempt waits 1 s, the third 2 s.
    const callsBefore = control.publishCalls()
    yield* TestClock.adjust("999 millis")
    expect(control.publishCalls()).toBe(callsBefore)
    yield* TestClock.adjust("1 millis")
    yield* settle
    expect(control.publishCalls()).toBeGreaterThan(callsBefore)
    down = false
    yield* TestClock.adjust("3 seconds")
    yield* settle
    expect(yield* store.stats).toMatchObject({ pending: 0, failed: 0, sent: 30, parked: 0 })
    Harness.assertExactlyOnce(
      Array.from({ length: 30 }, (_, i) => `o-${i}`),
      handled.map((h) => h.id)
    )
    // Each key's messages arrived in the order they were sent.
    for (const key of ["c-0", "c-1", "c-2"]) {
      const ns = handled.filter((h) => h.key === key).map((h) => h.n)
      expect(ns).toEqual([...ns].sort((a, b) => a - b))
    }
  }).pipe(Effect.provide(layer))
})

it.effect("a permanent failure parks the row at once and fires the alert", () => {
  const { layer } = setup({
    publish: () => ({ _tag: "Fail", error: (e) => new Unroutable({ topic: e.topic, messageId: e.id }) })
  })
  return Effect.gen(function* () {
    yield* declare
    const store = yield* Outbox.memoryStore
    const alerts: Array<string> = []
    yield* Publisher.send(Orders, { id: "o-1", n: 1 }).pipe(Effect.provide(Publisher.layerOutbox(store)))
    const relay = yield* OutboxRelay.make({
      store,
      onPark: (row, error) => Effect.sync(() => alerts.push(`${row.envelope.id}: ${error}`))
    })
    const cycle = yield* relay.relayOnce
    expect(cycle).toMatchObject({ claimed: 1, sent: 0, parked: 1 })
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toContain("unroutable")
    expect((yield* store.list("parked", 10))[0]?.attempts).toBe(1)
    // An operator re-drives it once the cause is fixed.
    expect(yield* store.retry(store.rows()[0]!.envelope.id)).toBe(true)
    expect((yield* store.stats).pending).toBe(1)
  }).pipe(Effect.provide(layer))
})

it.effect("after the retry schedule's last attempt the row is parked with an alert", () => {
  const { layer } = setup({ publish: () => ({ _tag: "Fail", error: lost }) })
  return Effect.gen(function* () {
    yield* declare
    const store = yield* Outbox.memoryStore
    const alerts: Array<string> = []
    yield* Publisher.send(Orders, { id: "o-1", n: 1 }).pipe(Effect.provide(Publisher.layerOutbox(store)))
    const relay = yield* OutboxRelay.make({
      store,
      retry: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 2 })),
      onPark: (row) => Effect.sync(() => alerts.push(row.envelope.id))
    })
    expect((yield* relay.relayOnce).failed).toBe(1)
    yield* TestClock.adjust("1 second")
    expect((yield* relay.relayOnce).failed).toBe(1)
    yield* TestClock.adjust("1 second")
    expect((yield* relay.relayOnce).parked).toBe(1)
    expect(alerts).toHaveLength(1)
    expect((yield* store.list("parked", 10))[0]).toMatchObject({ attempts: 3 })
  }).pipe(Effect.provide(layer))
})

it.effect(
  "a relay that dies after publishing but before marking leaves the rows to be re-sent; dedupe gives one effect",
  () => {
    const { layer } = setup()
    return Effect.gen(function* () {
      yield* declare
      const inner = yield* Outbox.memoryStore
      let failMarks = true
      // The first relay's marks never land, as if it died right after the broker confirmed.
      const store: Outbox.OutboxStore = {
        ...inner,
        markSent: (rows) =>
          failMarks
            ? Effect.fail(new StoreUnavailable({ store: "memory", reason: "relay killed" }))
            : inner.markSent(rows)
      }
      const effects: Array<string> = []
      yield* Consumer.start({
        topic: Orders,
        group,
        dedupe: { store: yield* Dedupe.memoryStore() },
        handler: (m) => Effect.sync(() => effects.push(m.payload.id))
      })
      for (let i = 0; i < 5; i++)
        yield* Publisher.send(Orders, { id: `o-${i}`, n: i }).pipe(Effect.provide(Publisher.layerOutbox(store)))
      const relay = yield* OutboxRelay.make({ store, lease: "10 seconds" })
      yield* Effect.flip(relay.relayOnce)
      failMarks = false
      yield* settle
      // Still claimed: nothing is re-sent before the lease ends.
      expect((yield* relay.relayOnce).claimed).toBe(0)
      yield* TestClock.adjust("10 seconds")
      expect((yield* relay.relayOnce).sent).toBe(5)
      yield* settle
      expect((yield* stats).ready).toBe(0)
      expect(effects.sort()).toEqual(["o-0", "o-1", "o-2", "o-3", "o-4"])
    }).pipe(Effect.provide(layer))
  }
)

it.effect("two relays on one store publish every row once and keep each key's order", () => {
  const { layer } = setup()
  return Effect.gen(function* () {
    yield* declare
    const store = yield* Outbox.memoryStore
    const handled = yield* consume
    const outbox = Publisher.layerOutbox(store)
    for (let i = 0; i < 200; i++) {
      yield* Publisher.send(Orders, { id: `o-${i}`, n: i }, { key: `c-${i % 7}` }).pipe(Effect.provide(outbox))
    }
    const a = yield* OutboxRelay.make({ store, batchSize: 16 })
    const b = yield* OutboxRelay.make({ store, batchSize: 16 })
    yield* Effect.all([a.drain, b.drain, a.drain, b.drain], { concurrency: "unbounded" })
    yield* settle
    expect((yield* store.stats).sent).toBe(200)
    Harness.assertExactlyOnce(
      Array.from({ length: 200 }, (_, i) => `o-${i}`),
      handled.map((h) => h.id)
    )
    for (let k = 0; k < 7; k++) {
      const ns = handled.filter((h) => h.key === `c-${k}`).map((h) => h.n)
      expect(ns).toEqual([...ns].sort((x, y) => x - y))
    }
  }).pipe(Effect.provide(layer))
})

const decide = (answer: HalfMessage.Decision, asked: Array<string>) =>
  HalfMessage.checkBack(Orders, (message) =>
    Effect.sync(() => {
      asked.push(message.payload.id)
      return answer
    })
  )

it.effect("a half message is delivered when its local transaction commits, and not when it fails", () => {
  const { layer } = setup()
  return Effect.gen(function* () {
    yield* declare
    const store = yield* Outbox.memoryStore
    const handled = yield* consume
    yield* Effect.forkScoped(OutboxRelay.run({ store }))
    const half = HalfMessage.layerOutbox(store)
    const ledger: Array<string> = []
    const result = yield* HalfMessage.sendTransactional(
      Orders,
      { id: "o-1", n: 1 },
      Effect.sync(() => {
        ledger.push("o-1")
        return "booked"
      })
    ).pipe(Effect.provide(half))
    expect(result).toBe("booked")
    const failure = yield* HalfMessage.sendTransactional(
      Orders,
      { id: "o-2", n: 2 },
      Effect.fail("insufficient stock")
    ).pipe(Effect.provide(half), Effect.flip)
    expect(failure).toBe("insufficient stock")
    yield* settle
    expect(handled.map((h) => h.id)).toEqual(["o-1"])
    expect(store.rows().map((r) => [r.envelope.id, r.status])).toEqual([[store.rows()[0]!.envelope.id, "sent"]])
  }).pipe(Effect.provide(layer))
})

it.effect(
  "a crash between the local transaction and commit is resolved by check-back: commit delivers, rollback drops",
  () => {
    const { layer } = setup()
    return Effect.gen(function* () {
      yield* declare
      const inner = yield* Outbox.memoryStore
      // Commit and rollback never reach the store: the process died after the local transaction.
      const store: Outbox.OutboxStore = {
        ...inner,
        commit: () => Effect.fail(new StoreUnavailable({ store: "memory", reason: "crashed" })),
        rollback: () => Effect.fail(new StoreUnavailable({ store: "memory", reason: "crashed" }))
      }
      const handled = yield* consume
      const half = HalfMessage.layerOutbox(store)
      yield* HalfMessage.sendTransactional(Orders, { id: "commit-me", n: 1 }, Effect.void).pipe(Effect.provide(half))
      yield* HalfMessage.sendTransactional(Orders, { id: "drop-me", n: 2 }, Effect.fail("local failed")).pipe(
        Effect.provide(half),
        Effect.ignore
      )
      expect(inner.rows().map((r) => r.status)).toEqual(["prepared", "prepared"])
      const asked: Array<string> = []
      const checks = [
        yield* HalfMessage.checkBack(Orders, (m) =>
          Effect.sync(() => {
            asked.push(m.payload.id)
            return m.payload.id === "commit-me" ? ("commit" as const) : ("rollback" as const)
          })
        )
      ]
      const relay = yield* OutboxRelay.make({ store: inner, checkBacks: checks, checkInterval: "1 minute" })
      // Too young to check back yet.
      yield* relay.drain
      expect(asked).toEqual([])
      yield* TestClock.adjust("61 seconds")
      yield* relay.drain
      expect(asked.sort()).toEqual(["commit-me", "drop-me"])
      yield* relay.drain
      yield* settle
      expect(handled.map((h) => h.id)).toEqual(["commit-me"])
      expect(inner.rows().map((r) => r.status)).toEqual(["sent"])
    }).pipe(Effect.provide(layer))
  }
)

it.effect(
  "a half message whose check-back keeps answering unknown is parked after the maximum checks, with an alert",
  () => {
    const { layer } = setup()
    return Effect.gen(function* () {
      yield* declare
      const store = yield* Outbox.memoryStore
      const failingCommit: Outbox.OutboxStore = {
        ...store,
        commit: () => Effect.fail(new StoreUnavailable({ store: "memory", reason: "crashed" }))
      }
      yield* HalfMessage.sendTransactional(Orders, { id: "o-1", n: 1 }, Effect.void).pipe(
        Effect.provide(HalfMessage.layerOutbox(failingCommit))
      )
      const asked: Array<string> = []
      const alerts: Array<string> = []
      const relay = yield* OutboxRelay.make({
        store,
        checkBacks: [yield* decide("unknown", asked)],
        checkInterval: "10 seconds",
        maxChecks: 3,
        onPark: (_, error) => Effect.sync(() => alerts.push(error))
      })
      for (let i = 0; i < 5; i++) {
        yield* TestClock.adjust("11 seconds")
        yield* relay.drain
      }
      expect(asked).toEqual(["o-1", "o-1", "o-1"])
      expect(alerts).toHaveLength(1)
      expect(alerts[0]).toContain("undecided after 3 check-back(s)")
      expect(store.rows().map((r) => r.status)).toEqual(["parked"])
    }).pipe(Effect.provide(layer))
  }
)
