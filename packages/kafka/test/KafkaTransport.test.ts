/**
 * What the Kafka mapping must get right beyond the shared suite: offsets
 * committed only for settled work across crashes and rebalances, idempotent
 * writes under lost responses, partitions that do not block each other, and
 * permanent failures that are not retried.
 */
import { expect, layer } from "@effect/vitest"
import {
  Consumer,
  DeadLetter,
  Dedupe,
  Headers,
  Publisher,
  SendFailed,
  SettlementFailed,
  Topic,
  Transport,
  TransportUrl
} from "@lossless/core"
import { KafkaTopology, KafkaTransport } from "@lossless/kafka"
import { Harness } from "@lossless/testkit"
import { Clock, Effect, Exit, Layer, Schedule, Schema, Scope } from "effect"
import { Kafka, logLevel } from "kafkajs"
import * as Support from "./support.ts"

const kafka = await Support.emulator()
/** A broker that refuses record batches over 10 kB. */
const strict = await Support.emulator({ messageMaxBytes: 10_000 })

const Job = Schema.Struct({ n: Schema.Int })
const publisher = Publisher.layer({ retry: Schedule.spaced("50 millis").pipe(Schedule.upTo({ times: 10 })) })
const sendAll = (topic: Topic.Topic<typeof Job.Type>, n: number, key: (i: number) => string) =>
  Publisher.sendBatch(
    topic,
    Array.from({ length: n }, (_, i) => ({ payload: { n: i }, key: key(i) }))
  ).pipe(Effect.provide(publisher))

/** Offsets the group committed, summed over the topic's partitions. */
const committedTotal = (topic: string, group: string): bigint => {
  const partitions = kafka.topics().find((t) => t.name === topic)?.partitions ?? 0
  let total = 0n
  for (let p = 0; p < partitions; p++) {
    total += kafka.committedOffset(KafkaTopology.consumerGroup(topic, group), topic, p) ?? 0n
  }
  return total
}

layer(Support.layer(kafka), { excludeTestServices: true, timeout: "60 seconds" })("kafka transport", (it) => {
  it.effect("a consumer killed mid-handler loses nothing: the rest is redelivered from the last commit", () =>
    Effect.gen(function* () {
      const topic = Topic.make(Harness.uniqueName("killed"), Job)
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic.name], [[topic.name, group]])
      const store = yield* Dedupe.memoryStore()
      const effects: Array<string> = []
      const handler = (message: { id: string }) =>
        Effect.sleep("10 millis").pipe(Effect.andThen(Effect.sync(() => effects.push(message.id))))
      const options = { topic, group, concurrency: 4, dedupe: { store }, handler }
      const sent = yield* sendAll(topic, 120, (i) => `k${i % 12}`)
      const first = yield* Scope.make()
      // Killed, not drained: running handlers are interrupted without settling.
      yield* Consumer.start({ ...options, shutdownTimeout: "1 millis" }).pipe(Scope.provide(first))
      yield* Harness.eventually("some messages handled", () => effects.length >= 20)
      yield* Scope.close(first, Exit.void)
      const atKill = effects.length
      yield* Consumer.start(options)
      yield* Harness.eventually("every message handled", () => new Set(effects).size === sent.length)
      expect(atKill).toBeLessThan(sent.length)
      Harness.assertExactlyOnce(
        sent.map((s) => s.id),
        effects
      )
      // Everything settled is committed: the group's position is at the end of every partition.
      yield* Harness.eventually("all offsets committed", () => committedTotal(topic.name, group) === 120n)
    })
  )

  it.effect("a member joining mid-stream takes partitions over with no loss; dedupe absorbs the repeats", () =>
    Effect.gen(function* () {
      const topic = Topic.make(Harness.uniqueName("rebalance"), Job)
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic.name], [[topic.name, group]])
      const store = yield* Dedupe.memoryStore()
      const effects: Array<string> = []
      const byMember = [0, 0]
      const member = (index: 0 | 1) =>
        Consumer.start({
          topic,
          group,
          concurrency: 4,
          dedupe: { store, busyDelay: "20 millis" },
          handler: (message) =>
            Effect.sleep("5 millis").pipe(
              Effect.andThen(
                Effect.sync(() => {
                  effects.push(message.id)
                  byMember[index] = (byMember[index] ?? 0) + 1
                })
              )
            )
        })
      yield* member(0)
      const sent = yield* sendAll(topic, 300, (i) => `k${i % 30}`)
      yield* Harness.eventually("the first member under way", () => effects.length >= 40)
      yield* member(1)
      yield* Harness.eventually("every message handled", () => new Set(effects).size === sent.length, "20 seconds")
      yield* Effect.sleep("300 millis")
      Harness.assertExactlyOnce(
        sent.map((s) => s.id),
        effects
      )
      expect(byMember[1]).toBeGreaterThan(0)
      yield* Harness.eventually("all offsets committed", () => committedTotal(topic.name, group) === 300n)
    })
  )

  it.effect("concurrent sends to one partition whose responses are lost store every message exactly once", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("idempotent")
      yield* Harness.declare([topic], [])
      // The broker stores these requests but the client never hears back: kafkajs resends them with the
      // same producer id and sequence numbers, and the broker drops the copies.
      kafka.faults.dropNext("Produce", { count: 3, applied: true })
      const batches = Array.from({ length: 8 }, () => Harness.envelopes(topic, 40, () => "one-key"))
      yield* Effect.forEach(batches, (batch) => Effect.forEach(batch, (e) => Harness.publishAll([e])), {
        concurrency: "unbounded",
        discard: true
      })
      const stored = [0, 1, 2].flatMap((p) => kafka.records(topic, p))
      const ids = stored.map((r) => r.headers[Headers.MessageId]?.toString("utf8") ?? "")
      Harness.assertExactlyOnce(
        batches.flat().map((e) => e.id),
        ids
      )
      // One key, one partition.
      expect(new Set([0, 1, 2].filter((p) => kafka.records(topic, p).length > 0)).size).toBe(1)
    })
  )

  it.effect("a poison message on one partition is dead-lettered while the other partitions keep flowing", () =>
    Effect.gen(function* () {
      const topic = Topic.make(Harness.uniqueName("poison"), Job)
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic.name], [[topic.name, group]])
      const handled: Array<number> = []
      let handledBeforeGivingUp = -1
      yield* Consumer.start({
        topic,
        group,
        concurrency: 2,
        retry: { immediate: 0, delayed: Schedule.spaced("400 millis").pipe(Schedule.upTo({ times: 2 })) },
        handler: (message, context) =>
          Effect.suspend(() => {
            if (message.payload.n !== 0) return Effect.sync(() => handled.push(message.payload.n))
            if (context.attempt === 3) handledBeforeGivingUp = handled.length
            return Effect.fail(new Error("ledger rejects entry 0"))
          })
      })
      yield* sendAll(topic, 60, (i) => `k${i % 6}`)
      const dead = yield* Harness.subscribe(topic.name, group, { source: "dead-letters" })
      const letter = yield* dead.next()
      expect(DeadLetter.reason(letter.envelope)).toMatchObject({ originalTopic: topic.name, group, attempt: 3 })
      yield* Harness.eventually("the other 59 handled", () => handled.length === 59)
      // While the poison message waited for its retries, everything else went through.
      expect(handledBeforeGivingUp).toBe(59)
    })
  )

  it.effect("a message the broker refuses as too large fails at once, without retries", () =>
    Effect.gen(function* () {
      const topic = Topic.make(Harness.uniqueName("oversized"), Schema.String)
      yield* Transport.Transport.use((t) => t.ensureTopology({ topics: [topic.name], groups: [] }))
      const start = yield* Clock.currentTimeMillis
      // The transport allows 1 MB; this broker refuses anything over 10 kB.
      const error = yield* Publisher.send(topic, "x".repeat(20_000)).pipe(
        Effect.provide(Publisher.layer({ retry: Schedule.spaced("200 millis").pipe(Schedule.upTo({ times: 5 })) })),
        Effect.flip
      )
      expect(error).toBeInstanceOf(SendFailed)
      const failure = (error as SendFailed).failures[0]
      expect(failure?.error._tag).toBe("MessageTooLarge")
      expect(failure?.error.retryable).toBe(false)
      expect(failure?.attempts).toBe(1)
      expect(yield* Harness.since(start)).toBeLessThan(1000)
      const ok = yield* Publisher.send(topic, "fits").pipe(Effect.provide(Publisher.layer()))
      expect(ok.attempts).toBe(1)
    }).pipe(Effect.provide(Support.layer(strict)))
  )

  it.effect("a rebalance voids the deliveries of revoked partitions; the new owner gets exactly those", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("revoked")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      const sent = Harness.envelopes(topic, 30, (i) => `k${i}`)
      yield* Harness.publishAll(sent)
      const first = yield* Harness.subscribe(topic, group, { prefetch: 30 })
      const held = yield* first.take(30)
      const second = yield* Harness.subscribe(topic, group, { prefetch: 30 })
      yield* Harness.eventually("the first member to lose a partition", () => held.some((d) => !d.settleable()))
      const revoked = held.filter((d) => !d.settleable())
      const kept = held.filter((d) => d.settleable())
      expect(kept.length).toBeGreaterThan(0)
      for (const d of revoked) {
        const error = yield* Effect.flip(d.ack)
        expect(error).toBeInstanceOf(SettlementFailed)
      }
      for (const d of kept) yield* d.ack
      // The new owner reads the revoked partitions again from the last commit: exactly the voided deliveries.
      const taken = yield* second.consume(revoked.length)
      Harness.assertExactlyOnce(
        revoked.map((d) => d.envelope.id),
        taken.map((d) => d.envelope.id)
      )
      yield* second.nothingWithin("300 millis")
      yield* first.nothingWithin("300 millis")
    })
  )

  it.effect("a record from a plain Kafka producer without an id goes to the dead letters; its neighbours flow", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("foreign")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      const before = Harness.envelopes(topic, 3, () => "k")
      const after = Harness.envelopes(topic, 3, () => "k")
      yield* Harness.publishAll(before)
      yield* Effect.promise(async () => {
        const client = new Kafka({ clientId: "legacy", brokers: [...kafka.brokers], logLevel: logLevel.NOTHING })
        const producer = client.producer({ allowAutoTopicCreation: false })
        await producer.connect()
        await producer.send({
          topic,
          acks: -1,
          messages: [{ key: "k", value: "from elsewhere", headers: { origin: "legacy" } }]
        })
        await producer.disconnect()
      })
      yield* Harness.publishAll(after)
      const sub = yield* Harness.subscribe(topic, group)
      const taken = yield* sub.consume(6)
      Harness.assertExactlyOnce(
        [...before, ...after].map((e) => e.id),
        taken.map((d) => d.envelope.id)
      )
      yield* sub.nothingWithin("200 millis")
      const dead = yield* Harness.subscribe(topic, group, { source: "dead-letters" })
      const letter = yield* dead.next()
      expect(Harness.text(letter.envelope.payload)).toBe("from elsewhere")
      expect(letter.envelope.headers.origin).toBe("legacy")
      expect(DeadLetter.reason(letter.envelope)?.error).toContain("MalformedEnvelope")
      yield* letter.ack
      // The moved record counts as settled: the group's position passes all seven records.
      yield* Harness.eventually("all offsets committed", () => committedTotal(topic, group) === 7n)
    })
  )

  it.effect("the kafka:// URL picks this transport, with topic settings from its query string", () =>
    Effect.gen(function* () {
      const topic = Harness.uniqueName("by-url")
      const group = Harness.uniqueName("g")
      yield* Harness.declare([topic], [[topic, group]])
      expect(
        kafka
          .topics()
          .filter((t) => t.name.startsWith(topic))
          .map((t) => t.partitions)
      ).toEqual([5, 5, 5])
      const sent = Harness.envelope(topic, { key: "k" })
      yield* Harness.publishAll([sent])
      const sub = yield* Harness.subscribe(topic, group)
      expect((yield* sub.next()).envelope.id).toBe(sent.id)
    }).pipe(
      Effect.provide(
        Layer.orDie(
          TransportUrl.layer(
            [KafkaTransport.plugin],
            `kafka://${kafka.brokers[0]}?partitions=5&heartbeatInterval=200&maxWaitTime=100&logLevel=nothing`
          )
        )
      )
    )
  )
})
