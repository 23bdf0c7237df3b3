/**
 * Operations on the SQL outbox for people and tools (the `lossless` cli):
 * counts, listing with filters, and moving rows between `parked`, `failed`
 * and `pending` by id.
 *
 * These statements run over the same tables as `SqlOutboxStore` (see
 * `OutboxSchema`) and keep its rules: a row made pending again is due at
 * once and its relay lease is dropped; on PostgreSQL the change sends the
 * same NOTIFY the store sends, so running relays wake up. Rows a relay holds
 * (claimed) can be parked too: the relay's later mark carries a claim token
 * that no longer matches and is ignored, so the row stays parked.
 *
 * @since 0.1.0
 */
import { type Outbox, StoreUnavailable } from "@lossless/core"
import { Clock, Effect } from "effect"
import { SqlClient, type SqlError, type Statement } from "effect/sql"
import { type Dialect, dialectOf } from "./internal/dialect.ts"
import * as OutboxSchema from "./OutboxSchema.ts"

/** Counts per status and the ages operators watch. */
export interface Status {
  readonly counts: Readonly<Record<Outbox.Status, number>>
  /** Epoch milliseconds of the oldest pending or failed row. */
  readonly oldestUnsentAt: number | undefined
  /** Epoch milliseconds of the oldest parked row. */
  readonly oldestParkedAt: number | undefined
}

/** One outbox row as operators see it (without the payload). */
export interface Row {
  readonly id: string
  readonly topic: string
  readonly key: string | undefined
  readonly status: Outbox.Status
  readonly attempts: number
  readonly lastError: string | undefined
  /** Epoch milliseconds. */
  readonly nextAttemptAt: number
  /** Epoch milliseconds. */
  readonly createdAt: number
  /** Epoch milliseconds; `undefined` until sent. */
  readonly sentAt: number | undefined
  /** A relay holds the row until this time (epoch milliseconds); 0 when free. */
  readonly claimedUntil: number
}

export interface ListOptions {
  readonly status?: Outbox.Status | undefined
  readonly topic?: string | undefined
  /** @default 50 */
  readonly limit?: number | undefined
}

export interface OutboxAdmin {
  readonly dialect: Dialect
  readonly tables: OutboxSchema.Tables
  /** Whether the outbox table exists (the application ran its migrations). */
  readonly exists: Effect.Effect<boolean, StoreUnavailable>
  readonly status: Effect.Effect<Status, StoreUnavailable>
  /** Rows oldest first, filtered by status and topic. */
  readonly list: (options?: ListOptions) => Effect.Effect<ReadonlyArray<Row>, StoreUnavailable>
  /**
   * Makes parked or failed rows pending, due now, with their attempt count
   * reset (a full retry budget); returns the ids it changed. Other ids
   * (unknown, pending, sent, prepared) are left alone.
   */
  readonly retry: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>, StoreUnavailable>
  /** `retry` for every parked row; returns the ids it changed. */
  readonly retryAllParked: Effect.Effect<ReadonlyArray<string>, StoreUnavailable>
  /**
   * Parks pending or failed rows: the relay leaves them alone until retried.
   * Returns the ids it changed.
   */
  readonly park: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>, StoreUnavailable>
}

export interface OutboxAdminOptions {
  /** Table names; `lossless_outbox` by default. */
  readonly tables?: Partial<OutboxSchema.Tables> | undefined
}

type Int = number | bigint

interface RowRecord {
  readonly id: string
  readonly topic: string
  readonly key: string | null
  readonly status: Outbox.Status
  readonly attempts: Int
  readonly last_error: string | null
  readonly next_attempt_at: Int
  readonly created_at: Int
  readonly sent_at: Int | null
  readonly claimed_until: Int
}

const rowOf = (r: RowRecord): Row => ({
  id: r.id,
  topic: r.topic,
  key: r.key ?? undefined,
  status: r.status,
  attempts: Number(r.attempts),
  lastError: r.last_error ?? undefined,
  nextAttemptAt: Number(r.next_attempt_at),
  createdAt: Number(r.created_at),
  sentAt: r.sent_at === null ? undefined : Number(r.sent_at),
  claimedUntil: Number(r.claimed_until)
})

const statuses: ReadonlyArray<Outbox.Status> = ["prepared", "pending", "failed", "sent", "parked"]

/** Builds the operations over the current `SqlClient` (PostgreSQL or SQLite). */
export const make = (options: OutboxAdminOptions = {}): Effect.Effect<OutboxAdmin, never, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const dialect = yield* dialectOf(sql)
    const tables = OutboxSchema.resolve(options.tables)
    const table = sql(tables.outbox)
    const pg = dialect === "pg"
    const name = `${dialect} ${tables.outbox}`
    const lift = <A>(effect: Effect.Effect<A, SqlError.SqlError>): Effect.Effect<A, StoreUnavailable> =>
      Effect.mapError(effect, (error) => new StoreUnavailable({ store: name, reason: error.message }))

    /** Runs an UPDATE ... RETURNING id; on PostgreSQL wakes relays when it changed rows. */
    const changed = (statement: Effect.Effect<ReadonlyArray<{ readonly id: string }>, SqlError.SqlError>) =>
      lift(
        Effect.tap(statement, (rows) =>
          pg && rows.length > 0 ? Effect.asVoid(sql`SELECT pg_notify(${tables.outbox}, '')`) : Effect.void
        )
      ).pipe(Effect.map((rows) => rows.map((r) => r.id)))

    const retryWhere = (where: Statement.Fragment) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        changed(sql<{ readonly id: string }>`
          UPDATE ${table} SET status = 'pending', attempts = 0, next_attempt_at = ${now}, claim = NULL, claimed_until = 0
          WHERE ${where}
          RETURNING id`)
      )

    return {
      dialect,
      tables,
      exists: lift(
        pg
          ? sql<{ readonly found: string | null }>`SELECT to_regclass(${tables.outbox}) AS found`.pipe(
              Effect.map((rows) => rows[0]?.found != null)
            )
          : sql<{
              readonly n: Int
            }>`SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ${tables.outbox}`.pipe(
              Effect.map((rows) => Number(rows[0]?.n ?? 0) > 0)
            )
      ),
      status: Effect.map(
        lift(sql<{ readonly status: Outbox.Status; readonly n: Int; readonly oldest: Int | null }>`
          SELECT status, COUNT(*) AS n, MIN(created_at) AS oldest FROM ${table} GROUP BY status`),
        (rows): Status => {
          const counts: Record<Outbox.Status, number> = { prepared: 0, pending: 0, failed: 0, sent: 0, parked: 0 }
          let oldestUnsentAt: number | undefined
          let oldestParkedAt: number | undefined
          for (const row of rows) {
            if (!statuses.includes(row.status)) continue
            counts[row.status] = Number(row.n)
            if (row.oldest === null) continue
            const oldest = Number(row.oldest)
            if (row.status === "pending" || row.status === "failed") {
              oldestUnsentAt = oldestUnsentAt === undefined ? oldest : Math.min(oldestUnsentAt, oldest)
            } else if (row.status === "parked") oldestParkedAt = oldest
          }
          return { counts, oldestUnsentAt, oldestParkedAt }
        }
      ),
      list: (listOptions = {}) => {
        const limit = Math.max(0, Math.floor(listOptions.limit ?? 50))
        const conditions = [
          ...(listOptions.status === undefined ? [] : [sql`status = ${listOptions.status}`]),
          ...(listOptions.topic === undefined ? [] : [sql`topic = ${listOptions.topic}`])
        ]
        return Effect.map(
          lift(sql<RowRecord>`
            SELECT id, topic, key, status, attempts, last_error, next_attempt_at, created_at, sent_at, claimed_until
            FROM ${table} ${conditions.length === 0 ? sql.literal("") : sql`WHERE ${sql.and(conditions)}`}
            ORDER BY seq LIMIT ${limit}`),
          (rows) => rows.map(rowOf)
        )
      },
      retry: (ids) =>
        ids.length === 0
          ? Effect.succeed([])
          : retryWhere(sql.and([sql`id IN ${sql.in(ids)} `, sql.literal("status IN ('parked', 'failed')")])),
      retryAllParked: retryWhere(sql.literal("status = 'parked'")),
      park: (ids) =>
        ids.length === 0
          ? Effect.succeed([])
          : changed(sql<{ readonly id: string }>`
              UPDATE ${table} SET status = 'parked', claim = NULL, claimed_until = 0
              WHERE id IN ${sql.in(ids)} AND status IN ('pending', 'failed')
              RETURNING id`)
    } satisfies OutboxAdmin
  })
