/**
 * Effect's SQL `Migrator` for the SQLite client.
 *
 * The generic migrator already speaks SQLite: it records applied migrations
 * in a table (`effect_sql_migrations` by default), runs the pending ones in
 * one transaction with their records, and skips what is recorded. What it
 * leaves to each database is dumping the schema after a run
 * (`schemaDirectory`), which this module does with SQL alone: no `sqlite3`
 * binary needed.
 *
 * Two processes migrating the same file at once are serialized by the
 * transaction's `BEGIN IMMEDIATE`: the second waits for the first's lock (up
 * to the client's `busyTimeout`, else it fails with a retryable
 * `LockTimeoutError` reason), then finds the migrations recorded and applies
 * nothing.
 *
 * ```ts
 * const Live = SqliteMigrator.layer({
 *   loader: SqliteMigrator.fromRecord({
 *     "0001_outbox": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE TABLE outbox (...)`)
 *   })
 * }).pipe(Layer.provideMerge(SqliteClient.layer({ filename: "app.db" })))
 * ```
 *
 * @since 0.1.0
 */
import { mkdir, writeFile } from "node:fs/promises"
import { dirname } from "node:path"
import { Effect, Layer } from "effect"
import { Migrator, SqlClient, type SqlError } from "effect/sql"

/** Migrations from a record of effects keyed `<id>_<name>`, e.g. `"0001_create_outbox"`. */
export const fromRecord = Migrator.fromRecord

/** Migrations from a record of dynamic imports keyed by file path `.../<id>_<name>.ts` (e.g. `import.meta.glob`). */
export const fromGlob = Migrator.fromGlob

/** Migrations from a Babel-style glob record (`_<id>_<name>Ts` keys). */
export const fromBabelGlob = Migrator.fromBabelGlob

/** Why migrating failed: a migration failed, could not be loaded, or ids repeat. */
export const MigrationError = Migrator.MigrationError
export type MigrationError = Migrator.MigrationError

export type Loader<R = never> = Migrator.Loader<R>
export type MigratorOptions<R = never> = Migrator.MigratorOptions<R>

/**
 * Writes the schema (tables, indexes, triggers and views in creation order)
 * and the applied migrations' records to `path`, so the file recreates the
 * database as migrated.
 */
export const dumpSchema = (
  path: string,
  migrationsTable: string
): Effect.Effect<void, Migrator.MigrationError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const objects = yield* sql<{ sql: string }>`
      SELECT sql FROM sqlite_master
      WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
      ORDER BY rowid`.withoutTransform
    const migrations = yield* sql<{ migration_id: number; name: string }>`
      SELECT migration_id, name FROM ${sql(migrationsTable)} ORDER BY migration_id`.withoutTransform
    const table = sql`${sql(migrationsTable)}`.compile(true)[0]
    const text = [
      ...objects.map((object) => `${object.sql};`),
      ...migrations.map(
        (m) =>
          `INSERT INTO ${table} (migration_id, name) VALUES (${m.migration_id}, '${m.name.replaceAll("'", "''")}');`
      )
    ].join("\n\n")
    yield* Effect.tryPromise(async () => {
      await mkdir(dirname(path), { recursive: true })
      await writeFile(path, `${text}\n`)
    })
  }).pipe(
    Effect.mapError(
      (cause) => new Migrator.MigrationError({ kind: "Failed", message: `Could not dump the schema to ${path}`, cause })
    )
  )

/**
 * Runs the pending migrations and returns the `[id, name]` of each one it
 * applied (none when all are recorded, or when another run holds them).
 */
export const run: <R = never>(
  options: Migrator.MigratorOptions<R>
) => Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError.SqlError,
  SqlClient.SqlClient | R
> = Migrator.make({ dumpSchema })

/** Runs the migrations when the layer is built; fails the layer if one fails. */
export const layer = <R = never>(
  options: Migrator.MigratorOptions<R>
): Layer.Layer<never, Migrator.MigrationError | SqlError.SqlError, SqlClient.SqlClient | R> =>
  Layer.effectDiscard(run(options))
