/**
 * Kafka two ways, each on an in-process Kafka emulator
 * (`@lossless/testkit/kafka`) of its own, over TCP with kafkajs:
 *
 * - `kafka-raw`: kafkajs itself, the baseline, set up as the adapter sets it
 *   up: an idempotent producer writing with `acks=-1`, one request in flight,
 *   each batch one `send`; a consumer in the group `<topic>__<group>` that
 *   reads from the beginning with `eachMessage` and commits after each batch.
 * - `kafka`: `@lossless/kafka` through the Transport contract, driven like
 *   the memory transport (`transport.ts`).
 *
 * Topics get 3 partitions either way (`kafkaRawWith` and `kafkaRuntimeWith`
 * make targets with another count, for the partition sweep). The emulator
 * stores in memory: the figures compare the two clients' costs, not a broker's.
 */
import { KafkaTopology, KafkaTransport } from "@lossless/kafka"
import * as KafkaEmulator from "@lossless/testkit/kafka"
import { Effect } from "effect"
import { Kafka, logLevel, Partitioners } from "kafkajs"
import { defaultPartitions, partitionedName } from "../Scenario.ts"
import { openRuntime } from "./runtime.ts"
import { type BenchClient, BenchError, type Target } from "./Target.ts"
import { buildTransport, fromLayer, seqHeader } from "./transport.ts"

const failed = (what: string) => (cause: unknown) =>
  new BenchError({ message: `kafka: ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

const emulator = KafkaEmulator.scoped({ autoCreateTopics: false })
const noop = (): void => {}

const openRaw = (partitions: number) =>
  Effect.gen(function* () {
    const { brokers } = yield* emulator
    const kafka = new Kafka({ clientId: "lossless-bench-raw", brokers: [...brokers], logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner
    })
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          await admin.connect()
          await producer.connect()
        },
        catch: failed("could not connect")
      }),
      () => Effect.promise(() => Promise.all([admin.disconnect(), producer.disconnect()]).catch(noop))
    )

    return {
      prepare: (topic) =>
        Effect.tryPromise({
          try: () => admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true }),
          catch: failed("could not create the round's topic")
        }).pipe(Effect.asVoid),

      prepareBatch: (topic, firstSeq, count, payload) => {
        const value = Buffer.from(payload)
        const messages = Array.from({ length: count }, (_, i) => ({
          value,
          headers: { [seqHeader]: String(firstSeq + i) }
        }))
        return Effect.tryPromise({
          try: () => producer.send({ topic, messages, acks: -1 }),
          catch: failed("send not confirmed")
        }).pipe(Effect.asVoid)
      },

      consume: (topic, group, prefetch, sink) =>
        Effect.acquireUseRelease(
          Effect.sync(() =>
            kafka.consumer({ groupId: KafkaTopology.consumerGroup(topic, group), maxWaitTimeInMs: 100 })
          ),
          (consumer) =>
            Effect.callback<void, BenchError>((resume) => {
              let stopped = false
              const run = async () => {
                await consumer.connect()
                await consumer.subscribe({ topics: [topic], fromBeginning: true })
                await consumer.run({
                  // kafkajs has no prefetch: one partition's fetched batch at a time stands in for it.
                  partitionsConsumedConcurrently: 1,
                  eachMessage: async ({ message }) => {
                    if (stopped) return
                    sink.onReceive(Number(message.headers?.[seqHeader]?.toString()))
                    if (!sink.onSettled()) {
                      stopped = true
                      resume(Effect.void)
                    }
                  }
                })
              }
              run().catch((error: unknown) => {
                if (!stopped) resume(Effect.fail(failed("consume failed")(error)))
              })
              void prefetch
            }),
          (consumer) => Effect.promise(() => consumer.disconnect().catch(noop))
        )
    } satisfies BenchClient
  })

const transportLayer = (brokers: ReadonlyArray<string>, partitions: number) =>
  KafkaTransport.layer({ url: `kafka://${brokers.join(",")}`, partitions, maxWaitTime: "100 millis" })

const openTransport = Effect.flatMap(emulator, ({ brokers }) => fromLayer(transportLayer(brokers, defaultPartitions)))

/** Core's Publisher and Consumer over the adapter, as the RabbitMQ runtime target runs them. */
const openRuntimeClient = (name: string, partitions: number) =>
  Effect.flatMap(emulator, ({ brokers }) =>
    Effect.flatMap(buildTransport(transportLayer(brokers, partitions)), (transport) =>
      openRuntime(name, transport, "plain")
    )
  )

const probe = Effect.succeed({ available: true } as const)

/** Raw kafkajs, its topics with `partitions` partitions. */
export const kafkaRawWith = (partitions: number): Target => ({
  name: partitionedName("kafka-raw", partitions),
  broker: "kafka",
  kind: "raw",
  description: `kafkajs idempotent producer (acks=-1) and a consumer group committing per batch, on the emulator, ${partitions} partition(s)`,
  probe,
  open: openRaw(partitions)
})

/** Core's runtime over the adapter, its topics with `partitions` partitions. */
export const kafkaRuntimeWith = (partitions: number): Target => {
  const name = partitionedName("kafka-runtime", partitions)
  return {
    name,
    broker: "kafka",
    kind: "runtime",
    description: `core Publisher.sendBatch + Consumer.start over @lossless/kafka, on the emulator, ${partitions} partition(s)`,
    probe,
    open: openRuntimeClient(name, partitions)
  }
}

export const kafkaRaw: Target = kafkaRawWith(defaultPartitions)

export const kafkaTransport: Target = {
  name: "kafka",
  broker: "kafka",
  kind: "lossless",
  description: "@lossless/kafka, through the Transport contract, on the emulator",
  probe,
  open: openTransport
}

export const kafkaRuntime: Target = kafkaRuntimeWith(defaultPartitions)
