import { Consumer, HalfMessage, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { SqliteClient, SqlOutbox } from "@lossless/sql"
import { Deferred, Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"

const Orders = Topic.make("orders", Schema.Struct({ id: Schema.String, total: Schema.Number }))

interface Booking {
  readonly id: string
  readonly total: number
  readonly status: "booked" | "pending"
}

const bookOrder = (order: { readonly id: string; readonly total: number }) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.as(sql`INSERT INTO bookings ${sql.insert({ ...order, status: "booked" })}`, order.id)
  )

const findOrder = (id: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(sql<Booking>`SELECT * FROM bookings WHERE id = ${id}`, (rows) => Option.fromNullishOr(rows[0]))
  ).pipe(Effect.orDie)

const place = (order: { readonly id: string; readonly total: number }) =>
  Effect.gen(function* () {
    // #region send
    const booked = yield* HalfMessage.sendTransactional(
      Orders,
      { id: order.id, total: order.total },
      bookOrder(order) // the local transaction: its result is returned, its failure fails the send
    )
    // #endregion
    return booked
  })

const relay = Effect.gen(function* () {
  // #region check-back
  const orderCheck = HalfMessage.checkBack(Orders, (message) =>
    // Did the local transaction happen? Look it up by the business key.
    Effect.map(
      findOrder(message.payload.id),
      Option.match({
        onNone: () => "rollback" as const,
        onSome: (order) => (order.status === "booked" ? ("commit" as const) : ("unknown" as const))
      })
    )
  )

  const Relay = SqlOutbox.layerRelay({ checkBacks: [yield* orderCheck], checkInterval: "1 minute", maxChecks: 15 })
  // #endregion
  return Relay
})

export const main: Effect.Effect<void, unknown> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE bookings (id TEXT PRIMARY KEY, total REAL NOT NULL, status TEXT NOT NULL)`
  const relayLayer = yield* relay
  const delivered = yield* Deferred.make<string>()
  yield* Layer.build(relayLayer)
  yield* Consumer.start({
    topic: Orders,
    group: "shipping",
    handler: (message) => Deferred.succeed(delivered, message.payload.id)
  })
  yield* place({ id: "o-7", total: 12 })
  yield* Deferred.await(delivered)
}).pipe(
  Effect.scoped,
  Effect.provide(
    SqlOutbox.layerHalfMessages({ local: "elsewhere" }).pipe(
      Layer.provideMerge(SqlOutbox.layerStore()),
      Layer.provideMerge(MemoryTransport.layer()),
      Layer.provideMerge(SqliteClient.layer({ filename: ":memory:" }))
    )
  )
)
