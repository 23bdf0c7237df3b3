/**
 * The `effect/sql` `Connection` over one `node:sqlite` `DatabaseSync`.
 *
 * Every method runs SQLite synchronously on the calling thread, which is the
 * event loop: a statement blocks every other fiber until it returns. The
 * client serializes callers through one semaphore, so the connection itself
 * is never used by two statements at once, except a stream and the statements
 * of the transaction it was opened in.
 */
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite"
import { Array as Arr, Cause, Effect, Stream } from "effect"
import { SqlClient, type SqlConnection, SqlError } from "effect/sql"
import { bindError, type Operation, sqlError, statementError } from "./errors.ts"

type TransformRows = <A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>

/** A connection that can also say whether SQLite has a transaction open. */
export interface SqliteConnection extends SqlConnection.Connection {
  readonly isTransaction: () => boolean
}

export interface ConnectionOptions {
  /** Prepared statements kept for reuse; the least recently used beyond this are dropped. */
  readonly statementCacheSize: number
  /** Rows read from SQLite per pull of a stream. */
  readonly streamChunkSize: number
}

/**
 * A prepared statement with the modes it was last run in, so a cached
 * statement only crosses into native code to switch mode when it changes.
 */
interface Prepared {
  readonly statement: StatementSync
  readBigInts: boolean
  returnArrays: boolean
}

/**
 * A bounded least-recently-used map of prepared statements, keyed by SQL.
 *
 * A plain `Map` rather than Effect's `Cache`: lookups are synchronous, on one
 * connection that only one fiber uses at a time, and need no TTL, no
 * concurrent-lookup deduplication and no effect per hit. Map keeps insertion
 * order, so re-inserting on a hit makes the first key the least recently
 * used. The bound matters because `sql.in` and `sql.insert` render one SQL
 * text per list length or batch size.
 */
class StatementCache {
  private readonly entries = new Map<string, Prepared>()
  private readonly capacity: number
  constructor(capacity: number) {
    this.capacity = capacity
  }

  get(sql: string): Prepared | undefined {
    const entry = this.entries.get(sql)
    if (entry !== undefined) {
      this.entries.delete(sql)
      this.entries.set(sql, entry)
    }
    return entry
  }

  set(sql: string, entry: Prepared): void {
    if (this.capacity <= 0) return
    this.entries.set(sql, entry)
    if (this.entries.size > this.capacity) {
      // An evicted statement is finalized when it is garbage collected.
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
  }

  clear(): void {
    this.entries.clear()
  }
}

/**
 * Whitespace, comments and empty statements. `prepare` compiles only the first
 * statement of a string and silently ignores the rest, so anything else after
 * it is refused rather than dropped.
 */
const trivia = /^(?:\s+|;|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*$/

/**
 * Converts one parameter to a value `node:sqlite` binds.
 *
 * - `undefined` → `NULL`, as `effect/sql` treats it
 * - `boolean` → `1` / `0` (SQLite has no boolean type)
 * - `Date` → ISO 8601 text in UTC (`2024-01-01T00:00:00.000Z`): readable,
 *   ordered like the instants when compared as text, and understood by
 *   SQLite's date functions
 * - `Uint8Array` (and `Buffer`, any typed array or `DataView`) → BLOB;
 *   an `ArrayBuffer` is bound as its bytes
 * - strings, numbers and bigints as they are
 *
 * Anything else fails: a plain object in first position would otherwise be
 * taken by `node:sqlite` as named parameters and silently misbound.
 */
const toSqlite = (value: unknown, index: number): SQLInputValue | SqlError.SqlError => {
  switch (typeof value) {
    case "string":
    case "number":
    case "bigint":
      return value
    case "boolean":
      return value ? 1 : 0
    case "undefined":
      return null
    case "object": {
      if (value === null) return null
      if (ArrayBuffer.isView(value)) return value as SQLInputValue
      if (value instanceof Date) {
        return Number.isNaN(value.getTime()) ? bindError(index, value, "invalid Date") : value.toISOString()
      }
      if (value instanceof ArrayBuffer) return new Uint8Array(value)
      return bindError(
        index,
        value,
        "SQLite binds null, numbers, bigints, strings, booleans, Dates and bytes; encode other values first (for example with JSON.stringify)"
      )
    }
    default:
      return bindError(index, value, "unsupported type")
  }
}

const bindAll = (params: ReadonlyArray<unknown>): Array<SQLInputValue> | SqlError.SqlError => {
  const bound = new Array<SQLInputValue>(params.length)
  for (let i = 0; i < params.length; i++) {
    const value = toSqlite(params[i], i)
    if (SqlError.isSqlError(value)) return value
    bound[i] = value
  }
  return bound
}

/** Builds the connection; the caller owns `db` and closes it. */
export const make = (db: DatabaseSync, options: ConnectionOptions): SqliteConnection => {
  const cache = new StatementCache(options.statementCacheSize)

  const compile = (sql: string): Prepared | SqlError.SqlError => {
    let statement: StatementSync
    try {
      statement = db.prepare(sql)
    } catch (cause) {
      return sqlError(cause, "prepare", sql)
    }
    const source = statement.sourceSQL
    if (sql.startsWith(source) && !trivia.test(sql.slice(source.length))) {
      return statementError("more than one statement in one call; run each statement on its own", "prepare", sql)
    }
    return { statement, readBigInts: false, returnArrays: false }
  }

  const prepare = (sql: string, cached: boolean): Prepared | SqlError.SqlError => {
    if (!cached) return compile(sql)
    const hit = cache.get(sql)
    if (hit !== undefined) return hit
    const prepared = compile(sql)
    if (SqlError.isSqlError(prepared)) return prepared
    cache.set(sql, prepared)
    return prepared
  }

  /**
   * Prepares (or reuses) `sql`, binds `params` and runs `f` on it, all in one
   * synchronous step. `SqlClient.SafeIntegers` in the caller's context decides
   * whether INTEGERs come back as `bigint` (otherwise values beyond 2^53 fail).
   */
  const run = <A>(
    operation: Operation,
    sql: string,
    params: ReadonlyArray<unknown>,
    cached: boolean,
    returnArrays: boolean,
    f: (statement: StatementSync, bound: Array<SQLInputValue>) => A
  ): Effect.Effect<A, SqlError.SqlError> =>
    Effect.withFiber((fiber) => {
      const prepared = prepare(sql, cached)
      if (SqlError.isSqlError(prepared)) return Effect.fail(prepared)
      const bound = bindAll(params)
      if (SqlError.isSqlError(bound)) return Effect.fail(bound)
      try {
        const readBigInts = fiber.getRef(SqlClient.SafeIntegers)
        if (prepared.readBigInts !== readBigInts) {
          prepared.statement.setReadBigInts(readBigInts)
          prepared.readBigInts = readBigInts
        }
        if (prepared.returnArrays !== returnArrays) {
          prepared.statement.setReturnArrays(returnArrays)
          prepared.returnArrays = returnArrays
        }
        return Effect.succeed(f(prepared.statement, bound))
      } catch (cause) {
        return Effect.fail(sqlError(cause, operation))
      }
    })

  const rows =
    (transformRows: TransformRows | undefined) =>
    (statement: StatementSync, bound: Array<SQLInputValue>): ReadonlyArray<object> => {
      const result = statement.all(...bound)
      return transformRows === undefined ? result : transformRows(result)
    }

  const values = (statement: StatementSync, bound: Array<SQLInputValue>) =>
    statement.all(...bound) as unknown as ReadonlyArray<ReadonlyArray<unknown>>

  const executeStream = (
    sql: string,
    params: ReadonlyArray<unknown>,
    transformRows: TransformRows | undefined
  ): Stream.Stream<object, SqlError.SqlError> => {
    // A statement of its own, not a cached one: running the same SQL while the
    // stream is open (in the same transaction) would reset a shared cursor.
    const open = run("executeStream", sql, params, false, false, (statement, bound) => statement.iterate(...bound))
    // An unfinished cursor keeps its read snapshot and blocks checkpoints
    // until it is closed, so it is closed however the stream ends.
    const close = (cursor: Iterator<unknown>) =>
      Effect.sync(() => {
        try {
          cursor.return?.()
        } catch {
          // Already finished or the database is closed: nothing left to release.
        }
      })
    return Stream.unwrap(
      Effect.map(Effect.acquireRelease(open, close), (cursor) =>
        Stream.fromPull(
          Effect.succeed(
            Effect.suspend((): Effect.Effect<Arr.NonEmptyReadonlyArray<object>, SqlError.SqlError | Cause.Done> => {
              const chunk: Array<object> = []
              try {
                while (chunk.length < options.streamChunkSize) {
                  const next = cursor.next()
                  if (next.done) break
                  chunk.push(next.value)
                }
              } catch (cause) {
                return Effect.fail(sqlError(cause, "executeStream"))
              }
              const out = transformRows === undefined ? chunk : transformRows(chunk)
              return Arr.isReadonlyArrayNonEmpty(out) ? Effect.succeed(out) : Cause.done()
            })
          )
        )
      )
    )
  }

  return {
    execute: (sql, params, transformRows) => run("execute", sql, params, true, false, rows(transformRows)),
    executeRaw: (sql, params) =>
      // Rows for a statement that returns columns; otherwise what it changed.
      run("executeRaw", sql, params, true, false, (statement, bound) =>
        statement.columns().length > 0 ? statement.all(...bound) : statement.run(...bound)
      ),
    executeValues: (sql, params) => run("executeValues", sql, params, true, true, values),
    executeValuesUnprepared: (sql, params) => run("executeValues", sql, params, false, true, values),
    executeUnprepared: (sql, params, transformRows) =>
      run("executeUnprepared", sql, params, false, false, rows(transformRows)),
    executeStream,
    isTransaction: () => db.isOpen && db.isTransaction
  }
}
