import { Consumer, Publisher, Topic, TransportUrl } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Deferred, Effect, Layer, Schema } from "effect"

const Orders = Topic.make("orders", Schema.Struct({ orderId: Schema.String, total: Schema.Number }))

const program = Effect.gen(function* () {
  const emailed = yield* Deferred.make<string>()
  // Settles each delivery only after the handler's Effect finished: ack, retry later, or dead letter.
  yield* Consumer.start({
    topic: Orders,
    group: "confirmation-emails",
    handler: (message) =>
      Effect.log(`emailing confirmation for ${message.payload.orderId}`).pipe(
        Effect.andThen(Deferred.succeed(emailed, message.payload.orderId))
      )
  })
  // Returns once the broker confirmed it; retries transient failures with the same message id.
  yield* Publisher.send(Orders, { orderId: "o-1", total: 42 }, { key: "customer-7" })
  yield* Deferred.await(emailed)
})

// LOSSLESS_URL picks the broker (memory:// when unset).
const Live = Publisher.layer().pipe(Layer.provideMerge(TransportUrl.layerConfig([MemoryTransport.plugin])))

export const main = Effect.scoped(program).pipe(Effect.provide(Live))
