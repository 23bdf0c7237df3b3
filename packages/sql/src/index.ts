/**
 * @lossless/sql: SQL storage for Lossless on `effect/sql`. It starts with an
 * embedded database, SQLite through Node's built-in `node:sqlite`, so the
 * outbox and inbox need no server.
 *
 * @since 0.1.0
 */

/** An `effect/sql` client over `node:sqlite`: durable by default, one connection, closed with its scope. */
export * as SqliteClient from "./SqliteClient.ts"
/** Effect's migrator for the SQLite client, with a schema dump that needs no `sqlite3` binary. */
export * as SqliteMigrator from "./SqliteMigrator.ts"
