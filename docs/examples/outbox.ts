import { Consumer, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { SqliteClient, SqlOutbox } from "@lossless/sql"
import { Deferred, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"

const Order = Schema.Struct({ id: Schema.String, total: Schema.Number })
type Order = typeof Order.Type
const Orders = Topic.make("orders", Order)

// #region outbox
const placeOrder = (order: Order) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql.withTransaction(
      Effect.gen(function* () {
        yield* sql`INSERT INTO orders ${sql.insert(order)}`
        yield* Publisher.send(Orders, order) // an INSERT into lossless_outbox, same transaction
      })
    )
  })

const Live = SqlOutbox.layer().pipe(
  // store + outbox Publisher + relay
  Layer.provideMerge(MemoryTransport.layer()), // any transport
  Layer.provideMerge(SqliteClient.layer({ filename: ":memory:" })) // or Postgres.layerConfig()
)
// #endregion

export const main: Effect.Effect<void, unknown> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE orders (id TEXT PRIMARY KEY, total REAL NOT NULL)`
  const delivered = yield* Deferred.make<string>()
  yield* Consumer.start({
    topic: Orders,
    group: "invoicing",
    handler: (message) => Deferred.succeed(delivered, message.payload.id)
  })
  yield* placeOrder({ id: "o-1", total: 42 })
  // The relay published the committed row.
  yield* Deferred.await(delivered)
}).pipe(Effect.scoped, Effect.provide(Live))
