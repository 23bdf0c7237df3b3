/**
 * What the RabbitMQ transport adds to the shared contract, against a real
 * broker: mandatory publishes, unknown and vanished topics, size limits,
 * retry and dead-letter queues, consumers whose queue disappears, quorum
 * queues, name prefixes, and credentials that never show.
 */
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import {
  DeadLetter,
  type Envelope,
  MessageId,
  SettlementFailed,
  TopicNotFound,
  Transport,
  TransportUnavailable,
  TransportUrl
} from "@lossless/core"
import { RabbitConfig, RabbitTopology, RabbitTransport } from "@lossless/rabbitmq"
import { Harness, Services } from "@lossless/testkit"
import {
  Cause,
  ConfigProvider,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  Queue,
  Redacted,
  Result,
  Schedule,
  Stream
} from "effect"
import { afterAll } from "vitest"
import * as Support from "./support.ts"

const rabbit = await Services.require("rabbitmq")
if (rabbit.available) afterAll(await Support.exclusiveBroker())

const transport = (extra: Partial<RabbitConfig.RabbitOptions> = {}) =>
  Support.tidy(RabbitTransport.layer(Support.options(extra)), extra.prefix)

const publish = (batch: ReadonlyArray<Envelope.Envelope>) => Transport.Transport.use((t) => t.publish(batch))

/** "ok" or the error's tag, per envelope. */
const outcomes = (results: ReadonlyArray<Transport.PublishResult>) =>
  results.map((r) => (Result.isSuccess(r) ? "ok" : r.failure._tag))

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? (Cause.findErrorOption(exit.cause) as { _tag: string; value: E }).value : undefined

describe.skipIf(!rabbit.available)(`RabbitTransport (${rabbit.url})`, () => {
  it.live("a topic no group is bound to: its messages are Unroutable, never confirmed; the batch's others are", () =>
    Effect.gen(function* () {
      const bound = Harness.uniqueName("bound")
      const unbound = Harness.uniqueName("unbound")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([bound, unbound], [[bound, group]])
      const first = Harness.envelope(bound)
      // The same id on a topic without queues: the return must be matched to this publish only.
      const sameIdNoRoute = { ...first, topic: unbound }
      const last = Harness.envelope(bound)
      const results = yield* publish([first, sameIdNoRoute, last, Harness.envelope(unbound)])
      expect(outcomes(results)).toEqual(["ok", "Unroutable", "ok", "Unroutable"])
      const sub = yield* Harness.subscribe(bound, group)
      expect((yield* sub.consume(2)).map((d) => d.envelope.id)).toEqual([first.id, last.id])
      yield* sub.nothingWithin("200 millis")
    }).pipe(Effect.provide(transport()))
  )

  it.live("a batch longer than the confirm window: every return is matched to its own publish", () =>
    Effect.gen(function* () {
      const bound = Harness.uniqueName("bound")
      const unbound = Harness.uniqueName("unbound")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([bound, unbound], [[bound, group]])
      // Thousands pipelined through a window of 256: the list of unconfirmed publishes is trimmed and
      // compacted while returns keep arriving; ids repeat across the two topics.
      const batch: Array<Envelope.Envelope> = []
      const expected: Array<string> = []
      for (let i = 0; i < 3000; i++) {
        const envelope = Harness.envelope(bound, { payload: String(i) })
        const unroutable = i % 3 === 1
        batch.push(unroutable ? { ...envelope, topic: unbound } : envelope)
        expected.push(unroutable ? "Unroutable" : "ok")
        if (i % 7 === 0) {
          batch.push({ ...envelope, topic: unroutable ? bound : unbound })
          expected.push(unroutable ? "ok" : "Unroutable")
        }
      }
      expect(outcomes(yield* publish(batch))).toEqual(expected)
    }).pipe(Effect.provide(transport({ confirmWindow: 256 })))
  )

  it.live("a batch reaches the socket in a few writes, not one per message", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("writes")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      const socket = net.Socket.prototype as unknown as { _writeGeneric: (...args: Array<unknown>) => unknown }
      const write = socket._writeGeneric
      let writes = 0
      socket._writeGeneric = function (this: unknown, ...args: Array<unknown>) {
        writes++
        return write.apply(this, args)
      }
      const results = yield* publish(Harness.envelopes(topic, 500)).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            socket._writeGeneric = write
          })
        )
      )
      expect(outcomes(results).every((o) => o === "ok")).toBe(true)
      // amqplib writes each message on its own; the transport corks the socket for each pass.
      expect(writes).toBeLessThan(50)
    }).pipe(Effect.provide(transport()))
  )

  it.live("an undeclared topic fails with TopicNotFound without disturbing the publishes around it", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("known")
      const group = Harness.uniqueName("g")
      const missing = Harness.uniqueName("never-declared")
      yield* Harness.declare([topic], [[topic, group]])
      const before = Harness.envelopes(topic, 50)
      const after = Harness.envelopes(topic, 50)
      // Had the unknown topic been published on the shared confirm channel, the broker would have
      // closed it and every publish after it in the batch would have failed.
      const results = yield* publish([...before, Harness.envelope(missing), ...after])
      expect(outcomes(results)).toEqual([...before.map(() => "ok"), "TopicNotFound", ...after.map(() => "ok")])
      const later = Harness.envelope(topic)
      const again = yield* publish([Harness.envelope(missing), later])
      expect(outcomes(again)).toEqual(["TopicNotFound", "ok"])
      const sub = yield* Harness.subscribe(topic, group, { prefetch: 64 })
      Harness.assertExactlyOnce(
        [...before, ...after, later].map((e) => e.id),
        (yield* sub.consume(101)).map((d) => d.envelope.id)
      )
      yield* sub.nothingWithin("200 millis")
    }).pipe(Effect.provide(transport()))
  )

  it.live("a topic deleted behind the transport's back: TopicNotFound for it, other topics go on", () =>
    Effect.gen(function* () {
      const doomed = Harness.uniqueName("doomed")
      const other = Harness.uniqueName("other")
      const group = Harness.uniqueName("g")
      yield* Harness.declare(
        [doomed, other],
        [
          [doomed, group],
          [other, group]
        ]
      )
      expect(outcomes(yield* publish([Harness.envelope(doomed)]))).toEqual(["ok"])
      yield* Support.admin((ch) => ch.deleteExchange(doomed))
      // Known to exist, so published on the shared channel: the broker closes it, this one fails...
      const [gone] = yield* publish([Harness.envelope(doomed)])
      expect(gone !== undefined && Result.isFailure(gone) && gone.failure).toBeInstanceOf(TopicNotFound)
      // ...a new channel takes over, and the topic is no longer taken for granted.
      expect(outcomes(yield* publish([Harness.envelope(other), Harness.envelope(doomed)]))).toEqual([
        "ok",
        "TopicNotFound"
      ])
    }).pipe(Effect.provide(transport()))
  )

  it.live("payloads over maxMessageBytes and oversized headers fail with MessageTooLarge before sending", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("sizes")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      const capabilities = yield* Transport.Transport.use((t) => Effect.succeed(t.capabilities))
      expect(capabilities.maxMessageBytes).toBe(1024)
      const big = { ...Harness.envelope(topic), payload: new Uint8Array(1025) }
      const fat = Harness.envelope(topic, { headers: { "x-blob": "h".repeat(70_000) } })
      const fine = { ...Harness.envelope(topic), payload: new Uint8Array(1024) }
      expect(outcomes(yield* publish([big, fat, fine]))).toEqual(["MessageTooLarge", "MessageTooLarge", "ok"])
      const sub = yield* Harness.subscribe(topic, group)
      expect((yield* sub.next()).envelope.id).toBe(fine.id)
      yield* sub.nothingWithin("200 millis")
    }).pipe(Effect.provide(transport({ maxMessageBytes: 1024 })))
  )

  it.live(
    "retryLater parks a copy in a retry queue: nothing comes back early, then attempt 2 with everything kept",
    () =>
      Effect.gen(function* () {
        const topic = Harness.uniqueName("retry")
        const group = Harness.uniqueName("g")
        yield* Harness.declare([topic], [[topic, group]])
        const sent = Harness.envelope(topic, { payload: "again", key: "k-7", headers: { "x-tenant": "t1" } })
        yield* Harness.publishAll([sent])
        const sub = yield* Harness.subscribe(topic, group)
        const first = yield* sub.next()
        yield* first.retryLater("1500 millis")
        // No hot requeue loop: the message stays away for its whole delay.
        yield* sub.nothingWithin("1400 millis")
        const second = yield* sub.next("3 seconds")
        expect(second.envelope.id).toBe(sent.id)
        expect(second.attempt).toBe(2)
        expect(second.redelivered).toBe(false)
        expect(second.envelope.key).toBe("k-7")
        expect(second.envelope.timestamp).toBe(sent.timestamp)
        expect(second.envelope.headers["x-tenant"]).toBe("t1")
        expect(Harness.text(second.envelope.payload)).toBe("again")
        // The broker's dead-lettering bookkeeping stays out of the envelope.
        expect(Object.keys(second.envelope.headers).filter((h) => /^x-(death|first-death|last-death)/.test(h))).toEqual(
          []
        )
        const bucket = RabbitTopology.bucket(RabbitConfig.geometricDelays(), 1500)
        const retryQueue = RabbitTopology.retryQueue(RabbitTopology.workQueue("", topic, group), bucket)
        const parked = yield* Support.admin((ch) => ch.checkQueue(retryQueue))
        expect(parked.messageCount).toBe(0)
        yield* second.ack
        yield* Support.admin((ch) => ch.deleteQueue(retryQueue))
      }).pipe(Effect.provide(transport()))
  )

  it.live(
    "deadLetter acks only after the dead-letter queue confirmed the copy; without one it fails and keeps the message",
    () =>
      Effect.gen(function* () {
        const topic = Harness.uniqueName("dead")
        const group = Harness.uniqueName("g")
        yield* Harness.declare([topic], [[topic, group]])
        const dlq = RabbitTopology.deadLetterQueue("", topic, group)
        const [poison, orphan] = Harness.envelopes(topic, 2)
        yield* Harness.publishAll([poison!])
        const sub = yield* Harness.subscribe(topic, group)
        yield* (yield* sub.next()).deadLetter("cannot parse")
        // Confirmed before the settlement returned: it is in the queue now.
        expect((yield* Support.admin((ch) => ch.checkQueue(dlq))).messageCount).toBe(1)
        const dead = yield* Harness.subscribe(topic, group, { source: "dead-letters" })
        const letter = yield* dead.next()
        expect(letter.envelope.id).toBe(poison!.id)
        expect(DeadLetter.reason(letter.envelope)).toMatchObject({ originalTopic: topic, group, error: "cannot parse" })
        yield* letter.ack
        yield* dead.close

        // Without its dead-letter queue the copy cannot be stored: the original must not be acked.
        yield* Support.admin((ch) => ch.deleteQueue(dlq))
        yield* Harness.publishAll([orphan!])
        const stuck = yield* sub.next()
        const error = yield* Effect.flip(stuck.deadLetter("cannot parse"))
        expect(error).toBeInstanceOf(SettlementFailed)
        expect(error.settlement).toBe("deadLetter")
        yield* sub.close
        const again = yield* Harness.subscribe(topic, group)
        const back = yield* again.next()
        expect(back.envelope.id).toBe(orphan!.id)
        expect(back.redelivered).toBe(true)
        yield* back.ack
      }).pipe(Effect.provide(transport()))
  )

  it.live("a retry queue left by other settings is replaced once empty", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("retry-settings")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      const work = RabbitTopology.workQueue("", topic, group)
      const bucket = RabbitTopology.bucket(RabbitConfig.geometricDelays(), 200)
      const retryQueue = RabbitTopology.retryQueue(work, bucket)
      // As an older deployment with another idle time would have left it.
      yield* Support.admin((ch) =>
        ch.assertQueue(retryQueue, {
          durable: true,
          arguments: RabbitTopology.retryQueueArguments({
            queueType: "classic",
            delayMillis: bucket,
            idleMillis: 5 * 60_000,
            returnTo: work
          })
        })
      )
      yield* Harness.publishAll([Harness.envelope(topic)])
      const sub = yield* Harness.subscribe(topic, group)
      yield* (yield* sub.next()).retryLater(200)
      const again = yield* sub.next()
      expect(again.attempt).toBe(2)
      yield* again.ack
      yield* Support.admin((ch) => ch.deleteQueue(retryQueue))
    }).pipe(Effect.provide(transport()))
  )

  it.live(
    "a published message carries its id as message-id, persistent, and no AMQP timestamp: the id has the time",
    () =>
      Effect.gen(function* () {
        const topic = Harness.uniqueName("wire")
        const group = Harness.uniqueName("g")
        yield* Harness.declare([topic], [[topic, group]])
        const sent = Harness.envelope(topic, { payload: "on the wire", headers: { "x-tenant": "t1" } })
        yield* Harness.publishAll([sent])
        const raw = yield* Support.admin((ch) => ch.get(RabbitTopology.workQueue("", topic, group), { noAck: true }))
        expect(raw).not.toBe(false)
        if (raw === false) return
        expect(raw.properties.messageId).toBe(sent.id)
        expect(raw.properties.deliveryMode).toBe(2)
        expect(raw.properties.timestamp).toBeUndefined()
        expect(raw.properties.headers?.["x-tenant"]).toBe("t1")
        // The receiving side still knows when it was sent, from the id.
        expect(MessageId.timeOfUuidV7(raw.properties.messageId)).toBe(sent.timestamp)
      }).pipe(Effect.provide(transport()))
  )

  it.live("a message from a plain AMQP producer without an id goes to the dead letters with the reason", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("foreign")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      yield* Support.admin(async (ch) => {
        ch.publish(topic, "", Buffer.from("from elsewhere"), { headers: { origin: "legacy" } })
        await new Promise((resolve) => setTimeout(resolve, 100))
      })
      // With an AMQP message-id it is a regular delivery.
      yield* Support.admin(async (ch) => {
        ch.publish(topic, "", Buffer.from("with id"), { messageId: "legacy-7", timestamp: 1_700_000_000 })
        await new Promise((resolve) => setTimeout(resolve, 100))
      })
      const sub = yield* Harness.subscribe(topic, group)
      const ok = yield* sub.next()
      expect(ok.envelope.id).toBe("legacy-7")
      expect(ok.envelope.timestamp).toBe(1_700_000_000_000)
      yield* ok.ack
      yield* sub.nothingWithin("200 millis")
      const dead = yield* Harness.subscribe(topic, group, { source: "dead-letters" })
      const letter = yield* dead.next()
      expect(Harness.text(letter.envelope.payload)).toBe("from elsewhere")
      expect(letter.envelope.headers.origin).toBe("legacy")
      expect(DeadLetter.reason(letter.envelope)?.error).toContain("MalformedEnvelope")
      yield* letter.ack
    }).pipe(Effect.provide(transport()))
  )

  it.live("a queue deleted under its consumer fails the stream with GroupNotFound, never a silent stall", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("vanish")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      const t = yield* Transport.Transport
      const inbox = yield* Queue.unbounded<string>()
      const fiber = yield* Effect.forkChild(
        Stream.runForEach(t.subscribe(topic, group, { prefetch: 4 }), (d) =>
          Effect.andThen(d.ack, Queue.offer(inbox, d.envelope.id))
        )
      )
      yield* Harness.publishAll([Harness.envelope(topic)])
      yield* Queue.take(inbox) // the consumer is live
      yield* Support.admin((ch) => ch.deleteQueue(RabbitTopology.workQueue("", topic, group)))
      const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("5 seconds"))
      expect(failureOf(exit)).toMatchObject({ _tag: "GroupNotFound", topic, group })
    }).pipe(Effect.provide(transport()))
  )

  it.live("subscribing to what was never declared fails with TopicNotFound or GroupNotFound", () =>
    Effect.gen(function* () {
      const t = yield* Transport.Transport
      const topic = Harness.uniqueName("lonely")
      const noTopic = yield* Effect.flip(
        Stream.runDrain(t.subscribe(Harness.uniqueName("nowhere"), "g", { prefetch: 1 }))
      )
      expect(noTopic._tag).toBe("TopicNotFound")
      yield* Harness.declare([topic], [])
      const noGroup = yield* Effect.flip(Stream.runDrain(t.subscribe(topic, Harness.uniqueName("g"), { prefetch: 1 })))
      expect(noGroup._tag).toBe("GroupNotFound")
      const noDead = yield* Effect.flip(
        Stream.runDrain(t.subscribeDeadLetters(topic, Harness.uniqueName("g"), { prefetch: 1 }))
      )
      expect(noDead._tag).toBe("GroupNotFound")
    }).pipe(Effect.provide(transport()))
  )

  it.live("quorum queues keep the same contract: round trip, retry queue, dead letters", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("quorum")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      // The work queue really is a quorum queue: declaring it classic is refused.
      const conflict = yield* Support.admin((ch) =>
        ch.assertQueue(RabbitTopology.workQueue("", topic, group), { durable: true }).then(
          () => "accepted",
          (e: { code?: number }) => String(e.code)
        )
      )
      expect(conflict).toBe("406")
      const sent = Harness.envelope(topic)
      yield* Harness.publishAll([sent])
      const sub = yield* Harness.subscribe(topic, group)
      yield* (yield* sub.next()).retryLater(100)
      const again = yield* sub.next()
      expect(again.attempt).toBe(2)
      yield* again.deadLetter("gave up")
      const dead = yield* Harness.subscribe(topic, group, { source: "dead-letters" })
      const letter = yield* dead.next()
      expect(letter.envelope.id).toBe(sent.id)
      expect(DeadLetter.reason(letter.envelope)?.attempt).toBe(2)
      yield* letter.ack
      const bucket = RabbitTopology.bucket(RabbitConfig.geometricDelays(), 100)
      yield* Support.admin((ch) =>
        ch.deleteQueue(RabbitTopology.retryQueue(RabbitTopology.workQueue("", topic, group), bucket))
      )
    }).pipe(Effect.provide(transport({ queueType: "quorum" })))
  )

  it.live("a name prefix is put before every exchange and queue", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("prefixed")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      yield* Support.admin(async (ch) => {
        await ch.checkExchange(`lossless-test.${topic}`)
        await ch.checkQueue(`lossless-test.${topic}__${group}`)
        await ch.checkQueue(`lossless-test.${topic}__${group}__dlq`)
      })
      yield* Harness.publishAll([Harness.envelope(topic)])
      const sub = yield* Harness.subscribe(topic, group)
      yield* (yield* sub.next()).ack
    }).pipe(Effect.provide(transport({ prefix: "lossless-test." })))
  )

  it.live("built from a URL by the amqp:// plugin or from Config, with options in the query string", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("by-url")
      const group = Harness.uniqueName("g")
      const withOptions = `${Support.url}/?prefix=lossless-url.&confirmWindow=8`
      const roundTrip = Effect.gen(function* () {
        expect((yield* Transport.Transport).name).toBe("rabbitmq")
        yield* Harness.declare([topic], [[topic, group]])
        yield* Harness.publishAll(Harness.envelopes(topic, 20))
        const sub = yield* Harness.subscribe(topic, group)
        yield* sub.consume(20)
        yield* Support.admin((ch) => ch.checkQueue(`lossless-url.${topic}__${group}`))
      })
      yield* roundTrip.pipe(
        Effect.provide(
          Support.tidy(TransportUrl.layer([RabbitTransport.plugin], Redacted.make(withOptions)), "lossless-url.")
        )
      )
      const env = ConfigProvider.layer(ConfigProvider.fromEnv({ env: { [RabbitConfig.envVar]: withOptions } }))
      yield* roundTrip.pipe(
        Effect.provide(Support.tidy(RabbitTransport.layerConfig(), "lossless-url.").pipe(Layer.provide(env)))
      )
    })
  )

  it.live("a broker that refuses the login: TransportUnavailable, and the password is in no error or log", () =>
    Effect.gen(function* () {
      const logs: Array<string> = []
      const capture = Logger.layer([
        Logger.make((o) => {
          logs.push(`${String(o.message)} ${Cause.pretty(o.cause)}`)
        })
      ])
      const secret = "not-the-s3cret"
      const wrong = Services.url("rabbitmq").replace(/\/\/([^:@/]*)(:[^@/]*)?@/, `//$1:${secret}@`)
      const layer = RabbitTransport.layer({
        url: Redacted.make(wrong.includes(secret) ? wrong : wrong.replace("//", `//guest:${secret}@`)),
        connectSchedule: Schedule.recurs(1)
      })
      const error = yield* Effect.flip(Layer.build(layer)).pipe(Effect.provide(capture))
      expect(error).toBeInstanceOf(TransportUnavailable)
      expect(error.message).toMatch(/cannot connect/)
      expect(error.message).not.toContain(secret)
      expect(logs.length).toBeGreaterThan(0)
      for (const line of logs) expect(line).not.toContain(secret)
      const unreachable = yield* Effect.flip(
        Layer.build(
          RabbitTransport.layer({ url: `amqp://u:${secret}@127.0.0.1:1`, connectSchedule: Schedule.recurs(0) })
        )
      )
      expect(unreachable.message).toContain("127.0.0.1:1")
      expect(unreachable.message).not.toContain(secret)
    })
  )
})
