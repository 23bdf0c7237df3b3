import { Consumer, HalfMessage, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Postgres, SqlInbox, SqlOutbox } from "@lossless/sql"
import { Services } from "@lossless/testkit"
import { ConfigProvider, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"

// #region readme
const Orders = Topic.make("orders", Schema.Struct({ id: Schema.String, total: Schema.Number }))

// Store (tables migrated at start) + outbox Publisher + a relay, half messages and the inbox, on one database.
const Live = Layer.mergeAll(SqlOutbox.layerHalfMessages({ local: "same-database" }), SqlInbox.layer()).pipe(
  Layer.provideMerge(SqlOutbox.layer({ relay: { sweepInterval: "5 seconds" } })),
  Layer.provideMerge(MemoryTransport.layer()), // any transport
  Layer.provideMerge(Postgres.layerConfig()) // LOSSLESS_POSTGRES_URL; or SqliteClient.layer({ filename: "app.db" })
)

const placeOrder = (id: string, total: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The order row and its message commit together, or neither does.
    yield* sql.withTransaction(
      Effect.gen(function* () {
        yield* sql`INSERT INTO orders ${sql.insert({ id, total })}`
        yield* Publisher.send(Orders, { id, total })
      })
    )
  })

// The same as a half message: delivered if and only if the local work commits.
const placeOrderHalf = (id: string, total: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return yield* HalfMessage.sendTransactional(
      Orders,
      { id, total },
      sql`INSERT INTO orders ${sql.insert({ id, total })}`
    )
  })

// Inbox: the handler's writes and the message's key in one transaction.
const billing = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* Consumer.start({
    topic: Orders,
    group: "billing",
    dedupe: { store: yield* SqlInbox.Inbox },
    handler: (m) => sql`INSERT INTO invoices ${sql.insert({ order_id: m.payload.id, total: m.payload.total })}`
  })
})
// #endregion

export const requires = ["postgres"] as const

export const main: Effect.Effect<void, unknown> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`DROP TABLE IF EXISTS orders`
  yield* sql`DROP TABLE IF EXISTS invoices`
  yield* sql`CREATE TABLE orders (id TEXT PRIMARY KEY, total DOUBLE PRECISION NOT NULL)`
  yield* sql`CREATE TABLE invoices (order_id TEXT PRIMARY KEY, total DOUBLE PRECISION NOT NULL)`
  yield* billing
  yield* placeOrder("o-1", 10)
  yield* placeOrderHalf("o-2", 20)
  // Both orders reach billing once: an invoice each.
  for (;;) {
    const rows = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM invoices`
    if (rows[0]?.n === 2) break
    yield* Effect.sleep("50 millis")
  }
  yield* sql`DROP TABLE orders`
  yield* sql`DROP TABLE invoices`
}).pipe(
  Effect.scoped,
  Effect.provide(Live),
  Effect.timeout("30 seconds"),
  // The test database when LOSSLESS_POSTGRES_URL is not set.
  Effect.provide(
    ConfigProvider.layer(
      ConfigProvider.fromEnv({ env: { ...process.env, LOSSLESS_POSTGRES_URL: Services.url("postgres") } })
    )
  )
)
