import { Consumer, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { RedisDedupeStore } from "@lossless/redis"
import { Effect, Layer, Schema } from "effect"

const Orders = Topic.make(`docs-dedupe-${Date.now().toString(36)}`, Schema.Struct({ id: Schema.String }))
let charged = 0
const chargeOrder = () =>
  Effect.sync(() => {
    charged++
  })

// #region readme
// The consumer and its Redis client live as long as this layer.
const BillingLive = Layer.effectDiscard(
  Effect.gen(function* () {
    const store = yield* RedisDedupeStore.Store
    yield* Consumer.start({
      topic: Orders,
      group: "billing",
      handler: chargeOrder,
      dedupe: { store, lease: "5 minutes", ttl: "24 hours" }
    })
  })
).pipe(
  // Connects to LOSSLESS_REDIS_URL (default redis://127.0.0.1:6379); closed with the layer.
  Layer.provide(RedisDedupeStore.layer())
)
// #endregion

export const requires = ["redis"] as const

/** The same message sent twice (a producer retry after a lost confirm) is charged once. */
export const main: Effect.Effect<void, unknown> = Effect.gen(function* () {
  // Dedupe keys outlive a run (24 hours): a fresh message id each time.
  const id = `msg-${Date.now().toString(36)}`
  yield* Publisher.send(Orders, { id: "o-1" }, { id })
  yield* Publisher.send(Orders, { id: "o-1" }, { id })
  yield* Effect.sleep("500 millis")
  if (charged !== 1) return yield* Effect.die(new Error(`charged ${charged} times, expected once`))
}).pipe(
  Effect.provide(BillingLive),
  Effect.provide(Publisher.layer().pipe(Layer.provideMerge(MemoryTransport.layer())))
)
