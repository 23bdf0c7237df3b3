/**
 * The tables of the SQL outbox and inbox, and how they are created.
 *
 * - **outbox**: one row per message, keyed by the message id. `seq` orders
 *   rows (per-key order follows it), `status` is the row's state
 *   (`prepared`, `pending`, `failed`, `sent`, `parked`), `claim` and
 *   `claimed_until` are a relay's lease. Times are epoch milliseconds from the
 *   application's Effect `Clock`, like the times the relay passes in.
 * - **inbox**: one row per handled message and group (`<group>:<key>`), with
 *   the time it was handled.
 *
 * The indexes serve the relay's queries. Partial indexes over unsent rows
 * (`pending`, `failed`) stay small however many sent rows the table keeps:
 * one in `seq` order for the claim scan, one by `(key, seq)` for the per-key
 * order check. `(status, seq)` serves listing, counting, check-backs of
 * prepared rows and purging sent rows.
 *
 * On PostgreSQL the outbox table is filled to half its pages
 * (`fillfactor = 50`): every row is updated twice after its insert (claimed,
 * then marked), and with room on its page each new version stays there. The
 * claim, which changes no indexed column, then adds no index entries (a HOT
 * update), and both updates log only the bytes that changed rather than a
 * second and third copy of the payload: about a quarter of the WAL per row
 * relayed, at the cost of pages half full when the rows are inserted.
 *
 * `migrate` creates them with Effect's `Migrator`, recording what it applied
 * in a table of its own (`lossless_migrations` by default), never in the
 * application's `effect_sql_migrations`: the migrator skips every id up to
 * the highest recorded one, so sharing a bookkeeping table with the
 * application's migrations would skip ours or theirs. Teams that manage the
 * schema with another tool take the DDL from `statements` instead.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { Migrator, SqlClient, type SqlError } from "effect/sql"
import { type Dialect, dialectOf } from "./internal/dialect.ts"

export type { Dialect } from "./internal/dialect.ts"

/** Table names. */
export interface Tables {
  readonly outbox: string
  readonly inbox: string
  /** Where `migrate` records what it applied. */
  readonly migrations: string
}

/** The prefix of the default table names. */
export const defaultPrefix = "lossless_"

/** Table names under a prefix: `<prefix>outbox`, `<prefix>inbox`, `<prefix>migrations`. */
export const withPrefix = (prefix: string): Tables =>
  resolve({ outbox: `${prefix}outbox`, inbox: `${prefix}inbox`, migrations: `${prefix}migrations` })

// Lower case only: PostgreSQL folds unquoted names to lower case, so a name
// that means the same quoted and unquoted cannot be mistaken anywhere. The
// length leaves room for index suffixes within PostgreSQL's 63 bytes.
const identifier = /^[a-z_][a-z0-9_]{0,47}$/

/**
 * Table names with defaults (`lossless_outbox`, `lossless_inbox`,
 * `lossless_migrations`) for those not given. Throws on a name that is not
 * a lower-case SQL identifier of at most 48 characters: table names come
 * from code, not from users.
 */
export const resolve = (tables: Partial<Tables> = {}): Tables => {
  const resolved: Tables = {
    outbox: tables.outbox ?? `${defaultPrefix}outbox`,
    inbox: tables.inbox ?? `${defaultPrefix}inbox`,
    migrations: tables.migrations ?? `${defaultPrefix}migrations`
  }
  for (const [role, name] of Object.entries(resolved)) {
    if (!identifier.test(name)) {
      throw new TypeError(
        `invalid ${role} table name ${JSON.stringify(name)}: use lower-case letters, digits and _ (at most 48)`
      )
    }
  }
  return resolved
}

/** The default tables. */
export const defaults: Tables = resolve()

const statuses = "'prepared', 'pending', 'failed', 'sent', 'parked'"

/**
 * The DDL creating both tables and their indexes, one statement per entry,
 * idempotent: what the migrations run, for teams that apply schema changes
 * with their own tool.
 */
export const statements = (dialect: Dialect, tables: Tables = defaults): ReadonlyArray<string> => [
  ...createStatements(dialect, tables),
  ...fillfactorStatements(dialect, tables)
]

/** Migration 1: the tables and indexes. */
const createStatements = (dialect: Dialect, tables: Tables): ReadonlyArray<string> => {
  const { outbox, inbox } = tables
  const pg = dialect === "pg"
  const int64 = pg ? "BIGINT" : "INTEGER"
  return [
    `CREATE TABLE IF NOT EXISTS "${outbox}" (
  ${pg ? `id TEXT PRIMARY KEY,\n  seq BIGSERIAL NOT NULL,` : `seq INTEGER PRIMARY KEY AUTOINCREMENT,\n  id TEXT NOT NULL UNIQUE,`}
  topic TEXT NOT NULL,
  key TEXT,
  payload ${pg ? "BYTEA" : "BLOB"} NOT NULL,
  headers TEXT NOT NULL,
  timestamp ${int64} NOT NULL,
  deliver_at ${int64},
  status TEXT NOT NULL CHECK (status IN (${statuses})),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  next_attempt_at ${int64} NOT NULL,
  created_at ${int64} NOT NULL,
  claim TEXT,
  claimed_until ${int64} NOT NULL DEFAULT 0,
  sent_at ${int64}
)`,
    `CREATE INDEX IF NOT EXISTS "${outbox}_unsent" ON "${outbox}" (seq) WHERE status IN ('pending', 'failed')`,
    `CREATE INDEX IF NOT EXISTS "${outbox}_unsent_key" ON "${outbox}" (key, seq) WHERE status IN ('pending', 'failed')`,
    `CREATE INDEX IF NOT EXISTS "${outbox}_status" ON "${outbox}" (status, seq)`,
    `CREATE TABLE IF NOT EXISTS "${inbox}" (
  key TEXT PRIMARY KEY,
  processed_at ${int64} NOT NULL
)`,
    `CREATE INDEX IF NOT EXISTS "${inbox}_processed_at" ON "${inbox}" (processed_at)`
  ]
}

/** Migration 2: room on the outbox's pages for its rows' updates (PostgreSQL; new pages only). */
const fillfactorStatements = (dialect: Dialect, tables: Tables): ReadonlyArray<string> =>
  dialect === "pg" ? [`ALTER TABLE "${tables.outbox}" SET (fillfactor = 50)`] : []

/** Runs the statements for the client's dialect. */
const running = (
  statementsOf: (dialect: Dialect, tables: Tables) => ReadonlyArray<string>,
  tables: Tables
): Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const dialect = yield* dialectOf(sql)
    for (const statement of statementsOf(dialect, tables)) yield* sql.unsafe(statement)
  })

/**
 * The migrations, by id: each reads the dialect from the client it runs on.
 * New versions of this package append migrations; applied ones never change.
 */
export const migrations = (
  tables: Tables = defaults
): Record<string, Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient>> => ({
  "0001_create_outbox_and_inbox": running(createStatements, tables),
  "0002_outbox_fillfactor": running(fillfactorStatements, tables)
})

/** Why migrating failed. */
export type MigrateError = Migrator.MigrationError | SqlError.SqlError

export interface MigrateOptions {
  readonly tables?: Partial<Tables> | undefined
}

/**
 * Creates or updates the tables on the current client, PostgreSQL or
 * SQLite; returns the `[id, name]` of each migration it applied. Safe to run
 * at every start and from several processes at once: PostgreSQL serializes
 * runs with a table lock, SQLite with its write lock.
 */
export const migrate = (
  options: MigrateOptions = {}
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, MigrateError, SqlClient.SqlClient> =>
  Effect.suspend(() => {
    const tables = resolve(options.tables)
    return Migrator.make({})({ loader: Migrator.fromRecord(migrations(tables)), table: tables.migrations })
  })

/** Runs `migrate` when the layer is built. */
export const layer = (options: MigrateOptions = {}): Layer.Layer<never, MigrateError, SqlClient.SqlClient> =>
  Layer.effectDiscard(migrate(options))
