/**
 * The RocketMQ transport: the Lossless contract on a RocketMQ 5 proxy,
 * through rocketmq-client-nodejs (gRPC).
 *
 * - `publish` sends each envelope synchronously and succeeds only on an OK
 *   status: stored, and flushed or replicated as the broker is configured to
 *   confirm. A flush or replica timeout, or no replica available, is a
 *   retryable `PersistenceTimeout` in strict mode (the default); with
 *   `strict: false` it counts as stored. Sends of a batch run concurrently,
 *   bounded; on FIFO topics one key's envelopes go one after the other.
 * - `deliverAt` travels as the message's delivery timestamp (the broker's
 *   timer), so delayed delivery is native — except on FIFO topics, where
 *   RocketMQ does not allow it and core delays instead.
 * - `subscribe` receives with a simple consumer per (topic, group), keeps
 *   each delivery invisible while it is in hand, and settles it by its latest
 *   receipt handle (see `internal/subscription.ts`).
 * - `retryLater` is ChangeInvisibleDuration; `deadLetter` stores a copy with
 *   the reason in the group's dead-letter topic, then acks.
 * - Half messages are native: see `RocketHalfMessages` and `layerHalfMessages`.
 *
 * Policy (how often to retry, when to give up) is core's: the client's own
 * send retries are off, so one `publish` is one attempt.
 *
 * ```ts
 * const TransportLive = RocketTransport.layer({ url: "rocketmq://proxy:8081" })
 * // or, by URL scheme: TransportUrl.layerConfig([MemoryTransport.plugin, RocketTransport.plugin])
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
  type TopologyError,
  type Transport,
  type TransportUnavailable,
  TransportUrl
} from "@lossless/core"
import { type Config, Deferred, Duration, Effect, type Layer, Scope } from "effect"
import * as Clients from "./internal/clients.ts"
import * as Subscription from "./internal/subscription.ts"
import * as Wire from "./internal/wire.ts"
import * as RocketConfig from "./RocketConfig.ts"
import * as RocketError from "./RocketError.ts"
import * as RocketHalfMessages from "./RocketHalfMessages.ts"
import * as RocketTopology from "./RocketTopology.ts"

/**
 * What the RocketMQ transport does natively, on normal (non-FIFO) topics.
 * Dead letters are a copy with the reason stored in a dead-letter topic, then
 * an ack — RocketMQ's own dead-letter queue keeps no reason — so
 * `nativeDeadLetter` is false.
 */
export const capabilities: Capabilities.Capabilities = Capabilities.make({
  durable: true,
  delayedDelivery: true,
  nativeDeadLetter: false,
  halfMessages: true,
  ordering: "none",
  redeliveryFlag: true,
  maxMessageBytes: RocketConfig.defaultMaxMessageBytes
})

/** What the transport does natively with these settings: FIFO topics order by key but cannot delay. */
export const capabilitiesFor = (config: RocketConfig.RocketConfig): Capabilities.Capabilities => ({
  ...capabilities,
  delayedDelivery: !config.fifo,
  ordering: config.fifo ? "key" : "none",
  maxMessageBytes: config.maxMessageBytes
})

/** Builds the transport in the current scope; its clients are shut down with the scope. */
export const make = (
  config: RocketConfig.RocketConfig
): Effect.Effect<Transport.TransportShape, TransportUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Scope.Scope
    const producer = yield* Clients.producer(config).pipe(
      Effect.mapError((error) =>
        error._tag === "TransportUnavailable" ? error : RocketError.unavailable(error.message)
      )
    )
    const shape: Wire.Shape = { fifo: config.fifo, maxDelayMillis: Duration.toMillis(config.maxDelay) }
    const timeoutMillis = Duration.toMillis(config.requestTimeout)

    /**
     * One send to `topic`, judged strictly unless configured otherwise. Only
     * user topics are checked against the portable names: derived ones
     * (dead letters) contain the reserved separator on purpose.
     */
    // Without a generator: this runs once per message sent.
    const send = (envelope: Envelope.Envelope, topic: string, derived: boolean): Effect.Effect<void, PublishError> => {
      const size = envelope.payload.byteLength
      if (size > config.maxMessageBytes) {
        return Effect.fail(
          new MessageTooLarge({ topic: envelope.topic, messageId: envelope.id, size, limit: config.maxMessageBytes })
        )
      }
      if (!derived && !Names.isValid(topic)) return Effect.fail(new TopicNotFound({ topic }))
      return Effect.clockWith((clock) => {
        const message = Wire.message(envelope, shape, clock.currentTimeMillisUnsafe(), topic)
        return Effect.callback<void, PublishError>((resume) => {
          producer.send(message).then(
            () => resume(Effect.void),
            (error: unknown) =>
              resume(
                !config.strict && RocketError.isStoredWithoutConfirmation(error)
                  ? Effect.void
                  : Effect.fail(
                      RocketError.publishFailure(error, {
                        topic: envelope.topic,
                        messageId: envelope.id,
                        size,
                        limit: config.maxMessageBytes,
                        timeoutMillis
                      })
                    )
              )
          )
        })
      })
    }

    const publish: Transport.TransportShape["publish"] = (batch) => {
      if (!config.fifo) {
        return Effect.forEach(batch, (envelope) => Effect.result(send(envelope, envelope.topic, false)), {
          concurrency: config.publishConcurrency
        })
      }
      // One key's envelopes in order, one after the other; keys side by side.
      const lanes = new Map<string, Array<number>>()
      batch.forEach((envelope, i) => {
        const lane = `${envelope.topic}\u0000${envelope.key ?? envelope.id}`
        const indexes = lanes.get(lane)
        if (indexes === undefined) lanes.set(lane, [i])
        else indexes.push(i)
      })
      const results: Array<Transport.PublishResult> = new Array(batch.length)
      return Effect.forEach(
        lanes.values(),
        (indexes) =>
          Effect.forEach(
            indexes,
            (i) =>
              Effect.map(
                Effect.result(send(batch[i] as Envelope.Envelope, (batch[i] as Envelope.Envelope).topic, false)),
                (result) => {
                  results[i] = result
                }
              ),
            { discard: true }
          ),
        { concurrency: config.publishConcurrency, discard: true }
      ).pipe(Effect.as(results as ReadonlyArray<Transport.PublishResult>))
    }

    /**
     * Consumer groups registered with the broker: a consumer that starts
     * announces its group, and the broker delivers to it what is published
     * from then on. Kept alive with the transport, one per group.
     */
    const registered = new Map<string, Deferred.Deferred<void, TopologyError>>()
    const register = (topic: string, consumerGroup: string, group: string): Effect.Effect<void, TopologyError> =>
      Effect.suspend(() => {
        const known = registered.get(consumerGroup)
        if (known !== undefined) return Deferred.await(known)
        const done = Deferred.makeUnsafe<void, TopologyError>()
        registered.set(consumerGroup, done)
        return Clients.consumer(config, { topic, group, consumerGroup }).pipe(
          Effect.provideService(Scope.Scope, scope),
          Effect.asVoid,
          Effect.mapError((error): TopologyError => {
            if (error._tag === "TopicNotFound") {
              return RocketError.unavailable(
                `topic "${topic}" does not exist; create it on the broker (mqadmin updateTopic -t ${topic})`
              )
            }
            if (error._tag === "GroupNotFound") {
              return RocketError.unavailable(
                `consumer group "${consumerGroup}" does not exist; create it on the broker (mqadmin updateSubGroup -g ${consumerGroup})`
              )
            }
            return error
          }),
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (exit._tag === "Failure") registered.delete(consumerGroup)
              Deferred.doneUnsafe(done, exit)
            })
          )
        )
      })

    const ensureTopology: Transport.TransportShape["ensureTopology"] = (topology) =>
      Effect.gen(function* () {
        for (const topic of topology.topics) yield* Names.validate("topic", topic)
        for (const { topic, group } of topology.groups) {
          yield* Names.validate("topic", topic)
          yield* Names.validate("group", group)
        }
        if (config.createTopics !== undefined) {
          const topics = [
            ...new Set([
              ...topology.topics,
              ...topology.groups.flatMap(({ topic, group }) => [topic, RocketTopology.deadLetterTopic(topic, group)])
            ])
          ]
          const create = config.createTopics
          yield* Effect.suspend(() => create(topics)).pipe(
            Effect.mapError((error) =>
              RocketError.unavailable(`cannot create topics ${topics.join(", ")}: ${RocketError.describe(error)}`)
            )
          )
        }
        yield* Effect.forEach(
          topology.groups,
          ({ topic, group }) =>
            Effect.andThen(
              register(topic, RocketTopology.consumerGroup(topic, group), group),
              register(
                RocketTopology.deadLetterTopic(topic, group),
                RocketTopology.deadLetterGroup(topic, group),
                group
              )
            ),
          { concurrency: 8, discard: true }
        )
      })

    const dependencies: Subscription.Dependencies = {
      config,
      sendCopy: (envelope, topic) => send(envelope, topic, true),
      ledger: new Subscription.Ledger()
    }

    return {
      name: RocketError.transport,
      capabilities: capabilitiesFor(config),
      ensureTopology,
      publish,
      subscribe: (topic, group, options) =>
        Subscription.subscribe(dependencies, { topic, group, kind: "main" }, options),
      subscribeDeadLetters: (topic, group, options) =>
        Subscription.subscribe(dependencies, { topic, group, kind: "dead" }, options)
    }
  })

/** Why the layer could not be built: a bad URL, or a proxy that could not be reached. */
export type LayerError = InvalidUrl | TransportUnavailable

const adapter = TransportUrl.adapter({
  name: RocketError.transport,
  schemes: ["rocketmq"],
  configure: RocketConfig.make,
  build: make,
  fromEnv: RocketConfig.fromEnv,
  fromUrl: (url): RocketConfig.RocketOptions => ({ url })
})

/** The RocketMQ transport from options; its clients shut down when released. */
export const layer: (options: RocketConfig.RocketOptions) => Layer.Layer<Transport.Transport, LayerError> =
  adapter.layer

/**
 * The RocketMQ transport from `Config`: by default the URL in
 * `LOSSLESS_ROCKETMQ_URL` (options in its query string); or any record of
 * configs, e.g. `{ url: Config.Redacted("ROCKETMQ_URL"), strict: Config.succeed(true) }`.
 */
export const layerConfig: (
  config?: Config.Wrap<RocketConfig.RocketOptions>
) => Layer.Layer<Transport.Transport, LayerError | Config.ConfigError> = adapter.layerConfig

/**
 * Core's `HalfMessages` natively, through a transactional producer that
 * answers the broker's check-backs with `checkBacks` (one per topic).
 * Fails to build with `CheckBackMissing` when a topic in `topics` has none.
 */
export const layerHalfMessages = RocketHalfMessages.layer

/** Serves `rocketmq://` URLs; options may ride in the query string. */
export const plugin: TransportUrl.TransportPlugin = adapter.plugin
