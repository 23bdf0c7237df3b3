/**
 * Creating the outbox and inbox tables, on SQLite and PostgreSQL: the
 * migration is idempotent, keeps its bookkeeping apart from the
 * application's migrations, takes table names, and adopts tables created
 * from the exported DDL.
 */
import { describe, expect, it } from "@effect/vitest"
import { StoreUnavailable } from "@lossless/core"
import { OutboxSchema, SqlOutbox, SqlOutboxStore } from "@lossless/sql"
import { Harness, Services } from "@lossless/testkit"
import { Effect, Layer } from "effect"
import { Migrator, SqlClient } from "effect/sql"
import { type Database, postgres, sqlite } from "./support/Databases.ts"

const pg = await Services.require("postgres")

const tablesOf = (db: Database, sql: SqlClient.SqlClient, prefix: string) =>
  Effect.map(
    db.name === "sqlite"
      ? sql<{ readonly name: string }>`SELECT name FROM sqlite_master WHERE name LIKE ${`${prefix}%`} ORDER BY name`
      : sql<{ readonly name: string }>`
          SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE ${`${prefix}%`}
          UNION ALL
          SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema() AND indexname LIKE ${`${prefix}%`}
          ORDER BY name`,
    (rows) => rows.map((r) => r.name).filter((name) => !name.endsWith("_pkey") && !name.startsWith("sqlite_"))
  )

const schemaCases = (db: Database): void => {
  describe(`schema on ${db.name}`, () => {
    it.effect(
      "migrate creates the tables and indexes once, recording itself apart from the application's migrations",
      () =>
        Effect.gen(function* () {
          const { sql, prefix } = yield* db.bare
          const tables = OutboxSchema.withPrefix(prefix)
          // The application's own migrations, with ids that collide with ours, in their own table.
          const appTable = `${prefix}app_migrations`
          const app = Migrator.make({})({
            table: appTable,
            loader: Migrator.fromRecord({
              "0001_create_orders": Effect.flatMap(
                SqlClient.SqlClient,
                (s) => s`CREATE TABLE ${s(`${prefix}orders`)} (id TEXT)`
              )
            })
          })
          const run = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
            Effect.provideService(effect, SqlClient.SqlClient, sql)
          expect(yield* run(app)).toEqual([[1, "create_orders"]])
          expect(yield* run(OutboxSchema.migrate({ tables }))).toEqual([
            [1, "create_outbox_and_inbox"],
            [2, "outbox_fillfactor"]
          ])
          expect(yield* run(OutboxSchema.migrate({ tables }))).toEqual([])
          expect(yield* run(app)).toEqual([])
          expect(yield* tablesOf(db, sql, prefix)).toEqual(
            [
              `${prefix}app_migrations`,
              `${prefix}inbox`,
              `${prefix}inbox_processed_at`,
              `${prefix}migrations`,
              `${prefix}orders`,
              `${prefix}outbox`,
              `${prefix}outbox_status`,
              `${prefix}outbox_unsent`,
              `${prefix}outbox_unsent_key`
            ].sort()
          )
          const recorded = yield* sql<{ readonly migration_id: number; readonly name: string }>`
          SELECT migration_id, name FROM ${sql(tables.migrations)}`
          expect(recorded).toEqual([
            { migration_id: 1, name: "create_outbox_and_inbox" },
            { migration_id: 2, name: "outbox_fillfactor" }
          ])
          if (db.name !== "sqlite") {
            // Room on each page for a row's two updates (see OutboxSchema).
            const [options] = yield* sql<{ readonly reloptions: ReadonlyArray<string> | null }>`
              SELECT reloptions FROM pg_class WHERE oid = ${tables.outbox}::regclass`
            expect(options?.reloptions).toEqual(["fillfactor=50"])
          }
        })
    )

    it.effect("migrations from several processes at once apply once", () =>
      Effect.gen(function* () {
        const { sql, prefix, connect } = yield* db.bare
        const tables = OutboxSchema.withPrefix(prefix)
        const clients = [sql, yield* connect, yield* connect]
        const applied = yield* Effect.forEach(
          clients,
          (client) => OutboxSchema.migrate({ tables }).pipe(Effect.provideService(SqlClient.SqlClient, client)),
          { concurrency: "unbounded" }
        )
        expect(applied.flat()).toEqual([
          [1, "create_outbox_and_inbox"],
          [2, "outbox_fillfactor"]
        ])
      })
    )

    it.effect("tables created from the exported DDL are adopted", () =>
      Effect.gen(function* () {
        const { sql, prefix } = yield* db.bare
        const tables = OutboxSchema.withPrefix(prefix)
        for (const statement of OutboxSchema.statements(db.name === "sqlite" ? "sqlite" : "pg", tables)) {
          yield* sql.unsafe(statement)
        }
        // The migration finds them (IF NOT EXISTS) and records itself.
        const store = yield* Effect.andThen(OutboxSchema.migrate({ tables }), SqlOutboxStore.make({ tables })).pipe(
          Effect.provideService(SqlClient.SqlClient, sql)
        )
        yield* store.add([Harness.envelope("orders")], "pending")
        expect((yield* store.stats).pending).toBe(1)
      })
    )

    it.effect("without the tables every store operation fails with StoreUnavailable", () =>
      Effect.gen(function* () {
        const { sql, prefix } = yield* db.bare
        const store = yield* SqlOutbox.Store.pipe(
          Effect.provide(
            SqlOutbox.layerStore({ tables: OutboxSchema.withPrefix(prefix), migrate: false }).pipe(
              Layer.provide(Layer.succeed(SqlClient.SqlClient, sql))
            )
          )
        )
        const error = yield* Effect.flip(store.add([Harness.envelope("orders")], "pending"))
        expect(error).toBeInstanceOf(StoreUnavailable)
        expect(error.message).toContain(`${prefix}outbox`)
      })
    )
  })
}

schemaCases(sqlite)
describe.skipIf(!pg.available)("PostgreSQL", () => schemaCases(postgres))

describe("table names", () => {
  it("defaults to the lossless_ prefix and takes others", () => {
    expect(OutboxSchema.defaults).toEqual({
      outbox: "lossless_outbox",
      inbox: "lossless_inbox",
      migrations: "lossless_migrations"
    })
    expect(OutboxSchema.withPrefix("billing_")).toEqual({
      outbox: "billing_outbox",
      inbox: "billing_inbox",
      migrations: "billing_migrations"
    })
    expect(OutboxSchema.resolve({ outbox: "events" }).outbox).toBe("events")
  })

  it("refuses names that are not plain lower-case identifiers", () => {
    for (const outbox of ["Outbox", "out-box", "outbox; DROP TABLE x", "1outbox", "x".repeat(49), ""]) {
      expect(() => OutboxSchema.resolve({ outbox })).toThrow(/invalid outbox table name/)
    }
  })

  it("exports the DDL for both databases", () => {
    const [pgOutbox] = OutboxSchema.statements("pg")
    const [sqliteOutbox] = OutboxSchema.statements("sqlite")
    expect(pgOutbox).toContain("seq BIGSERIAL")
    expect(pgOutbox).toContain("payload BYTEA")
    expect(sqliteOutbox).toContain("seq INTEGER PRIMARY KEY AUTOINCREMENT")
    expect(sqliteOutbox).toContain("payload BLOB")
    expect(OutboxSchema.statements("pg")).toHaveLength(7)
    expect(OutboxSchema.statements("pg")).toContain(`ALTER TABLE "lossless_outbox" SET (fillfactor = 50)`)
    expect(OutboxSchema.statements("sqlite")).toHaveLength(6)
  })
})
