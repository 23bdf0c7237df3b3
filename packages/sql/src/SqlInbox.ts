/**
 * The SQL inbox: core's `Dedupe.Inbox` in a table of handled keys, on
 * PostgreSQL or SQLite.
 *
 * `once(key, handle)` opens a transaction, inserts `key` (`ON CONFLICT DO
 * NOTHING`) and runs `handle` in the same transaction: the key and the
 * handler's own writes commit together or not at all. A key already there
 * answers `false` without running `handle`.
 *
 * Concurrent calls with one key: on PostgreSQL the second INSERT waits for
 * the first transaction's row lock; if that transaction commits, the second
 * finds the key and answers `false`, if it rolls back, the second inserts
 * and runs. On SQLite the single writer runs one transaction after the
 * other. Either way `handle` runs at most once, and exactly once per key
 * for whatever it writes to the same database with the same client: an
 * exactly-once effect on at-least-once delivery. Effects elsewhere (an HTTP
 * call, another database) are not covered: they may repeat when the
 * transaction fails after them.
 *
 * A failing `handle` rolls the key back with its writes, so the retry runs it
 * again. Failures of the inbox's own statements (or of BEGIN and COMMIT) are
 * `StoreUnavailable`, which the consumer answers by handing the message back
 * to the broker; the handler's failures come out unchanged.
 *
 * @since 0.1.0
 */
import type { Dedupe, StoreUnavailable } from "@lossless/core"
import { Clock, Context, Duration, Effect, Layer, Schedule, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import { type Dialect, dialectOf } from "./internal/dialect.ts"
import { caller, orUnavailable, transaction } from "./internal/transaction.ts"
import * as OutboxSchema from "./OutboxSchema.ts"

export interface SqlInboxOptions {
  /** Checked against the client's dialect; read from the client when left out. */
  readonly dialect?: Dialect | undefined
  /** Table names; `lossless_inbox` by default. */
  readonly tables?: Partial<OutboxSchema.Tables> | undefined
  /**
   * How long a handled key is kept. A redelivery later than this runs the
   * handler again, so keep it well above the longest redelivery delay
   * (retries, a broker down, a consumer stopped). Kept forever when left out.
   */
  readonly retention?: Duration.Input | undefined
  /**
   * How often keys older than `retention` are deleted.
   * @default 1 hour
   */
  readonly cleanupInterval?: Duration.Input | undefined
}

/** An inbox over SQL, with operations beyond core's interface. */
export interface SqlInbox extends Dedupe.Inbox {
  readonly dialect: Dialect
  readonly tables: OutboxSchema.Tables
  /** Whether `key` (`<group>:<message key>`, as the consumer records it) was handled. */
  readonly has: (key: string) => Effect.Effect<boolean, StoreUnavailable>
  /** Deletes keys handled before `before` (epoch milliseconds); returns how many. */
  readonly purge: (before: number) => Effect.Effect<number, StoreUnavailable>
}

/**
 * Builds the inbox over the current `SqlClient`; with `retention`, also
 * deletes expired keys every `cleanupInterval` until the scope closes. The
 * table must exist: run `OutboxSchema.migrate` first (the layer does).
 */
export const make = (
  options: SqlInboxOptions = {}
): Effect.Effect<SqlInbox, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const dialect = yield* dialectOf(sql, options.dialect)
    const tables = OutboxSchema.resolve(options.tables)
    const name = `${dialect} ${tables.inbox}`
    const table = sql(tables.inbox)
    const lift = orUnavailable(name)

    const inbox: SqlInbox = {
      name,
      dialect,
      tables,
      once: (key, handle) =>
        transaction(
          sql,
          name,
          Effect.gen(function* () {
            const now = yield* Clock.currentTimeMillis
            const inserted = yield* lift(
              sql`INSERT INTO ${table} (key, processed_at) VALUES (${key}, ${now})
                  ON CONFLICT (key) DO NOTHING RETURNING key`
            )
            // Recorded before (or by a transaction that committed while this one waited).
            if (inserted.length === 0) return false
            yield* caller(handle)
            return true
          })
        ).pipe(Effect.withSpan("SqlInbox.once")),
      has: (key) =>
        Effect.map(lift(sql`SELECT 1 AS found FROM ${table} WHERE key = ${key}`), (rows) => rows.length > 0),
      purge: (before) =>
        Effect.map(lift(sql`DELETE FROM ${table} WHERE processed_at < ${before} RETURNING key`), (rows) => rows.length)
    }

    if (options.retention !== undefined) {
      const retention = Duration.toMillis(Duration.fromInputUnsafe(options.retention))
      const cleanup = Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const purged = yield* inbox.purge(now - retention)
        if (purged > 0) yield* Effect.logDebug(`lossless: purged ${purged} inbox key(s) from ${tables.inbox}`)
      }).pipe(Effect.catch((e) => Effect.logWarning(`lossless: inbox cleanup failed: ${e.message}`)))
      yield* Effect.forkScoped(
        Effect.repeat(cleanup, Schedule.spaced(options.cleanupInterval ?? "1 hour")).pipe(Effect.asVoid)
      )
    }
    return inbox
  })

/** The SQL inbox, as a service for consumers' `dedupe: { store }`. */
export class Inbox extends Context.Service<Inbox, SqlInbox>()("@lossless/sql/SqlInbox") {}

/** Migrates the tables (unless `migrate: false`) and provides the inbox. */
export const layer = (
  options: SqlInboxOptions & { readonly migrate?: boolean | undefined } = {}
): Layer.Layer<Inbox, OutboxSchema.MigrateError, SqlClient.SqlClient> =>
  Layer.effect(
    Inbox,
    Effect.andThen(options.migrate === false ? Effect.void : OutboxSchema.migrate(options), make(options))
  )
