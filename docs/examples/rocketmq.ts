import { Consumer, HalfMessage, Topic, TransportUrl } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { RocketTransport } from "@lossless/rocketmq"
import * as RocketEmulator from "@lossless/testkit/rocketmq"
import { Deferred, Effect, Layer, Schema } from "effect"

const Bookings = Topic.make(`bookings-${Date.now().toString(36)}`, Schema.Struct({ id: Schema.String }))
const booked = new Set<string>()
const bookingExists = (id: string) => Effect.sync(() => booked.has(id))
const isBooked = (m: { readonly payload: { readonly id: string } }) =>
  Effect.map(bookingExists(m.payload.id), (b) => (b ? ("commit" as const) : ("rollback" as const)))

/** The layers as the guides show them, against a proxy at `url`. */
const layers = (url: string) => {
  const urlConfigured = () => {
    // #region url
    // LOSSLESS_URL=rocketmq://accessKey:secretKey@proxy:8081?strict=true
    const TransportLive = TransportUrl.layerConfig([MemoryTransport.plugin, RocketTransport.plugin])
    // #endregion
    return TransportLive
  }
  const guide = () => {
    // #region guide-layer
    const TransportLive = RocketTransport.layer({ url: "rocketmq://proxy:8081" })
    // or by URL: LOSSLESS_URL=rocketmq://ak:sk@proxy:8081?strict=true
    const Live = TransportUrl.layerConfig([MemoryTransport.plugin, RocketTransport.plugin])
    // #endregion
    return { TransportLive, Live }
  }
  const fifo = () => {
    // #region fifo
    const TransportLive = RocketTransport.layer({
      url: "rocketmq://proxy:8081",
      fifo: true, // FIFO topics: per-key order across consumers
      invisibleDuration: "60 seconds"
    })
    // #endregion
    return TransportLive
  }
  const guideHalf = () => {
    // #region guide-half
    const HalfLive = Layer.unwrap(
      Effect.map(
        HalfMessage.checkBack(Bookings, (m) =>
          bookingExists(m.payload.id).pipe(Effect.map((b) => (b ? "commit" : "rollback")))
        ),
        (checkBack) => RocketTransport.layerHalfMessages({ url: "rocketmq://proxy:8081", checkBacks: [checkBack] })
      )
    )
    // #endregion
    return HalfLive
  }
  const readmeHalf = () => {
    // #region readme-half
    const HalfLive = Layer.unwrap(
      Effect.map(HalfMessage.checkBack(Bookings, isBooked), (checkBack) =>
        RocketTransport.layerHalfMessages({ url: "rocketmq://proxy:8081", checkBacks: [checkBack] })
      )
    )
    // #endregion
    return HalfLive
  }
  // The same layers, pointed at the emulator the example runs against.
  return {
    shown: [urlConfigured, guide, fifo, guideHalf, readmeHalf],
    transport: RocketTransport.layer({ url }),
    half: Layer.unwrap(
      Effect.map(HalfMessage.checkBack(Bookings, isBooked), (checkBack) =>
        RocketTransport.layerHalfMessages({ url, checkBacks: [checkBack] })
      )
    )
  }
}

/** A half message through the RocketMQ emulator: committed by the local transaction, then consumed. */
export const main: Effect.Effect<void, unknown> = Effect.gen(function* () {
  const emulator = yield* RocketEmulator.scoped()
  const { transport, half } = layers(`rocketmq://${emulator.endpoint}`)
  const received = yield* Deferred.make<string>()
  yield* Effect.gen(function* () {
    yield* Consumer.start({
      topic: Bookings,
      group: "shipping",
      handler: (m) => Deferred.succeed(received, m.payload.id)
    })
    yield* HalfMessage.sendTransactional(
      Bookings,
      { id: "b-1" },
      Effect.sync(() => booked.add("b-1"))
    )
    yield* Deferred.await(received)
  }).pipe(Effect.provide(Layer.merge(transport, half)))
}).pipe(Effect.scoped, Effect.timeout("30 seconds"))
