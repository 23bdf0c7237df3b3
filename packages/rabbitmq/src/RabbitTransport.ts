/**
 * The RabbitMQ transport: the Lossless contract on amqplib.
 *
 * - `publish` succeeds only on the broker's publisher confirm for a
 *   persistent message on a durable exchange, sent `mandatory`: a message no
 *   group's queue takes is `Unroutable`, a topic never declared is
 *   `TopicNotFound`, neither ever a success. Publishes are pipelined within
 *   a bounded confirm window.
 * - `subscribe` consumes a group's durable queue with manual acks and a
 *   bounded prefetch, and keeps consuming across reconnects.
 * - `retryLater` and `deadLetter` store a copy (retry queue, dead-letter
 *   queue) and ack the original only once the copy is confirmed.
 * - `ensureTopology` declares a durable topic exchange per topic and, per
 *   group, a durable work queue bound with `#` and a dead-letter queue.
 *
 * Policy (how often to retry, when to give up) is core's: the adapter only
 * maps the primitives. `deliverAt` is not native to RabbitMQ; core delays
 * such messages itself (`capabilities.delayedDelivery` is false).
 *
 * ```ts
 * const TransportLive = RabbitTransport.layer({ url: Redacted.make("amqp://app:secret@rabbit:5672/prod") })
 * // or, by URL scheme: TransportUrl.layerConfig([MemoryTransport.plugin, RabbitTransport.plugin])
 * ```
 *
 * @since 0.1.0
 */
import {
  Capabilities,
  type Envelope,
  type InvalidUrl,
  MessageTooLarge,
  Names,
  type PublishError,
  TopicNotFound,
  type Transport,
  type TransportUnavailable,
  TransportUrl
} from "@lossless/core"
import { type Config, Deferred, Effect, type Layer, Result, type Scope } from "effect"
import * as Confirms from "./internal/confirms.ts"
import * as Connection from "./internal/connection.ts"
import * as Subscription from "./internal/subscription.ts"
import * as Topology from "./internal/topology.ts"
import * as Wire from "./internal/wire.ts"
import * as RabbitConfig from "./RabbitConfig.ts"
import * as RabbitError from "./RabbitError.ts"
import * as RabbitTopology from "./RabbitTopology.ts"

/**
 * What the RabbitMQ transport does natively. Dead letters are
 * publish-then-ack (not a broker DLX), so the reason travels with the
 * message; delayed delivery is emulated by core.
 */
export const capabilities: Capabilities.Capabilities = Capabilities.make({
  durable: true,
  delayedDelivery: false,
  nativeDeadLetter: false,
  halfMessages: false,
  ordering: "queue",
  redeliveryFlag: true,
  maxMessageBytes: RabbitConfig.defaultMaxMessageBytes
})

/** Builds the transport in the current scope: connected when it succeeds, closed with the scope. */
export const make = (
  config: RabbitConfig.RabbitConfig
): Effect.Effect<Transport.TransportShape, TransportUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const manager = yield* Connection.make(config)
    const declarer = yield* Topology.make(manager)
    const confirms = yield* Confirms.make(manager, declarer.forgetExchange)
    const dependencies: Subscription.Dependencies = { manager, declarer, confirms }

    /** What fails before sending: too large (payload or headers), or not a topic name at all. */
    const refuse = (
      envelope: Envelope.Envelope,
      target: Confirms.Target,
      validTopic: boolean
    ): PublishError | undefined => {
      const size = envelope.payload.byteLength
      if (size > config.maxMessageBytes) {
        return new MessageTooLarge({
          topic: envelope.topic,
          messageId: envelope.id,
          size,
          limit: config.maxMessageBytes
        })
      }
      // amqplib encodes the header table into a 64 KiB buffer; measured only when it might not fit.
      const headers = target.properties.headers as Readonly<Record<string, unknown>> | undefined
      const headerBytes = Confirms.headerTableSurelyFits(headers) ? 0 : Confirms.headerTableBytes(headers)
      if (headerBytes > Confirms.headerTableLimit) {
        return new MessageTooLarge({
          topic: envelope.topic,
          messageId: envelope.id,
          size: headerBytes + size,
          limit: Confirms.headerTableLimit
        })
      }
      if (!validTopic) return new TopicNotFound({ topic: envelope.topic })
      return undefined
    }

    const target = (envelope: Envelope.Envelope, exchange: string): Confirms.Target => ({
      exchange,
      routingKey: envelope.topic,
      // The envelope's bytes are sent as they are: envelopes are immutable, and a confirm means they were read.
      content: Wire.content(envelope.payload),
      properties: Wire.properties(envelope),
      topic: envelope.topic,
      messageId: envelope.id
    })

    /** Publishes one envelope whose send had to wait (unknown topic, full window, flow control, no channel). */
    const publishLater = (target: Confirms.Target, settle: Confirms.Settle, tag: number): Effect.Effect<void> =>
      Effect.flatMap(
        // A publish to a missing exchange would close the shared channel: ask on a channel of its own first.
        Effect.result(declarer.exchangeExists(target.exchange)),
        (exists) => {
          if (exists._tag === "Failure") return Effect.sync(() => settle(exists.failure, tag))
          if (!exists.success) return Effect.sync(() => settle(new TopicNotFound({ topic: target.topic }), tag))
          return confirms.send(target, settle, tag)
        }
      )

    const confirmed: Transport.PublishResult = Result.succeed(undefined)

    const publish: Transport.TransportShape["publish"] = (batch) =>
      Effect.gen(function* () {
        const results: Array<Transport.PublishResult> = new Array(batch.length)
        // Sent back to back, synchronously while nothing has to be waited for; one wait for the
        // whole batch's confirms afterwards, so a batch costs about one round trip.
        const all = Deferred.makeUnsafe<void>()
        let outstanding = 1
        const release = () => {
          if (--outstanding === 0) Deferred.doneUnsafe(all, Effect.void)
        }
        // One settle for the batch: the tag is the message's position.
        const settle: Confirms.Settle = (error, i) => {
          results[i] = error === undefined ? confirmed : Result.fail(error)
          release()
        }
        // A batch is usually of one topic: its exchange name and validity are worked out once.
        let topic: string | undefined
        let exchange = ""
        let validTopic = false
        for (let i = 0; i < batch.length; i++) {
          const envelope = batch[i] as Envelope.Envelope
          if (envelope.topic !== topic) {
            topic = envelope.topic
            exchange = RabbitTopology.exchange(config.prefix, topic)
            validTopic = Names.isValid(topic)
          }
          const out = target(envelope, exchange)
          const refused = refuse(envelope, out, validTopic)
          if (refused !== undefined) {
            results[i] = Result.fail(refused)
            continue
          }
          outstanding++
          if (declarer.isKnownExchange(out.exchange) && confirms.sendNow(out, settle, i)) continue
          yield* publishLater(out, settle, i)
        }
        release()
        yield* Deferred.await(all)
        return results
      })

    return {
      name: RabbitError.transport,
      capabilities: { ...capabilities, maxMessageBytes: config.maxMessageBytes },
      ensureTopology: declarer.ensure,
      publish,
      subscribe: (topic, group, options) =>
        Subscription.subscribe(dependencies, { topic, group, kind: "main" }, options),
      subscribeDeadLetters: (topic, group, options) =>
        Subscription.subscribe(dependencies, { topic, group, kind: "dead" }, options)
    }
  })

/** Why the layer could not be built: a bad URL, or a broker that could not be reached on the connect schedule. */
export type LayerError = InvalidUrl | TransportUnavailable

const adapter = TransportUrl.adapter({
  name: RabbitError.transport,
  schemes: ["amqp", "amqps"],
  configure: RabbitConfig.make,
  build: make,
  fromEnv: RabbitConfig.fromEnv,
  fromUrl: (url): RabbitConfig.RabbitOptions => ({ url })
})

/** The RabbitMQ transport from options; connected when built, closed (channels, then connection) when released. */
export const layer: (options: RabbitConfig.RabbitOptions) => Layer.Layer<Transport.Transport, LayerError> =
  adapter.layer

/**
 * The RabbitMQ transport from `Config`: by default the URL in
 * `LOSSLESS_RABBITMQ_URL` (options in its query string); or any record of
 * configs, e.g. `{ url: Config.Redacted("AMQP_URL"), queueType: Config.succeed("quorum") }`.
 */
export const layerConfig: (
  config?: Config.Wrap<RabbitConfig.RabbitOptions>
) => Layer.Layer<Transport.Transport, LayerError | Config.ConfigError> = adapter.layerConfig

/** Serves `amqp://` and `amqps://` URLs; options may ride in the query string. */
export const plugin: TransportUrl.TransportPlugin = adapter.plugin
