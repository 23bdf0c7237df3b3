/**
 * @lossless/sql: SQL storage for Lossless on `effect/sql`: the
 * transactional outbox, half messages and the inbox (exactly-once effects),
 * on PostgreSQL (`@effect/sql-pg`) and on an embedded SQLite through Node's
 * built-in `node:sqlite`, which needs no server.
 *
 * @since 0.1.0
 */

/** Operator operations on the SQL outbox: counts, filtered listing, retry and park by id. */
export * as OutboxAdmin from "./OutboxAdmin.ts"
/** The outbox and inbox tables, their DDL, and the migration that creates them. */
export * as OutboxSchema from "./OutboxSchema.ts"
/** A pooled PostgreSQL client from `LOSSLESS_POSTGRES_URL`. */
export * as Postgres from "./Postgres.ts"
/** The inbox: a handler's writes and its message's key in one transaction. */
export * as SqlInbox from "./SqlInbox.ts"
/** An `effect/sql` client over `node:sqlite`: durable by default, one connection, closed with its scope. */
export * as SqliteClient from "./SqliteClient.ts"
/** Effect's migrator for the SQLite client, with a schema dump that needs no `sqlite3` binary. */
export * as SqliteMigrator from "./SqliteMigrator.ts"
/** Layers for the outbox: store, publisher, half messages, relay. */
export * as SqlOutbox from "./SqlOutbox.ts"
/** Core's `OutboxStore` in a SQL table. */
export * as SqlOutboxStore from "./SqlOutboxStore.ts"
