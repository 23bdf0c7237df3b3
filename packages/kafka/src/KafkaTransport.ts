/**
 * The Kafka transport: the Lossless contract on kafkajs.
 *
 * - `publish` succeeds only when the partition leader confirmed the write
 *   with `acks=-1` (every in-sync replica has it) from the idempotent
 *   producer. A record's key is the envelope's key, so one key stays on one
 *   partition, in order. A topic that does not exist is `TopicNotFound`:
 *   producers never create topics.
 * - `subscribe` reads the group's work topic and retry topic in the Kafka
 *   consumer group `<topic>__<group>`, commits offsets only for each
 *   partition's settled prefix, and bounds unsettled deliveries by pausing
 *   partitions.
 * - `retryLater` and `deadLetter` store a copy in the group's retry or
 *   dead-letter topic, confirmed, before the original counts as settled.
 * - `ensureTopology` creates the work, retry and dead-letter topics. A group
 *   that has never committed starts at the earliest record its topics retain.
 *
 * Policy (how often to retry, when to give up) is core's: the adapter only
 * maps the primitives. Kafka cannot hold a message until a time, so
 * `deliverAt` is emulated by core (`capabilities.delayedDelivery` is false),
 * and it does not say whether a record was handed out before
 * (`redeliveryFlag` is false).
 *
 * ```ts
 * const TransportLive = KafkaTransport.layer({ url: "kafka://broker-1:9092,broker-2:9092?replicationFactor=3" })
 * // or, by URL scheme: TransportUrl.layerConfig([MemoryTransport.plugin, KafkaTransport.plugin])
 * ```
 *
 * @since 0.1.0
 */
import {
  Capabilities,
  type Envelope,
  type InvalidUrl,
  MessageTooLarge,
  type PublishError,
  TopicNotFound,
  type Transport,
  type TransportUnavailable,
  TransportUrl
} from "@lossless/core"
import { type Config, Effect, type Layer, Result, Schedule, type Scope } from "effect"
import * as Client from "./internal/client.ts"
import * as Producer from "./internal/producer.ts"
import * as Subscription from "./internal/subscription.ts"
import * as Topology from "./internal/topology.ts"
import * as Wire from "./internal/wire.ts"
import * as KafkaConfig from "./KafkaConfig.ts"
import * as KafkaError from "./KafkaError.ts"

/**
 * What the Kafka transport does natively. Dead letters and retries are
 * topics written by the adapter; per-key order holds across the members of
 * a group, because a key always maps to one partition.
 */
export const capabilities: Capabilities.Capabilities = Capabilities.make({
  durable: true,
  delayedDelivery: false,
  nativeDeadLetter: false,
  halfMessages: false,
  ordering: "key",
  redeliveryFlag: false,
  maxMessageBytes: KafkaConfig.defaultMaxMessageBytes
})

/** How often the first connection to the cluster is tried before the layer fails. */
const connectSchedule = Schedule.min([Schedule.exponential("200 millis", 2), Schedule.spaced("2 seconds")]).pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 5 })
) as Schedule.Schedule<unknown, unknown>

/** Builds the transport in the current scope: connected when it succeeds, closed with the scope. */
export const make = (
  config: KafkaConfig.KafkaConfig
): Effect.Effect<Transport.TransportShape, TransportUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const kafka = Client.make(config, (log) => {
      Effect.runForkWith(context)(log)
    })
    const declarer = yield* Topology.make(kafka, config, connectSchedule).pipe(
      Effect.mapError((e) => (e._tag === "TransportUnavailable" ? e : KafkaError.unavailable(e.reason)))
    )
    const sender = yield* Producer.make(kafka, config)
    const dependencies: Subscription.Dependencies = { kafka, config, sender, declarer }

    /** What fails before sending: too large, or a topic that does not exist. */
    const refuse = (
      envelope: Envelope.Envelope,
      outgoing: Producer.Outgoing
    ): Effect.Effect<PublishError | undefined> =>
      Effect.gen(function* () {
        if (outgoing.size > config.maxMessageBytes || envelope.payload.byteLength > config.maxMessageBytes) {
          return new MessageTooLarge({
            topic: envelope.topic,
            messageId: envelope.id,
            size: Math.max(outgoing.size, envelope.payload.byteLength),
            limit: config.maxMessageBytes
          })
        }
        const exists = yield* Effect.result(declarer.topicExists(envelope.topic))
        if (exists._tag === "Failure") return exists.failure
        return exists.success ? undefined : new TopicNotFound({ topic: envelope.topic })
      })

    const publish: Transport.TransportShape["publish"] = (batch) =>
      Effect.gen(function* () {
        const results: Array<Transport.PublishResult> = new Array(batch.length)
        const indices: Array<number> = []
        const outgoing: Array<Producer.Outgoing> = []
        for (let i = 0; i < batch.length; i++) {
          const envelope = batch[i] as Envelope.Envelope
          const message = Wire.record(envelope)
          const out: Producer.Outgoing = {
            topic: envelope.topic,
            message,
            messageId: envelope.id,
            size: Wire.size(message)
          }
          const refused = yield* refuse(envelope, out)
          if (refused !== undefined) {
            results[i] = Result.fail(refused)
            continue
          }
          indices.push(i)
          outgoing.push(out)
        }
        // Every accepted envelope of this call goes to the producer at once, so they share requests.
        const sent = outgoing.length === 0 ? [] : yield* sender.send(outgoing)
        sent.forEach((result, j) => {
          results[indices[j] as number] = result
        })
        return results
      })

    return {
      name: KafkaError.transport,
      capabilities: { ...capabilities, maxMessageBytes: config.maxMessageBytes },
      ensureTopology: declarer.ensure,
      publish,
      subscribe: (topic, group, options) =>
        Subscription.subscribe(dependencies, { topic, group, kind: "main" }, options),
      subscribeDeadLetters: (topic, group, options) =>
        Subscription.subscribe(dependencies, { topic, group, kind: "dead" }, options)
    }
  })

/** Why the layer could not be built: a bad URL, or a cluster that could not be reached on the connect schedule. */
export type LayerError = InvalidUrl | TransportUnavailable

const adapter = TransportUrl.adapter({
  name: KafkaError.transport,
  schemes: ["kafka", "kafkas"],
  configure: KafkaConfig.make,
  build: make,
  fromEnv: KafkaConfig.fromEnv,
  fromUrl: (url): KafkaConfig.KafkaOptions => ({ url })
})

/** The Kafka transport from options; connected when built, closed (consumers, producer, admin) when released. */
export const layer: (options: KafkaConfig.KafkaOptions) => Layer.Layer<Transport.Transport, LayerError> = adapter.layer

/**
 * The Kafka transport from `Config`: by default the URL in
 * `LOSSLESS_KAFKA_URL` (options in its query string); or any record of
 * configs, e.g. `{ url: Config.Redacted("KAFKA_URL"), partitions: Config.succeed(12) }`.
 */
export const layerConfig: (
  config?: Config.Wrap<KafkaConfig.KafkaOptions>
) => Layer.Layer<Transport.Transport, LayerError | Config.ConfigError> = adapter.layerConfig

/** Serves `kafka://` and `kafkas://` URLs; options may ride in the query string. */
export const plugin: TransportUrl.TransportPlugin = adapter.plugin
