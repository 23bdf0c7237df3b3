import { Consumer, Publisher, Topic, TransportUrl } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { RabbitTransport } from "@lossless/rabbitmq"
import { Config, Deferred, Effect, Layer, Redacted, Schema } from "effect"

// #region url
// LOSSLESS_URL=amqp://app:secret@rabbit:5672/prod?queueType=quorum
const TransportLive = TransportUrl.layerConfig([MemoryTransport.plugin, RabbitTransport.plugin])
// #endregion

const explicit = () => {
  // #region layer
  const TransportLive = RabbitTransport.layer({
    url: Redacted.make("amqp://app:secret@rabbit:5672/prod"),
    queueType: "quorum",
    confirmWindow: 512
  })

  // From Config: LOSSLESS_RABBITMQ_URL by default, or any record of configs.
  const FromEnv = RabbitTransport.layerConfig()
  const Custom = RabbitTransport.layerConfig({ url: Config.Redacted("AMQP_URL"), prefix: Config.succeed("billing.") })
  // #endregion
  return { TransportLive, FromEnv, Custom }
}

export const requires = ["rabbitmq"] as const

const Greeting = Topic.make(`docs-example-${Date.now().toString(36)}`, Schema.Struct({ text: Schema.String }))

/** One message through RabbitMQ, with the transport from the environment (`LOSSLESS_RABBITMQ_URL`). */
export const main: Effect.Effect<void, unknown> = Effect.gen(function* () {
  const received = yield* Deferred.make<string>()
  yield* Consumer.start({
    topic: Greeting,
    group: "docs",
    handler: (m) => Deferred.succeed(received, m.payload.text)
  })
  yield* Publisher.send(Greeting, { text: "hello" })
  yield* Deferred.await(received)
}).pipe(
  Effect.scoped,
  Effect.provide(Publisher.layer().pipe(Layer.provideMerge(explicit().FromEnv))),
  Effect.andThen(Effect.sync(() => TransportLive))
)
