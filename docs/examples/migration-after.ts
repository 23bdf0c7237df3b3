import { Consumer, Publisher, Topic, TransportUrl } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { RabbitTransport } from "@lossless/rabbitmq"
import { Deferred, Effect, Layer, Schedule, Schema } from "effect"

// #region after
const Orders = Topic.make("orders", Schema.Struct({ id: Schema.String }))

// Confirms, mandatory routing, retries with the same id, typed failures: `send`.
const publishOrder = (order: { id: string }) => Publisher.send(Orders, order)

// Ack after the handler, immediate and delayed retries through the broker, then the dead letters.
const consumeOrders = <E>(handle: (order: { id: string }) => Effect.Effect<void, E>) =>
  Consumer.start({
    topic: Orders,
    group: "billing",
    concurrency: 16,
    handler: (message) => handle(message.payload),
    retry: { immediate: 0, delayed: Schedule.exponential("200 millis").pipe(Schedule.upTo({ times: 4 })) }
  })

// amqp://… in production, memory:// in tests: LOSSLESS_URL decides.
const Live = Publisher.layer().pipe(
  Layer.provideMerge(TransportUrl.layerConfig([MemoryTransport.plugin, RabbitTransport.plugin]))
)
// #endregion

export const main: Effect.Effect<void, unknown> = Effect.gen(function* () {
  const billed = yield* Deferred.make<string>()
  yield* consumeOrders((order) => Deferred.succeed(billed, order.id))
  yield* publishOrder({ id: "o-1" })
  yield* Deferred.await(billed)
}).pipe(Effect.scoped, Effect.provide(Live))
