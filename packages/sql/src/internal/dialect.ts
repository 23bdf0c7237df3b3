/**
 * Which SQL the stores speak, read from the client's statement compiler.
 */
import { Effect } from "effect"
import type { SqlClient } from "effect/sql"

/** The databases the stores support. */
export type Dialect = "pg" | "sqlite"

/** The client's dialect; a defect for databases the stores do not support. */
export const dialectOf = (sql: SqlClient.SqlClient, expected?: Dialect): Effect.Effect<Dialect> =>
  Effect.suspend(() => {
    const actual = sql.onDialectOrElse({
      pg: () => "pg" as const,
      sqlite: () => "sqlite" as const,
      orElse: () => undefined
    })
    if (actual === undefined) {
      return Effect.die(new TypeError("Lossless SQL stores support PostgreSQL and SQLite clients only"))
    }
    if (expected !== undefined && expected !== actual) {
      return Effect.die(new TypeError(`the store was configured for ${expected} but the SqlClient speaks ${actual}`))
    }
    return Effect.succeed(actual)
  })
