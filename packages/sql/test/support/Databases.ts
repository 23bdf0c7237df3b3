/**
 * The two databases every SQL store test runs on, behind one interface: an
 * embedded SQLite file and a real PostgreSQL server. Each case gets tables
 * of its own (a unique prefix), clients of its own, and a way to take the
 * database away and bring it back.
 */

import { mkdtemp, rm } from "node:fs/promises"
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { PgClient } from "@effect/sql-pg"
import { OutboxSchema, SqliteClient } from "@lossless/sql"
import { OutboxStoreSuite, Services } from "@lossless/testkit"
import { Effect, Redacted, type Scope } from "effect"
import { Reactivity } from "effect/reactivity"
import { SqlClient } from "effect/sql"

/** Makes the database unreachable for the clients of `Env.connectFlaky`, and reachable again. */
export interface Outage {
  readonly down: Effect.Effect<void>
  readonly up: Effect.Effect<void>
}

/** One case's view of a database. */
export interface Env {
  /** The case's main client. */
  readonly sql: SqlClient.SqlClient
  /** Tables no other case uses, already migrated. */
  readonly tables: OutboxSchema.Tables
  /** A name for a business table of this case. */
  readonly table: (name: string) => string
  /** Another client on the same database, as another process would have. */
  readonly connect: Effect.Effect<SqlClient.SqlClient, never, Scope.Scope>
  /**
   * A client for another fiber of this process that holds transactions
   * open while it awaits: a pool of its own on PostgreSQL, the same
   * connection on SQLite (a second connection of one process would
   * busy-wait on the event loop for a lock only that event loop can free).
   */
  readonly sibling: Effect.Effect<SqlClient.SqlClient, never, Scope.Scope>
  /** A client whose database can be taken away, and the switch. */
  readonly connectFlaky: Effect.Effect<
    { readonly sql: SqlClient.SqlClient; readonly outage: Outage },
    never,
    Scope.Scope
  >
}

/** A database of its own for a case, nothing created in it yet. */
export interface Bare {
  readonly sql: SqlClient.SqlClient
  /** Prefix for every table the case creates; on PostgreSQL they are dropped after the case. */
  readonly prefix: string
  /** Another client on the same database. */
  readonly connect: Effect.Effect<SqlClient.SqlClient, never, Scope.Scope>
}

export interface Database {
  readonly name: "sqlite" | "postgres"
  readonly bare: Effect.Effect<Bare, never, Scope.Scope>
  readonly env: Effect.Effect<Env, never, Scope.Scope>
}

const withReactivity = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, Reactivity.layer)

const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "lossless-sql-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

const newPrefix = () => `lt_${OutboxStoreSuite.uniqueSuffix()}_`

/** Tables under the case's prefix, migrated on `sql`. */
const migrated = (sql: SqlClient.SqlClient, prefix: string) =>
  Effect.gen(function* () {
    const tables = OutboxSchema.withPrefix(prefix)
    yield* OutboxSchema.migrate({ tables }).pipe(Effect.provideService(SqlClient.SqlClient, sql), Effect.orDie)
    return tables
  })

const sqliteFile = Effect.gen(function* () {
  const filename = join(yield* tempDir, "app.db")
  const open = (busyTimeout = 1_000) => withReactivity(SqliteClient.make({ filename, busyTimeout })).pipe(Effect.orDie)
  return { filename, open }
})

/** An embedded SQLite database in a temporary file per case. */
export const sqlite: Database = {
  name: "sqlite",
  bare: Effect.gen(function* () {
    const { open } = yield* sqliteFile
    return { sql: yield* open(), prefix: newPrefix(), connect: open() }
  }),
  env: Effect.gen(function* () {
    const { filename, open } = yield* sqliteFile
    const sql = yield* open()
    const prefix = newPrefix()
    const tables = yield* migrated(sql, prefix)
    return {
      sql,
      tables,
      table: (name) => `${prefix}${name}`,
      connect: open(),
      sibling: Effect.succeed(sql),
      // Another connection holding SQLite's exclusive lock: every write of the client
      // fails with a (retryable) lock timeout until it lets go.
      connectFlaky: Effect.gen(function* () {
        const flaky = yield* open(20)
        const holder = yield* Effect.acquireRelease(
          Effect.sync(() => new DatabaseSync(filename)),
          (db) => Effect.sync(() => db.close())
        )
        return {
          sql: flaky,
          outage: {
            down: Effect.sync(() => holder.exec("BEGIN EXCLUSIVE")),
            up: Effect.sync(() => holder.exec("COMMIT"))
          }
        }
      })
    }
  })
}

/** A TCP proxy in front of PostgreSQL: stopping it is the database going away. */
const proxy = (target: URL) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ server: Server; port: number; sockets: Set<Socket> }>((resolve) => {
          const sockets = new Set<Socket>()
          const server = createServer((client) => {
            const upstream = tcpConnect({ host: target.hostname, port: Number(target.port || 5432) })
            for (const s of [client, upstream]) {
              sockets.add(s)
              s.on("close", () => sockets.delete(s))
              s.on("error", () => s.destroy())
            }
            client.pipe(upstream).pipe(client)
          })
          server.listen(0, "127.0.0.1", () => {
            const address = server.address()
            resolve({ server, port: typeof address === "object" && address ? address.port : 0, sockets })
          })
        })
    ),
    ({ server, sockets }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            for (const s of sockets) s.destroy()
            server.close(() => resolve())
          })
      )
  )

const pgOpen = (target: string) =>
  withReactivity(PgClient.make({ url: Redacted.make(target), maxConnections: 4 })).pipe(Effect.orDie)

/** A client and a table prefix of the case's own; its tables are dropped when the case ends. */
const pgBare = Effect.gen(function* () {
  const url = Services.url("postgres")
  const sql = yield* pgOpen(url)
  const prefix = newPrefix()
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      const own = yield* sql<{ readonly tablename: string }>`
        SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE ${`${prefix}%`}`
      for (const { tablename } of own) yield* sql`DROP TABLE IF EXISTS ${sql(tablename)} CASCADE`
    }).pipe(Effect.ignore)
  )
  return { sql, prefix, connect: pgOpen(url), url }
})

/** The PostgreSQL server of `LOSSLESS_POSTGRES_URL` (or the local default); tables per case, dropped after it. */
export const postgres: Database = {
  name: "postgres",
  bare: pgBare,
  env: Effect.gen(function* () {
    const { sql, prefix, url } = yield* pgBare
    const open = (target = url) => pgOpen(target)
    const tables = yield* migrated(sql, prefix)
    return {
      sql,
      tables,
      table: (name) => `${prefix}${name}`,
      connect: open(),
      sibling: open(),
      connectFlaky: Effect.gen(function* () {
        const target = new URL(url)
        const relay = yield* proxy(target)
        const viaProxy = new URL(url)
        viaProxy.hostname = "127.0.0.1"
        viaProxy.port = String(relay.port)
        const flaky = yield* withReactivity(
          PgClient.make({ url: Redacted.make(viaProxy.toString()), maxConnections: 2, connectTimeout: "2 seconds" })
        ).pipe(Effect.orDie)
        return {
          sql: flaky,
          outage: {
            down: Effect.promise(
              () =>
                new Promise<void>((resolve) => {
                  for (const s of relay.sockets) s.destroy()
                  relay.server.close(() => resolve())
                })
            ),
            up: Effect.promise(
              () => new Promise<void>((resolve) => relay.server.listen(relay.port, "127.0.0.1", () => resolve()))
            )
          }
        }
      })
    }
  })
}
