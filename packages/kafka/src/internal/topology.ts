/**
 * Topics through the admin client.
 *
 * - Topics are created with the configured partitions, replication factor
 *   and `min.insync.replicas`; one that exists already is fine.
 * - Groups need nothing declared: a group that has never committed starts at
 *   the earliest record its topics retain (see `subscription.ts`).
 * - Publishing checks the topic exists (producers never create topics): a
 *   topic declared here is known; any other is looked up once, and only a
 *   hit is remembered.
 */
import { Names, type TopologyError, type Transport } from "@lossless/core"
import { Deferred, Duration, Effect, Exit, type Schedule, type Scope, Semaphore } from "effect"
import type { Admin, ITopicConfig, Kafka } from "kafkajs"
import type { KafkaConfig } from "../KafkaConfig.ts"
import * as KafkaError from "../KafkaError.ts"
import * as KafkaTopology from "../KafkaTopology.ts"

type Failure = ReturnType<typeof KafkaError.operationFailure>

export interface Declarer {
  readonly ensure: (topology: Transport.Topology) => Effect.Effect<void, TopologyError>
  /** Whether the topic exists: known ones from memory, others asked of the cluster. */
  readonly topicExists: (topic: string) => Effect.Effect<boolean, Failure>
  /** Declares the topics a subscription reads and writes (idempotent, remembered). */
  readonly ensureTopics: (topics: ReadonlyArray<string>) => Effect.Effect<void, Failure>
}

const noop = (): void => {}

export const make = (
  kafka: Kafka,
  config: KafkaConfig,
  connectSchedule: Schedule.Schedule<unknown, unknown>
): Effect.Effect<Declarer, Failure, Scope.Scope> =>
  Effect.gen(function* () {
    const admin: Admin = kafka.admin({ retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 } })
    yield* Effect.tryPromise({ try: () => admin.connect(), catch: KafkaError.operationFailure }).pipe(
      Effect.retry(connectSchedule),
      Effect.mapError((e) =>
        KafkaError.unavailable(`cannot reach the Kafka cluster at ${config.brokers.join(",")}: ${e.reason}`)
      )
    )
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => admin.disconnect().catch(noop)).pipe(Effect.timeoutOption("5 seconds"))
    )

    const known = new Set<string>()
    const checks = new Map<string, Deferred.Deferred<boolean, Failure>>()
    const lock = yield* Semaphore.make(1)
    const timeout = Math.round(Duration.toMillis(config.requestTimeout))

    const call = <A>(run: () => Promise<A>): Effect.Effect<A, Failure> =>
      Effect.tryPromise({ try: run, catch: KafkaError.operationFailure })

    const topicConfig = (topic: string): ITopicConfig => ({
      topic,
      numPartitions: config.partitions,
      ...(config.replicationFactor === undefined ? {} : { replicationFactor: config.replicationFactor }),
      configEntries:
        config.minInsyncReplicas === undefined
          ? []
          : [{ name: "min.insync.replicas", value: String(config.minInsyncReplicas) }]
    })

    const ensureTopics = (topics: ReadonlyArray<string>): Effect.Effect<void, Failure> =>
      Effect.gen(function* () {
        const missing = [...new Set(topics)].filter((t) => !known.has(t))
        if (missing.length === 0) return
        // kafkajs answers `false` when every topic already existed (TOPIC_ALREADY_EXISTS): that is success.
        yield* call(() => admin.createTopics({ topics: missing.map(topicConfig), waitForLeaders: true, timeout }))
        for (const topic of missing) known.add(topic)
      })

    const ensure = (topology: Transport.Topology): Effect.Effect<void, TopologyError> =>
      Effect.gen(function* () {
        for (const topic of topology.topics) yield* Names.validate("topic", topic)
        for (const { topic, group } of topology.groups) {
          yield* Names.validate("topic", topic)
          yield* Names.validate("group", group)
        }
        const topics = new Set(topology.topics)
        for (const { topic, group } of topology.groups) {
          topics.add(topic)
          topics.add(KafkaTopology.retryTopic(topic, group))
          topics.add(KafkaTopology.deadLetterTopic(topic, group))
        }
        yield* lock.withPermit(ensureTopics([...topics]))
      })

    const topicExists = (topic: string): Effect.Effect<boolean, Failure> =>
      Effect.suspend(() => {
        if (known.has(topic)) return Effect.succeed(true)
        if (!Names.isValid(topic)) return Effect.succeed(false)
        const inFlight = checks.get(topic)
        if (inFlight !== undefined) return Deferred.await(inFlight)
        // Concurrent publishes to one unknown topic share one lookup.
        const deferred = Deferred.makeUnsafe<boolean, Failure>()
        checks.set(topic, deferred)
        return call(() => admin.listTopics()).pipe(
          Effect.map((topics) => topics.includes(topic)),
          Effect.uninterruptible,
          Effect.onExit((exit) =>
            Effect.sync(() => {
              checks.delete(topic)
              if (Exit.isSuccess(exit) && exit.value) known.add(topic)
              Deferred.doneUnsafe(deferred, exit)
            })
          )
        )
      })

    return { ensure, topicExists, ensureTopics: (topics) => lock.withPermit(ensureTopics(topics)) }
  })
