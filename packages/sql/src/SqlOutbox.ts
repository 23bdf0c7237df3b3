/**
 * The SQL outbox put to work: layers for the store, an outbox publisher, half
 * messages and the relay.
 *
 * ```ts
 * // Store + outbox Publisher + a relay, and half messages on the same database.
 * const Live = SqlOutbox.layerHalfMessages({ local: "same-database" }).pipe(
 *   Layer.provideMerge(SqlOutbox.layer()),
 *   Layer.provide(MemoryTransport.layer()), // any transport
 *   Layer.provideMerge(Postgres.layerConfig()) // or SqliteClient.layer({ filename })
 * )
 *
 * // The order and its message commit together, or neither does.
 * sql.withTransaction(Effect.andThen(insertOrder, Publisher.send(Orders, order)))
 * ```
 *
 * **Half messages.** `layerHalfMessages({ local: "same-database" })` runs
 * prepare, the local work and commit as one transaction of the outbox's
 * client: the message is stored if and only if the local writes commit, with
 * no window for a check-back to close. That holds only when the local work
 * writes through the same `SqlClient`; for local work anywhere else use
 * `local: "elsewhere"`, core's protocol: prepare, local work, commit as
 * separate steps, with check-backs deciding rows a crash left prepared.
 *
 * @since 0.1.0
 */
import {
  type Envelope,
  HalfMessage,
  OutboxRelay,
  Publisher,
  type StoreUnavailable,
  type Transport
} from "@lossless/core"
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { caller, transaction } from "./internal/transaction.ts"
import * as OutboxSchema from "./OutboxSchema.ts"
import * as SqlOutboxStore from "./SqlOutboxStore.ts"

/** The SQL outbox store, as a service. */
export class Store extends Context.Service<Store, SqlOutboxStore.SqlOutboxStore>()("@lossless/sql/SqlOutbox/Store") {}

export interface StoreOptions extends SqlOutboxStore.SqlOutboxStoreOptions {
  /**
   * Create or update the tables when the layer starts (`OutboxSchema.migrate`).
   * Turn it off when the schema is applied by another tool.
   * @default true
   */
  readonly migrate?: boolean | undefined
}

/** Migrates the tables (unless `migrate: false`) and provides the store. */
export const layerStore = (
  options: StoreOptions = {}
): Layer.Layer<Store, OutboxSchema.MigrateError, SqlClient.SqlClient> =>
  Layer.effect(
    Store,
    Effect.andThen(
      options.migrate === false ? Effect.void : OutboxSchema.migrate(options),
      SqlOutboxStore.make(options)
    )
  )

/**
 * A publisher whose `send` stores the message in the outbox, in the caller's
 * transaction when one is open, and returns; the relay publishes it.
 */
export const layerPublisher = (
  options: Pick<Publisher.PublisherOptions, "interceptors" | "lossDetection"> = {}
): Layer.Layer<Publisher.Publisher, never, Store> =>
  Layer.effect(
    Publisher.Publisher,
    Effect.flatMap(Store, (store) => Publisher.makeOutbox(store, options))
  )

/**
 * Half messages whose local work writes to the outbox's database through
 * `sql`: the message row and the local writes are one transaction (a
 * savepoint inside one already open). The local work's failure rolls both
 * back and comes out unchanged; the store failing is `StoreUnavailable`,
 * with nothing committed.
 */
export const atomicHalfMessages = (
  store: SqlOutboxStore.SqlOutboxStore,
  sql: SqlClient.SqlClient,
  options: { readonly interceptors?: ReadonlyArray<Publisher.Interceptor> | undefined } = {}
): HalfMessage.HalfMessagesShape => ({
  interceptors: options.interceptors ?? [],
  transact: <A, E, R>(envelope: Envelope.Envelope, local: Effect.Effect<A, E, R>) =>
    transaction<A, E, R>(
      sql,
      store.name,
      // Inside one transaction "prepared, then committed" and "pending" end the same; pending saves a statement.
      Effect.andThen(store.add([envelope], "pending"), caller(local))
    )
})

export interface HalfMessagesOptions {
  /**
   * Where the local transaction writes: `"same-database"` (through the same
   * `SqlClient` as the outbox) makes prepare, local work and commit one
   * transaction; `"elsewhere"` uses core's prepare / commit steps with
   * check-backs for rows a crash left prepared.
   */
  readonly local: "same-database" | "elsewhere"
  readonly interceptors?: ReadonlyArray<Publisher.Interceptor> | undefined
}

/** `HalfMessage.HalfMessages` over the SQL outbox. */
export const layerHalfMessages = (
  options: HalfMessagesOptions
): Layer.Layer<HalfMessage.HalfMessages, never, Store | SqlClient.SqlClient> =>
  Layer.effect(
    HalfMessage.HalfMessages,
    Effect.gen(function* () {
      const store = yield* Store
      const interceptors = { interceptors: options.interceptors }
      return options.local === "same-database"
        ? atomicHalfMessages(store, yield* SqlClient.SqlClient, interceptors)
        : HalfMessage.outbox(store, interceptors)
    })
  )

export interface RelayOptions extends Omit<OutboxRelay.RelayOptions, "store"> {
  /**
   * How long sent rows are kept before the relay deletes them (they serve
   * inspection only). `"forever"` keeps them.
   * @default 7 days
   */
  readonly retention?: Duration.Input | "forever" | undefined
  /**
   * How often sent rows past `retention` are deleted.
   * @default 1 hour
   */
  readonly cleanupInterval?: Duration.Input | undefined
}

/** Deletes sent rows older than `retention`, in batches, every `interval`, until interrupted. */
export const purgeLoop = (
  store: SqlOutboxStore.SqlOutboxStore,
  retention: Duration.Input,
  interval: Duration.Input = "1 hour"
): Effect.Effect<never> => {
  const keep = Duration.toMillis(Duration.fromInputUnsafe(retention))
  const once: Effect.Effect<void, StoreUnavailable> = Effect.gen(function* () {
    const before = (yield* Clock.currentTimeMillis) - keep
    // Batches keep each DELETE short; stop at the first short batch.
    for (;;) {
      const purged = yield* store.purgeSent(before, 10_000)
      if (purged < 10_000) return
    }
  })
  return Effect.forever(
    once.pipe(
      Effect.catch((e) => Effect.logWarning(`lossless: purging sent outbox rows failed: ${e.message}`)),
      Effect.andThen(Effect.sleep(interval))
    )
  )
}

/**
 * A relay over the store for the lifetime of the layer (core's
 * `OutboxRelay.run`), and the purge of old sent rows. Run one per process,
 * or several: claims are leases and rows are never published by two relays
 * at once.
 */
export const layerRelay = (options: RelayOptions = {}): Layer.Layer<never, never, Store | Transport.Transport> =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const store = yield* Store
      const { retention = "7 days", cleanupInterval, ...relay } = options
      yield* Effect.forkScoped(OutboxRelay.run({ ...relay, store }))
      if (retention !== "forever") yield* Effect.forkScoped(purgeLoop(store, retention, cleanupInterval))
    })
  )

export interface Options extends StoreOptions {
  readonly publisher?: Pick<Publisher.PublisherOptions, "interceptors" | "lossDetection"> | undefined
  /** The relay's settings, or `false` to run no relay in this process. */
  readonly relay?: RelayOptions | false | undefined
}

/**
 * The store, an outbox publisher, and (unless `relay: false`) a relay: the
 * transactional outbox in one layer.
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Store | Publisher.Publisher, OutboxSchema.MigrateError, SqlClient.SqlClient | Transport.Transport> => {
  const relay = options.relay === false ? Layer.empty : layerRelay(options.relay ?? {})
  return Layer.mergeAll(layerPublisher(options.publisher ?? {}), relay).pipe(Layer.provideMerge(layerStore(options)))
}
