import { expect } from "@effect/vitest"
import { Consumer, HalfMessage, Outbox, OutboxRelay, Publisher, StoreUnavailable, Topic } from "@lossless/core"
import { Effect, Layer, Schema } from "effect"
import type { Suite } from "../Conformance.ts"
import { assertExactlyOnce, declare, eventually, subscribe, uniqueName } from "../Harness.ts"

const Booking = Schema.Struct({ id: Schema.String })

/** A store whose commit and rollback never land, as when the process dies right after the local transaction. */
const crashingAfterLocal = (store: Outbox.OutboxStore): Outbox.OutboxStore => ({
  ...store,
  commit: () => Effect.fail(new StoreUnavailable({ store: store.name, reason: "process died" })),
  rollback: () => Effect.fail(new StoreUnavailable({ store: store.name, reason: "process died" }))
})

export const outboxCases = ({ it, receiveTimeout, quietPeriod, capabilities, halfMessages, requiring }: Suite) => {
  it.effect("outbox sends reach the broker through the relay, each exactly once", () =>
    Effect.gen(function* () {
      const topic = Topic.make(uniqueName("outbox"), Booking)
      const group = uniqueName("g")
      yield* declare([topic.name], [[topic.name, group]])
      const store = yield* Outbox.memoryStore
      const handled: Array<string> = []
      yield* Consumer.start({ topic, group, handler: (m) => Effect.sync(() => handled.push(m.payload.id)) })
      yield* Effect.forkScoped(OutboxRelay.run({ store, sweepInterval: "50 millis" }))
      const ids = Array.from({ length: 50 }, (_, i) => `b-${i}`)
      yield* Effect.forEach(ids, (id) => Publisher.send(topic, { id }, { key: `k${id.length % 3}` }), {
        discard: true
      }).pipe(Effect.provide(Publisher.layerOutbox(store)))
      yield* eventually("every outbox row handled", () => handled.length >= ids.length, receiveTimeout)
      // The relay marks a batch sent after its confirm, which may come after the consumer saw it.
      yield* eventually(
        "every outbox row marked sent",
        () => store.rows().every((r) => r.status === "sent"),
        receiveTimeout
      )
      assertExactlyOnce(ids, handled)
      expect(yield* store.stats).toMatchObject({ sent: 50, pending: 0, failed: 0 })
    })
  )

  it.effect("half messages: commit delivers, rollback does not, a crash in between is settled by check-back", () =>
    Effect.gen(function* () {
      const topic = Topic.make(uniqueName("half"), Booking)
      const group = uniqueName("g")
      yield* declare([topic.name], [[topic.name, group]])
      const store = yield* Outbox.memoryStore
      const handled: Array<string> = []
      yield* Consumer.start({ topic, group, handler: (m) => Effect.sync(() => handled.push(m.payload.id)) })
      const bookings = new Set<string>()
      const checkBack = yield* HalfMessage.checkBack(topic, (m) =>
        Effect.succeed(bookings.has(m.payload.id) ? ("commit" as const) : ("rollback" as const))
      )
      yield* Effect.forkScoped(
        OutboxRelay.run({ store, sweepInterval: "50 millis", checkBacks: [checkBack], checkInterval: "200 millis" })
      )
      const book = (id: string) => Effect.sync(() => bookings.add(id))
      const normal = HalfMessage.layerOutbox(store)
      const crashing = HalfMessage.layerOutbox(crashingAfterLocal(store))
      yield* HalfMessage.sendTransactional(topic, { id: "committed" }, book("committed")).pipe(Effect.provide(normal))
      yield* HalfMessage.sendTransactional(topic, { id: "rolled-back" }, Effect.fail("no seats")).pipe(
        Effect.provide(normal),
        Effect.ignore
      )
      yield* HalfMessage.sendTransactional(topic, { id: "crashed-after-commit" }, book("crashed-after-commit")).pipe(
        Effect.provide(crashing)
      )
      yield* HalfMessage.sendTransactional(
        topic,
        { id: "crashed-after-failure" },
        Effect.fail("payment declined")
      ).pipe(Effect.provide(crashing), Effect.ignore)
      yield* eventually("both committed bookings handled", () => handled.length >= 2, receiveTimeout)
      yield* eventually(
        "the crashed rows decided",
        () => store.rows().every((r) => r.status !== "prepared"),
        receiveTimeout
      )
      yield* Effect.sleep("200 millis")
      expect(handled.sort()).toEqual(["committed", "crashed-after-commit"])
      expect(store.rows().map((r) => r.status)).toEqual(["sent", "sent"])
    })
  )

  it.effect(
    "a half message whose check-back keeps answering unknown is parked after the maximum checks, with an alert",
    () =>
      Effect.gen(function* () {
        const topic = Topic.make(uniqueName("half-unknown"), Booking)
        const group = uniqueName("g")
        yield* declare([topic.name], [[topic.name, group]])
        const store = yield* Outbox.memoryStore
        const asked: Array<string> = []
        const alerts: Array<string> = []
        const checkBack = yield* HalfMessage.checkBack(topic, (m) =>
          Effect.sync(() => {
            asked.push(m.payload.id)
            return "unknown" as const
          })
        )
        yield* Effect.forkScoped(
          OutboxRelay.run({
            store,
            sweepInterval: "30 millis",
            checkBacks: [checkBack],
            checkInterval: "100 millis",
            maxChecks: 3,
            onPark: (row, error) => Effect.sync(() => alerts.push(`${row.envelope.id}: ${error}`))
          })
        )
        yield* HalfMessage.sendTransactional(topic, { id: "in-doubt" }, Effect.void).pipe(
          Effect.provide(HalfMessage.layerOutbox(crashingAfterLocal(store)))
        )
        yield* eventually("the undecided row parked", () => store.rows()[0]?.status === "parked", receiveTimeout)
        expect(asked).toEqual(["in-doubt", "in-doubt", "in-doubt"])
        expect(alerts).toHaveLength(1)
        expect(alerts[0]).toContain("undecided after 3 check-back(s)")
        const sub = yield* subscribe(topic.name, group, { receiveTimeout })
        yield* sub.nothingWithin("200 millis")
      })
  )

  const native = requiring(
    capabilities.halfMessages && halfMessages !== undefined,
    capabilities.halfMessages
      ? "no native half messages given to the suite"
      : 'transport lacks capability "halfMessages"'
  )

  native("native half messages: commit delivers, rollback does not, a crash in between is settled by check-back", () =>
    Effect.gen(function* () {
      const half = halfMessages!
      const topic = Topic.make(uniqueName("native-half"), Booking)
      const group = uniqueName("g")
      yield* declare([topic.name], [[topic.name, group]])
      const handled: Array<string> = []
      yield* Consumer.start({ topic, group, handler: (m) => Effect.sync(() => handled.push(m.payload.id)) })
      const bookings = new Set<string>()
      const asked: Array<string> = []
      const checkBack = yield* HalfMessage.checkBack(topic, (m) =>
        Effect.sync(() => {
          asked.push(m.payload.id)
          return bookings.has(m.payload.id) ? ("commit" as const) : ("rollback" as const)
        })
      )
      // One producer stays up to answer the broker's check-backs; the crashing one dies after each send.
      const normal = yield* Layer.build(half.layer([checkBack]))
      const book = (id: string) => Effect.sync(() => bookings.add(id))
      yield* HalfMessage.sendTransactional(topic, { id: "committed" }, book("committed")).pipe(Effect.provide(normal))
      const refused = yield* HalfMessage.sendTransactional(topic, { id: "rolled-back" }, Effect.fail("no seats")).pipe(
        Effect.provide(normal),
        Effect.flip
      )
      expect(refused).toBe("no seats")
      yield* HalfMessage.sendTransactional(topic, { id: "crashed-after-commit" }, book("crashed-after-commit")).pipe(
        Effect.provide(half.crashingAfterLocal)
      )
      yield* HalfMessage.sendTransactional(
        topic,
        { id: "crashed-after-failure" },
        Effect.fail("payment declined")
      ).pipe(Effect.provide(half.crashingAfterLocal), Effect.ignore)
      yield* eventually("both committed bookings handled", () => handled.length >= 2, receiveTimeout)
      yield* eventually(
        "both crashed sends decided by check-back",
        () => asked.includes("crashed-after-commit") && asked.includes("crashed-after-failure"),
        receiveTimeout
      )
      yield* Effect.sleep(quietPeriod)
      expect([...handled].sort()).toEqual(["committed", "crashed-after-commit"])
      // Sends that reached a decision are never asked about.
      expect(asked).not.toContain("committed")
      expect(asked).not.toContain("rolled-back")
    })
  )

  native(
    "a native half message whose check-back keeps answering unknown is discarded after the broker's maximum checks",
    () =>
      Effect.gen(function* () {
        const half = halfMessages!
        const topic = Topic.make(uniqueName("native-half-unknown"), Booking)
        const group = uniqueName("g")
        yield* declare([topic.name], [[topic.name, group]])
        const asked: Array<string> = []
        const checkBack = yield* HalfMessage.checkBack(topic, (m) =>
          Effect.sync(() => {
            asked.push(m.payload.id)
            return "unknown" as const
          })
        )
        // Stays up to answer the broker's check-backs.
        yield* Layer.build(half.layer([checkBack]))
        yield* HalfMessage.sendTransactional(topic, { id: "in-doubt" }, Effect.void).pipe(
          Effect.provide(half.crashingAfterLocal)
        )
        const sub = yield* subscribe(topic.name, group, { receiveTimeout })
        yield* eventually(
          `the check-back asked ${half.maxChecks} time(s)`,
          () => asked.length >= half.maxChecks,
          Math.max(10_000, half.maxChecks * 3_000)
        )
        // No further check once the broker gave up, and the message is never delivered.
        yield* sub.nothingWithin("1500 millis")
        expect(asked).toEqual(Array.from({ length: half.maxChecks }, () => "in-doubt"))
      })
  )
}
