/**
 * An embedded SQL database for Lossless: an `effect/sql` `SqlClient` over
 * Node's built-in `node:sqlite`, so the outbox and inbox work without a
 * database server and without a native module to build.
 *
 * `layer({ filename })` opens the database, provides both `SqliteClient` and
 * the generic `SqlClient.SqlClient`, and closes the database with the layer.
 * Everything `effect/sql` offers works on it: tagged-template statements,
 * `sql.insert`, `sql.in`, `withTransaction` (nested ones become savepoints),
 * streams, `SqlSchema`, `SqlResolver` and the `Migrator` (see
 * `SqliteMigrator`).
 *
 * **Durability.** File databases default to `journal_mode = WAL` and
 * `synchronous = FULL`: every committed transaction is synced to disk before
 * the commit returns, so a message the outbox acknowledged survives a power
 * failure. `NORMAL` with WAL is faster but can lose the last transactions
 * (never corrupt the file) on power loss, which for an outbox means
 * acknowledged messages silently never sent.
 *
 * **One connection, synchronous calls.** `node:sqlite` runs each statement
 * on the calling thread, the event loop. The client holds one connection and
 * lets one fiber use it at a time (a transaction keeps it until it ends), so
 * statements never interleave, and each statement blocks the process while
 * it runs: keep statements and result sets small, and stream large reads.
 * Another process writing the same file is waited for up to `busyTimeout`,
 * during which the event loop is blocked too.
 *
 * @since 0.1.0
 */
import { DatabaseSync } from "node:sqlite"
import { Config, Context, Duration, Effect, Layer, type Scope, Semaphore } from "effect"
import { Reactivity } from "effect/reactivity"
import { SqlClient, type SqlError, Statement } from "effect/sql"
import * as Connection from "./internal/connection.ts"
import { sqlError } from "./internal/errors.ts"

/** SQLite journal modes; see https://sqlite.org/pragma.html#pragma_journal_mode. */
export type JournalMode = "WAL" | "DELETE" | "TRUNCATE" | "PERSIST" | "MEMORY" | "OFF"

/** SQLite `synchronous` levels; see https://sqlite.org/pragma.html#pragma_synchronous. */
export type Synchronous = "OFF" | "NORMAL" | "FULL" | "EXTRA"

const journalModes: ReadonlyArray<JournalMode> = ["WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF"]
const synchronousLevels: ReadonlyArray<Synchronous> = ["OFF", "NORMAL", "FULL", "EXTRA"]

export interface SqliteClientConfig {
  /** A file path, created if missing (unless `readonly`), or `":memory:"` for a private in-memory database. */
  readonly filename: string
  /**
   * Opens the database read-only; writes fail with an `AuthorizationError`
   * reason. The file must exist. A WAL database also needs its `-shm` file or
   * a writable directory.
   * @default false
   */
  readonly readonly?: boolean | undefined
  /**
   * How long a statement waits for a lock held by another connection (another
   * process, or a `sqlite3` shell) before failing with a `LockTimeoutError`
   * reason, which is retryable. SQLite waits on the calling thread, so this is
   * also how long the event loop can stall. Statements of this client never
   * wait for each other: they are queued as fibers instead.
   * @default 1 second
   */
  readonly busyTimeout?: Duration.Input | undefined
  /**
   * Journal mode of a file database; in-memory and read-only databases keep
   * theirs. WAL lets readers in other processes work while one writes and
   * needs one sync per commit instead of several.
   * @default "WAL"
   */
  readonly journalMode?: JournalMode | undefined
  /**
   * When SQLite waits for the disk. `FULL` syncs the log at every commit, so
   * a committed transaction survives power loss. `NORMAL` (with WAL) syncs
   * only at checkpoints: still never corrupt, but the last commits can be lost,
   * which an outbox cannot accept. `EXTRA` also syncs the directory in
   * rollback-journal modes.
   * @default "FULL"
   */
  readonly synchronous?: Synchronous | undefined
  /**
   * Enforces `FOREIGN KEY` constraints (`PRAGMA foreign_keys`).
   * @default true
   */
  readonly foreignKeys?: boolean | undefined
  /**
   * Prepared statements kept for reuse, least recently used dropped first.
   * `sql.in` and `sql.insert` produce one SQL text per list length, hence the
   * bound. `0` prepares every statement afresh.
   * @default 256
   */
  readonly statementCacheSize?: number | undefined
  /**
   * Rows read per pull of `sql.stream`: each pull is one synchronous step.
   * @default 256
   */
  readonly streamChunkSize?: number | undefined
  /** Extra attributes on every statement's span. */
  readonly spanAttributes?: Record<string, unknown> | undefined
  /** Renames result columns, e.g. `snake_case` to `camelCase`. */
  readonly transformResultNames?: ((name: string) => string) | undefined
  /** Renames identifiers in statements, e.g. `camelCase` to `snake_case`. */
  readonly transformQueryNames?: ((name: string) => string) | undefined
}

/** What `make` applies when an option is left out. */
export const defaults = {
  busyTimeout: Duration.seconds(1),
  journalMode: "WAL",
  synchronous: "FULL",
  foreignKeys: true,
  statementCacheSize: 256,
  streamChunkSize: 256
} as const satisfies Partial<SqliteClientConfig>

/** The settings the open database runs with, read back from SQLite. */
export interface Settings {
  /** The resolved file path, or `undefined` for an in-memory database. */
  readonly location: string | undefined
  readonly readonly: boolean
  /** Lower case, as SQLite reports it: `"wal"`, `"delete"`, `"memory"`, ... */
  readonly journalMode: string
  readonly synchronous: Synchronous
  readonly foreignKeys: boolean
  readonly busyTimeout: Duration.Duration
}

/** An `effect/sql` client over `node:sqlite`, with the settings it opened the database with. */
export interface Client extends SqlClient.SqlClient {
  readonly config: SqliteClientConfig
  readonly settings: Settings
}

/** The SQLite client; `layer` provides it as `SqlClient.SqlClient` too. */
export class SqliteClient extends Context.Service<SqliteClient, Client>()("@lossless/sql/SqliteClient") {}

/** Identifies this driver in `SqlClient.driver`. */
export const driver = "node-sqlite"

const invalidOption = (name: string, value: unknown, allowed: ReadonlyArray<string>) =>
  sqlError(new RangeError(`invalid ${name} ${JSON.stringify(value)}: expected one of ${allowed.join(", ")}`), "open")

const oneOf = <A extends string>(
  name: string,
  value: string,
  allowed: ReadonlyArray<A>
): Effect.Effect<A, SqlError.SqlError> => {
  const upper = value.toUpperCase()
  const found = allowed.find((a) => a === upper)
  return found === undefined ? Effect.fail(invalidOption(name, value, allowed)) : Effect.succeed(found)
}

const pragma = (db: DatabaseSync, statement: string): Effect.Effect<unknown, SqlError.SqlError> =>
  Effect.try({
    try: () => {
      const row = db.prepare(`PRAGMA ${statement}`).get()
      return row === undefined ? undefined : Object.values(row)[0]
    },
    catch: (cause) => sqlError(cause, "configure", `PRAGMA ${statement}`)
  })

/**
 * Opens the database in the current scope and builds the client; closing the
 * scope closes the database. SQLite rolls back a transaction still open then.
 *
 * Fails with a `SqlError` (reason `ConnectionError` when the file cannot be
 * opened) if the database cannot be opened or configured.
 */
export const make = (
  options: SqliteClientConfig
): Effect.Effect<Client, SqlError.SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function* () {
    const readonly = options.readonly ?? false
    const busyTimeout = Duration.fromInputUnsafe(options.busyTimeout ?? defaults.busyTimeout)
    const journalMode = yield* oneOf("journalMode", options.journalMode ?? defaults.journalMode, journalModes)
    const synchronous = yield* oneOf("synchronous", options.synchronous ?? defaults.synchronous, synchronousLevels)
    const foreignKeys = options.foreignKeys ?? defaults.foreignKeys

    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          new DatabaseSync(options.filename, {
            readOnly: readonly,
            enableForeignKeyConstraints: foreignKeys,
            timeout: Math.min(Duration.toMillis(busyTimeout), 2 ** 31 - 1)
          }),
        catch: (cause) => sqlError(cause, "open")
      }),
      (db) =>
        Effect.sync(() => {
          // A failed close leaves nothing this process could still release.
          if (db.isOpen) db.close()
        }).pipe(Effect.catchDefect((cause) => Effect.logWarning("closing the SQLite database failed", cause)))
    )

    // `location()` is null (or empty) for in-memory and temporary databases.
    const location = db.location() || undefined
    if (location !== undefined && !readonly) {
      const applied = String(yield* pragma(db, `journal_mode = ${journalMode}`))
      if (applied.toUpperCase() !== journalMode) {
        // Some file systems refuse WAL (no shared memory); the database still
        // works and stays durable, only with less concurrency.
        yield* Effect.logWarning(`SQLite kept journal_mode ${applied} instead of ${journalMode} for ${location}`)
      }
    }
    yield* pragma(db, `synchronous = ${synchronous}`)

    const settings: Settings = {
      location,
      readonly,
      journalMode: String(yield* pragma(db, "journal_mode")),
      synchronous: synchronousLevels[Number(yield* pragma(db, "synchronous"))] ?? synchronous,
      foreignKeys: Number(yield* pragma(db, "foreign_keys")) === 1,
      busyTimeout
    }

    const connection = Connection.make(db, {
      statementCacheSize: Math.max(0, options.statementCacheSize ?? defaults.statementCacheSize),
      streamChunkSize: Math.max(1, options.streamChunkSize ?? defaults.streamChunkSize)
    })
    const acquirers = SqlClient.makeSqliteAcquirers({
      connection: Effect.succeed(connection),
      semaphore: yield* Semaphore.make(1),
      isTransaction: (conn) => conn.isTransaction()
    })

    const client = yield* SqlClient.make({
      acquirer: acquirers.acquirer,
      borrower: acquirers.borrower,
      transactionAcquirer: acquirers.transactionAcquirer,
      onCommitFailure: acquirers.onCommitFailure,
      isTransaction: acquirers.isTransaction,
      compiler: Statement.makeCompilerSqlite(options.transformQueryNames),
      transformRows: options.transformResultNames
        ? Statement.defaultTransforms(options.transformResultNames).array
        : undefined,
      driver,
      spanAttributes: [...Object.entries(options.spanAttributes ?? {}), ["db.system.name", "sqlite"]],
      // IMMEDIATE takes the write lock when the transaction starts, where
      // `busyTimeout` applies. A deferred BEGIN that writes later fails at once
      // with SQLITE_BUSY if another process wrote meanwhile. A read-only
      // database never writes, so it keeps the plain BEGIN.
      beginTransaction: readonly ? "BEGIN" : "BEGIN IMMEDIATE",
      // SQLite prepares BEGIN, COMMIT, ROLLBACK and savepoints like any other
      // statement, so they come from the statement cache.
      prepareTransactionControls: true,
      // Without RELEASE a savepoint stays on SQLite's stack after it commits
      // or rolls back, until the outer transaction ends.
      releaseSavepoint: (name) => `RELEASE SAVEPOINT ${name}`
    })

    return Object.assign(client, { config: options, settings }) as Client
  })

/** The client as a layer: provides `SqliteClient` and `SqlClient.SqlClient`; closes the database when released. */
export const layer = (
  options: SqliteClientConfig
): Layer.Layer<SqliteClient | SqlClient.SqlClient, SqlError.SqlError> =>
  Layer.effectContext(
    Effect.map(make(options), (client) =>
      Context.make(SqliteClient, client).pipe(Context.add(SqlClient.SqlClient, client))
    )
  ).pipe(Layer.provide(Reactivity.layer))

/** Environment variables read by `config`. */
export const envVars = {
  filename: "LOSSLESS_SQLITE_FILENAME",
  readonly: "LOSSLESS_SQLITE_READONLY",
  busyTimeout: "LOSSLESS_SQLITE_BUSY_TIMEOUT",
  journalMode: "LOSSLESS_SQLITE_JOURNAL_MODE",
  synchronous: "LOSSLESS_SQLITE_SYNCHRONOUS"
} as const

/**
 * The settings from the environment: `LOSSLESS_SQLITE_FILENAME` (required:
 * where the data lives is never guessed), and optionally
 * `LOSSLESS_SQLITE_READONLY`, `LOSSLESS_SQLITE_BUSY_TIMEOUT` (e.g. `"5 seconds"`),
 * `LOSSLESS_SQLITE_JOURNAL_MODE` and `LOSSLESS_SQLITE_SYNCHRONOUS`.
 */
export const config: Config.Config<SqliteClientConfig> = Config.all({
  filename: Config.NonEmptyString(envVars.filename),
  readonly: Config.Boolean(envVars.readonly).pipe(Config.withDefault(false)),
  busyTimeout: Config.Duration(envVars.busyTimeout).pipe(Config.withDefault(defaults.busyTimeout)),
  journalMode: Config.Literals(journalModes, envVars.journalMode).pipe(Config.withDefault(defaults.journalMode)),
  synchronous: Config.Literals(synchronousLevels, envVars.synchronous).pipe(Config.withDefault(defaults.synchronous))
})

/**
 * The client as a layer, with its settings read from configuration: by
 * default `config` (environment variables), or any record of `Config`s.
 */
export const layerConfig = (
  settings: Config.Wrap<SqliteClientConfig> = config
): Layer.Layer<SqliteClient | SqlClient.SqlClient, SqlError.SqlError | Config.ConfigError> =>
  Layer.unwrap(Effect.map(Config.unwrap(settings), layer))
