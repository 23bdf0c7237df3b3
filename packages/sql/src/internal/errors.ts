/**
 * Turns what `node:sqlite` throws into `SqlError`s whose reason says what
 * happened, so callers can catch the cases they handle
 * (`Effect.catchReason("SqlError", "UniqueViolation", ...)`) and retry only
 * what may succeed.
 *
 * `node:sqlite` throws an `Error` with `code: "ERR_SQLITE_ERROR"`, the SQLite
 * extended result code in `errcode` and SQLite's description in `errstr`;
 * problems it finds itself (a value it cannot bind, a closed database, an
 * integer too large for a number) carry other Node.js codes and no `errcode`.
 */
import { Predicate } from "effect"
import { SqlError } from "effect/sql"

const {
  AuthorizationError,
  ConnectionError,
  ConstraintError,
  LockTimeoutError,
  SqlSyntaxError,
  UniqueViolation,
  UnknownError
} = SqlError

type SqlErrorReason = SqlError.SqlErrorReason

/** What the driver was doing, reported as the reason's `operation`. */
export type Operation =
  | "open"
  | "configure"
  | "prepare"
  | "bind"
  | "execute"
  | "executeRaw"
  | "executeValues"
  | "executeUnprepared"
  | "executeStream"

type ReasonFields = { readonly cause: unknown; readonly message: string; readonly operation: Operation }

/** SQLite primary result codes (the low byte of an extended code) this driver tells apart. */
const SQLITE_ERROR = 1
const SQLITE_PERM = 3
const SQLITE_BUSY = 5
const SQLITE_LOCKED = 6
const SQLITE_READONLY = 8
const SQLITE_CANTOPEN = 14
const SQLITE_CONSTRAINT = 19
const SQLITE_AUTH = 23
const SQLITE_RANGE = 25

/** Extended constraint codes that mean "this key already exists". */
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555
const SQLITE_CONSTRAINT_UNIQUE = 2067

/**
 * Primary result code → reason, for codes whose meaning does not depend on
 * the statement. Codes not listed become `UnknownError` (not retryable).
 */
const byPrimaryCode: Record<number, (fields: ReasonFields) => SqlErrorReason> = {
  // Another connection (another process) holds the lock beyond `busyTimeout`:
  // retrying later may succeed.
  [SQLITE_BUSY]: (fields) => new LockTimeoutError(fields),
  [SQLITE_LOCKED]: (fields) => new LockTimeoutError(fields),
  [SQLITE_CANTOPEN]: (fields) => new ConnectionError(fields),
  [SQLITE_PERM]: (fields) => new AuthorizationError(fields),
  // A write on a database opened read-only (or on a read-only file).
  [SQLITE_READONLY]: (fields) => new AuthorizationError(fields),
  // Raised when an authorizer callback denies an action: a permission
  // failure, not a failed login.
  [SQLITE_AUTH]: (fields) => new AuthorizationError(fields),
  // More or fewer parameters than the statement has placeholders: the
  // statement and its arguments do not match.
  [SQLITE_RANGE]: (fields) => new SqlSyntaxError(fields)
}

const messageOf = (cause: unknown): string =>
  Predicate.hasProperty(cause, "message") && typeof cause.message === "string" ? cause.message : String(cause)

const numberProperty = (cause: unknown, key: string): number | undefined =>
  Predicate.hasProperty(cause, key) && typeof cause[key] === "number" ? cause[key] : undefined

const stringProperty = (cause: unknown, key: string): string | undefined =>
  Predicate.hasProperty(cause, key) && typeof cause[key] === "string" ? cause[key] : undefined

/** `"UNIQUE constraint failed: outbox.id"` → `"outbox.id"`; SQLite names the columns, not the index. */
const violatedColumns = (message: string): string => {
  const match = /constraint failed: (.+)$/.exec(message)
  return match?.[1]?.trim() || "unknown"
}

/** A short excerpt of the statement for messages about statements that cannot be prepared. */
const excerpt = (sql: string): string => {
  const oneLine = sql.replace(/\s+/g, " ").trim()
  return oneLine.length > 200 ? `${oneLine.slice(0, 200)}…` : oneLine
}

const reasonOf = (cause: unknown, operation: Operation, sql: string | undefined): SqlErrorReason => {
  const message = messageOf(cause)
  const errcode = numberProperty(cause, "errcode")
  if (errcode === undefined) {
    // Node.js' own checks, before or after SQLite ran.
    switch (stringProperty(cause, "code")) {
      case "ERR_INVALID_STATE":
        // "database is not open": used after the layer closed it.
        return new ConnectionError({ cause, message, operation })
      case "ERR_OUT_OF_RANGE":
        return new UnknownError({
          cause,
          message: `${message} (provide SqlClient.SafeIntegers = true to read INTEGERs as bigint)`,
          operation
        })
      case "ERR_INVALID_ARG_VALUE":
        // e.g. "The SQL query contains no statements."
        return new SqlSyntaxError({ cause, message: withSql(message, sql), operation })
      default:
        return new UnknownError({ cause, message, operation })
    }
  }
  if (errcode === SQLITE_CONSTRAINT_UNIQUE || errcode === SQLITE_CONSTRAINT_PRIMARYKEY) {
    // A duplicate primary key is a unique violation too, as PostgreSQL
    // reports it (23505), so one handler serves both databases.
    return new UniqueViolation({ cause, message, operation, constraint: violatedColumns(message) })
  }
  const primary = errcode & 0xff
  if (primary === SQLITE_CONSTRAINT) return new ConstraintError({ cause, message, operation })
  // SQLITE_ERROR while preparing is a statement SQLite cannot compile: bad
  // syntax, an unknown table or column. While running it is something else.
  if (primary === SQLITE_ERROR && operation === "prepare") {
    return new SqlSyntaxError({ cause, message: withSql(message, sql), operation })
  }
  const make = byPrimaryCode[primary]
  return make ? make({ cause, message, operation }) : new UnknownError({ cause, message, operation })
}

const withSql = (message: string, sql: string | undefined): string =>
  sql === undefined ? message : `${message} in: ${excerpt(sql)}`

/** Wraps anything `node:sqlite` threw as a `SqlError` with a classified reason. */
export const sqlError = (cause: unknown, operation: Operation, sql?: string): SqlError.SqlError =>
  new SqlError.SqlError({ reason: reasonOf(cause, operation, sql) })

/** A failure of this driver's own checks, reported like the database's own. */
export const statementError = (message: string, operation: Operation, sql: string): SqlError.SqlError =>
  new SqlError.SqlError({
    reason: new SqlSyntaxError({ cause: new Error(message), message: withSql(message, sql), operation })
  })

/** A parameter `node:sqlite` cannot bind. */
export const bindError = (index: number, value: unknown, detail: string): SqlError.SqlError => {
  const type = value === null ? "null" : Array.isArray(value) ? "array" : typeof value
  const message = `cannot bind parameter ${index + 1} (${type}): ${detail}`
  return new SqlError.SqlError({
    reason: new UnknownError({ cause: new TypeError(message), message, operation: "bind" })
  })
}
