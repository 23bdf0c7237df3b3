/**
 * Confirmed publishing with kafkajs's idempotent producer (`acks=-1`).
 *
 * - One produce request in flight at a time. kafkajs rolls a failed
 *   request's sequence numbers back and releases its lock between retries,
 *   so a concurrent request could reuse the sequence numbers of a write
 *   whose response was lost, and the broker would drop it as a duplicate.
 *   A single sender rules that out; throughput comes from batching instead:
 *   whatever waits while a request is out goes in the next one (one
 *   request per `maxMessageBytes`, so the broker never refuses a batch for
 *   its total size).
 * - After any failed request the producer is replaced (a new producer id):
 *   the outcome of that request is unknown, and its rolled-back sequence
 *   numbers must never be reused. A retried message may then be stored
 *   twice (dedupe absorbs it); it is never lost.
 * - Within one request, kafkajs retries `sendRetries` times with the same
 *   sequence numbers, so the broker drops the copies it already has.
 * - Partitions: a keyed record goes where Kafka's default partitioner puts
 *   its key (murmur2, as the Java client), so a key stays on one partition.
 *   Records without a key stick to one partition per request (as Kafka's
 *   sticky partitioner does), so one publish call keeps its order and makes
 *   one batch; the next request moves on to the next partition.
 */
import type { PublishError } from "@lossless/core"
import { Deferred, Duration, Effect, Exit, Queue, Result, type Scope } from "effect"
import { type ICustomPartitioner, type Kafka, type Message, Partitioners, type Producer } from "kafkajs"
import type { KafkaConfig } from "../KafkaConfig.ts"
import * as KafkaError from "../KafkaError.ts"

/** One record to publish. */
export interface Outgoing {
  readonly topic: string
  readonly message: Message
  readonly messageId: string
  /** Estimated bytes in a batch. */
  readonly size: number
}

interface Entry extends Outgoing {
  readonly result: Deferred.Deferred<void, PublishError>
}

export interface Sender {
  /** Publishes records, one result per record in input order. */
  readonly send: (records: ReadonlyArray<Outgoing>) => Effect.Effect<ReadonlyArray<Result.Result<void, PublishError>>>
  /** Produce requests sent so far (for tests and metrics). */
  readonly requests: () => number
}

const noop = (): void => {}

/** Kafka's partitioner for keyed records; unkeyed ones go to partition `round()` modulo the count. */
const stickyPartitioner =
  (round: () => number): ICustomPartitioner =>
  () => {
    const keyed = Partitioners.DefaultPartitioner()
    return (args) => {
      if (args.message.key !== null && args.message.key !== undefined) return keyed(args)
      const partitions = args.partitionMetadata
      const index = round() % partitions.length
      return (partitions[index] ?? partitions[0])?.partitionId ?? 0
    }
  }

export const make = (kafka: Kafka, config: KafkaConfig): Effect.Effect<Sender, never, Scope.Scope> =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<Entry>()
    const ackTimeout = Math.round(Duration.toMillis(config.ackTimeout))
    const requestTimeout = Math.round(Duration.toMillis(config.requestTimeout))
    let producer: Producer | undefined
    let requests = 0
    const partitioner = stickyPartitioner(() => requests)
    let closed = false

    const connect = Effect.tryPromise({
      try: async () => {
        const fresh = kafka.producer({
          idempotent: true,
          maxInFlightRequests: 1,
          allowAutoTopicCreation: false,
          createPartitioner: partitioner,
          retry: { retries: config.sendRetries, initialRetryTime: 100, maxRetryTime: 1000 }
        })
        try {
          await fresh.connect()
        } catch (error) {
          await fresh.disconnect().catch(noop)
          throw error
        }
        return fresh
      },
      catch: (error) => KafkaError.connectionLost(`cannot connect the producer: ${KafkaError.describe(error)}`)
    })

    /** Drops the current producer; the next request gets a new producer id. */
    const replace = () => {
      const old = producer
      producer = undefined
      if (old !== undefined) old.disconnect().catch(noop)
    }

    const failure = (error: unknown, entry: Entry): PublishError =>
      KafkaError.publishFailure(error, {
        topic: entry.topic,
        messageId: entry.messageId,
        size: entry.size,
        limit: config.maxMessageBytes,
        timeoutMillis: requestTimeout
      })

    /** One produce request for `batch`; every entry's result is completed, whatever happens. */
    const request = (batch: ReadonlyArray<Entry>): Effect.Effect<void> =>
      Effect.gen(function* () {
        if (producer === undefined) {
          const connected = yield* Effect.result(connect)
          if (connected._tag === "Failure") {
            for (const entry of batch) Deferred.doneUnsafe(entry.result, Exit.fail(connected.failure))
            return
          }
          producer = connected.success
        }
        const current = producer
        const byTopic = new Map<string, Array<Message>>()
        for (const entry of batch) {
          const list = byTopic.get(entry.topic)
          if (list === undefined) byTopic.set(entry.topic, [entry.message])
          else list.push(entry.message)
        }
        requests++
        const sent = yield* Effect.tryPromise({
          try: () =>
            current.sendBatch({
              acks: -1,
              timeout: ackTimeout,
              topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages }))
            }),
          catch: (error) => error
        }).pipe(
          Effect.result,
          // The request may still be applied: its callers hear "outcome unknown", and its producer id is retired.
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              replace()
              const lost = KafkaError.connectionLost("the transport shut down while the request was in flight")
              for (const entry of batch) Deferred.doneUnsafe(entry.result, Exit.fail(lost))
            })
          )
        )
        if (sent._tag === "Success") {
          for (const entry of batch) Deferred.doneUnsafe(entry.result, Exit.void)
          return
        }
        const error = sent.failure
        if (KafkaError.isTooLarge(error) && batch.length > 1) {
          // The broker's limit is below the configured one: find out record by record.
          const half = Math.ceil(batch.length / 2)
          yield* request(batch.slice(0, half))
          return yield* request(batch.slice(half))
        }
        replace()
        for (const entry of batch) Deferred.doneUnsafe(entry.result, Exit.fail(failure(error, entry)))
      })

    /** Splits what is waiting into requests of at most `maxMessageBytes`, in order. */
    const drain = (entries: ReadonlyArray<Entry>) =>
      Effect.gen(function* () {
        let batch: Array<Entry> = []
        let bytes = 0
        for (const entry of entries) {
          if (batch.length > 0 && bytes + entry.size > config.maxMessageBytes) {
            yield* request(batch)
            batch = []
            bytes = 0
          }
          batch.push(entry)
          bytes += entry.size
        }
        if (batch.length > 0) yield* request(batch)
      })

    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.takeAll(queue), drain)))

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        closed = true
        const gone = KafkaError.unavailable("the transport was shut down")
        for (const entry of yield* Queue.clear(queue)) Deferred.doneUnsafe(entry.result, Exit.fail(gone))
        const last = producer
        producer = undefined
        if (last !== undefined) {
          yield* Effect.promise(() => last.disconnect().catch(noop)).pipe(Effect.timeoutOption("5 seconds"))
        }
      })
    )

    const send: Sender["send"] = (records) =>
      Effect.suspend(() => {
        if (closed) {
          const gone = KafkaError.unavailable("the transport was shut down")
          return Effect.succeed(records.map(() => Result.fail(gone)))
        }
        const entries = records.map((r): Entry => ({ ...r, result: Deferred.makeUnsafe<void, PublishError>() }))
        for (const entry of entries) Queue.offerUnsafe(queue, entry)
        return Effect.forEach(entries, (entry) => Effect.result(Deferred.await(entry.result)))
      })

    return { send, requests: () => requests }
  })
