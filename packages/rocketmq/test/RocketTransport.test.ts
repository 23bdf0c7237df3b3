/**
 * RocketMQ behaviour beyond the shared suite, against the emulator with the
 * real client: strict and relaxed send statuses, invisibility kept while a
 * handler runs, retries ending in the dead-letter topic with the reason,
 * delivery timestamps, FIFO message groups, and transactional producers
 * that refuse to start without a check-back.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  Consumer,
  DeadLetter,
  type Envelope,
  HalfMessage,
  Headers,
  Names,
  Publisher,
  Topic,
  Transport
} from "@lossless/core"
import { RocketError, RocketHalfMessages, RocketTransport } from "@lossless/rocketmq"
import { Harness } from "@lossless/testkit"
import * as RocketEmulator from "@lossless/testkit/rocketmq"
import { Effect, Layer, Result, Schedule, Schema } from "effect"
import { afterAll } from "vitest"
import * as Support from "./support.ts"

const { Code } = RocketEmulator
const emulator = await RocketEmulator.start()
afterAll(() => emulator.close())

const transport = (overrides: Parameters<typeof Support.options>[1] = {}) =>
  RocketTransport.layer(Support.options(emulator, overrides))

const Job = Schema.Struct({ n: Schema.Int })

const publishOne = (envelope: Envelope.Envelope) =>
  Effect.map(
    Transport.Transport.use((t) => t.publish([envelope])),
    (results) => results[0] as Transport.PublishResult
  )

describe("RocketTransport sends", () => {
  it.live("strict: a flush timeout fails retryably and the publisher retries until stored and flushed", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("strict")
      yield* Harness.declare([topic], [])
      emulator.faults.sendStatus(Code.MASTER_PERSISTENCE_TIMEOUT, 1)
      const first = yield* publishOne(Harness.envelope(topic))
      expect(Result.isFailure(first)).toBe(true)
      if (Result.isFailure(first)) {
        expect(first.failure._tag).toBe("PersistenceTimeout")
        expect(first.failure.retryable).toBe(true)
      }
      emulator.faults.sendStatus(Code.SLAVE_PERSISTENCE_TIMEOUT, 1)
      const sent = yield* Publisher.send(Topic.make(topic, Job), { n: 1 }).pipe(
        Effect.provide(Publisher.layer({ retry: Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 3 })) }))
      )
      expect(sent.attempts).toBe(2)
      // The broker stored each unconfirmed copy too: the consumer's dedupe absorbs them, nothing is lost.
      expect(emulator.messages(topic)).toHaveLength(3)
    }).pipe(Effect.provide(transport()))
  )

  it.live("relaxed: a flush or replica timeout counts as stored, and is sent once", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("relaxed")
      yield* Harness.declare([topic], [])
      for (const code of [Code.MASTER_PERSISTENCE_TIMEOUT, Code.SLAVE_PERSISTENCE_TIMEOUT, Code.HA_NOT_AVAILABLE]) {
        emulator.faults.sendStatus(code, 1)
        const sent = yield* Publisher.send(Topic.make(topic, Job), { n: code }).pipe(Effect.provide(Publisher.layer()))
        expect(sent.attempts).toBe(1)
      }
      expect(emulator.messages(topic)).toHaveLength(3)
    }).pipe(Effect.provide(transport({ strict: false })))
  )

  it.live("relaxed mode still fails what was not stored: a proxy timeout, a lost connection", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("relaxed-fail")
      yield* Harness.declare([topic], [])
      emulator.faults.sendStatus(Code.PROXY_TIMEOUT, 1)
      const timedOut = yield* publishOne(Harness.envelope(topic))
      expect(Result.isFailure(timedOut) ? timedOut.failure._tag : "confirmed").toBe("PublishTimeout")
      emulator.faults.sendStatus("unavailable", 1)
      const lost = yield* publishOne(Harness.envelope(topic))
      expect(Result.isFailure(lost) ? lost.failure.retryable : false).toBe(true)
    }).pipe(Effect.provide(transport({ strict: false })))
  )

  it.live("deliverAt travels as the delivery timestamp and the message arrives no earlier", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("delay")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      const deliverAt = Date.now() + 1500
      const sent = Harness.envelope(topic, { deliverAt })
      yield* Harness.publishAll([sent])
      expect(emulator.messages(topic)[0]?.deliveryTimestamp).toBe(deliverAt)
      const sub = yield* Harness.subscribe(topic, group)
      const got = yield* sub.next()
      expect(Date.now()).toBeGreaterThanOrEqual(deliverAt - 25)
      expect(got.envelope.id).toBe(sent.id)
      expect(got.envelope.deliverAt).toBe(deliverAt)
      yield* got.ack
    }).pipe(Effect.provide(transport()))
  )

  it.live("FIFO topics: each key is the message group, and no delivery timestamp is sent", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("fifo")
      yield* Harness.declare([topic], [])
      const batch = Harness.envelopes(topic, 6, (i) => (i % 2 === 0 ? "even" : "odd"))
      yield* Harness.publishAll(batch)
      const stored = emulator.messages(topic)
      expect(stored.map((m) => m.messageGroup)).toEqual(batch.map((e) => e.key))
      // Per group, stored in publish order.
      for (const key of ["even", "odd"]) {
        const ids = stored.filter((m) => m.messageGroup === key).map((m) => m.properties[Headers.MessageId])
        expect(ids).toEqual(batch.filter((e) => e.key === key).map((e) => e.id))
      }
      expect(stored.every((m) => m.deliveryTimestamp === undefined)).toBe(true)
    }).pipe(Effect.provide(transport({ fifo: true })))
  )
})

describe("RocketTransport consumption", () => {
  it.live("a handler longer than the invisible duration keeps its message: no other consumer gets it", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("long-handler")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      const sent = Harness.envelope(topic)
      yield* Harness.publishAll([sent])
      const busy = yield* Harness.subscribe(topic, group)
      const held = yield* busy.next()
      const rival = yield* Harness.subscribe(topic, group)
      // Three invisible durations pass while the first consumer holds the message.
      yield* rival.nothingWithin("3 seconds")
      expect(held.settleable()).toBe(true)
      yield* held.ack
      yield* rival.nothingWithin("1500 millis")
      yield* busy.nothingWithin("10 millis")
    }).pipe(Effect.provide(transport({ invisibleDuration: "1 second" })))
  )

  it.live(
    "16 failed deliveries end in the dead-letter topic with the reason and the attempt count",
    () =>
      Effect.gen(function* () {
        const maxAttempts = 16
        const topic = Topic.make(Harness.uniqueName("exhausted"), Job)
        const group = Harness.uniqueName("g")
        const attempts: Array<number> = []
        yield* Consumer.start({
          topic,
          group,
          handler: (_, context) =>
            Effect.suspend(() => {
              attempts.push(context.attempt)
              return Effect.fail(new Error(`declined on attempt ${context.attempt}`))
            }),
          retry: { immediate: 0, delayed: Schedule.spaced("10 millis").pipe(Schedule.upTo({ times: maxAttempts - 1 })) }
        })
        yield* Publisher.send(topic, { n: 7 }).pipe(Effect.provide(Publisher.layer()))
        const deadTopic = Names.deadLetter(topic.name, group)
        yield* Harness.eventually("the dead letter stored", () => emulator.messages(deadTopic).length > 0, "20 seconds")
        expect(attempts).toEqual(Array.from({ length: maxAttempts }, (_, i) => i + 1))
        const [letter] = emulator.messages(deadTopic)
        expect(letter?.properties[Headers.ErrorMessage]).toContain(`declined on attempt ${maxAttempts}`)
        expect(letter?.properties[Headers.Attempt]).toBe(String(maxAttempts))
        expect(letter?.properties[Headers.OriginalTopic]).toBe(topic.name)
        // Settled by Lossless before the broker's own limit: its reason-less dead-letter queue stays empty.
        expect(emulator.deadLetters(`${topic.name}__${group}`)).toHaveLength(0)
        const dead = yield* Harness.subscribe(topic.name, group, { source: "dead-letters" })
        const got = yield* dead.next()
        expect(DeadLetter.reason(got.envelope)?.attempt).toBe(maxAttempts)
        yield* got.ack
      }).pipe(Effect.provide(transport())),
    30_000
  )

  it.live("an interrupted subscription hands its messages back at once, without counting an attempt", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("hand-back")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      yield* Harness.publishAll(Harness.envelopes(topic, 3))
      const first = yield* Harness.subscribe(topic, group, { prefetch: 3 })
      yield* first.take(3)
      yield* first.close
      const second = yield* Harness.subscribe(topic, group, { prefetch: 3 })
      // Well within the 30 second invisible duration: handed back, not timed out.
      const again = yield* second.take(3, "3 seconds")
      expect(again.map((d) => d.attempt)).toEqual([1, 1, 1])
      expect(again.every((d) => d.redelivered)).toBe(true)
      for (const d of again) yield* d.ack
    }).pipe(Effect.provide(transport({ invisibleDuration: "30 seconds" })))
  )
})

describe("RocketHalfMessages", () => {
  it.live("a transactional producer without a check-back for one of its topics refuses to start", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("tx")
      const other = Topic.make(Harness.uniqueName("tx-other"), Job)
      const checkBack = yield* HalfMessage.checkBack(other, () => Effect.succeed("commit" as const))
      const error = yield* Layer.build(
        RocketHalfMessages.layer({ ...Support.options(emulator), checkBacks: [checkBack], topics: [topic, other.name] })
      ).pipe(Effect.scoped, Effect.flip)
      expect(error).toBeInstanceOf(RocketError.CheckBackMissing)
      expect((error as RocketError.CheckBackMissing).topics).toEqual([topic])
    })
  )

  it.live("commit makes the half message deliverable; the check-back is never asked", () =>
    Effect.gen(function* () {
      const topic = Topic.make(Harness.uniqueName("tx-commit"), Job)
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic.name], [[topic.name, group]])
      let asked = 0
      const checkBack = yield* HalfMessage.checkBack(topic, () =>
        Effect.sync(() => {
          asked++
          return "rollback" as const
        })
      )
      const result = yield* HalfMessage.sendTransactional(topic, { n: 1 }, Effect.succeed("booked")).pipe(
        Effect.provide(RocketTransport.layerHalfMessages({ ...Support.options(emulator), checkBacks: [checkBack] }))
      )
      expect(result).toBe("booked")
      const sub = yield* Harness.subscribe(topic.name, group)
      const got = yield* sub.next()
      expect(JSON.parse(Harness.text(got.envelope.payload))).toEqual({ n: 1 })
      yield* got.ack
      expect(emulator.pendingHalfMessages().filter((h) => h.topic === topic.name)).toHaveLength(0)
      expect(asked).toBe(0)
    }).pipe(Effect.provide(transport()))
  )

  it.live("strict: a half message the broker did not confirm fails the send before the local transaction runs", () =>
    Effect.gen(function* () {
      const topic = Topic.make(Harness.uniqueName("tx-strict"), Job)
      yield* Harness.declare([topic.name], [])
      const checkBack = yield* HalfMessage.checkBack(topic, () => Effect.succeed("rollback" as const))
      let ran = false
      emulator.faults.sendStatus(Code.MASTER_PERSISTENCE_TIMEOUT, 1)
      const error = yield* HalfMessage.sendTransactional(
        topic,
        { n: 1 },
        Effect.sync(() => {
          ran = true
        })
      ).pipe(
        Effect.provide(RocketTransport.layerHalfMessages({ ...Support.options(emulator), checkBacks: [checkBack] })),
        Effect.flip
      )
      expect(error._tag).toBe("StoreUnavailable")
      expect(error.message).toContain("MASTER_PERSISTENCE_TIMEOUT")
      expect(ran).toBe(false)
    }).pipe(Effect.provide(transport()))
  )

  it.live("relaxed: a half message stored without a confirmed flush is decided by its check-back", () =>
    Effect.gen(function* () {
      const topic = Topic.make(Harness.uniqueName("tx-relaxed"), Job)
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic.name], [[topic.name, group]])
      const booked = new Set<number>()
      const checkBack = yield* HalfMessage.checkBack(topic, (m) =>
        Effect.succeed(booked.has(m.payload.n) ? ("commit" as const) : ("rollback" as const))
      )
      // Stays up to answer the broker's check-back.
      const half = yield* Layer.build(
        RocketTransport.layerHalfMessages({ ...Support.options(emulator, { strict: false }), checkBacks: [checkBack] })
      )
      emulator.faults.sendStatus(Code.MASTER_PERSISTENCE_TIMEOUT, 1)
      yield* HalfMessage.sendTransactional(
        topic,
        { n: 7 },
        Effect.sync(() => booked.add(7))
      ).pipe(Effect.provide(half))
      const sub = yield* Harness.subscribe(topic.name, group)
      const got = yield* sub.next("15 seconds")
      expect(JSON.parse(Harness.text(got.envelope.payload))).toEqual({ n: 7 })
      yield* got.ack
    }).pipe(Effect.provide(transport({ strict: false })))
  )
})
