/**
 * Outbox stores on a test database: one per client, all on one case's tables.
 */
import { SqlOutboxStore } from "@lossless/sql"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import type { Database, Env } from "./Databases.ts"

/** A store on `sql` over the case's tables. */
export const storeOn = (
  env: Env,
  sql: SqlClient.SqlClient = env.sql,
  options: SqlOutboxStore.SqlOutboxStoreOptions = {}
) => SqlOutboxStore.make({ tables: env.tables, ...options }).pipe(Effect.provideService(SqlClient.SqlClient, sql))

/** `n` stores on one case's tables, each after the first with a client of its own. */
export const storeHandles = (db: Database, n: number) =>
  Effect.gen(function* () {
    const env = yield* db.env
    return yield* Effect.forEach(Array.from({ length: n }), (_, i) =>
      i === 0 ? storeOn(env) : Effect.flatMap(env.connect, (sql) => storeOn(env, sql))
    )
  })

/** One store on a fresh case. */
export const freshStore = (db: Database) => Effect.map(storeHandles(db, 1), (handles) => handles[0]!)
