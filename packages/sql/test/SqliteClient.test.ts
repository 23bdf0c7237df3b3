/**
 * The SQLite client against real `node:sqlite` databases, in memory and in
 * temporary files: statements, parameters and results, transactions and
 * savepoints, error reasons, durability settings, persistence across
 * reopening, serialized concurrent use, streams and migrations.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { SqliteClient, SqliteMigrator } from "@lossless/sql"
import {
  Array as Arr,
  ConfigProvider,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Schema,
  Scope,
  Stream
} from "effect"
import { Reactivity } from "effect/reactivity"
import { SqlClient, type SqlError, SqlSchema } from "effect/sql"

/** A directory under the OS temp dir, removed with the test's scope. */
const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "lossless-sql-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

/** A client in the test's scope. */
const open = (options: SqliteClient.SqliteClientConfig) =>
  SqliteClient.make(options).pipe(Effect.provide(Reactivity.layer))

const memory = open({ filename: ":memory:" })

const outboxTable = (sql: SqlClient.SqlClient) =>
  sql`CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    key TEXT UNIQUE,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0)
  )`

interface OutboxRow {
  readonly id: string
  readonly topic: string
  readonly key: string | null
  readonly payload: Uint8Array
  readonly attempts: number
}

/** Rows `{ n: from }` .. `{ n: from + length - 1 }`. */
const numbers = (length: number, from = 0): Arr.NonEmptyReadonlyArray<{ n: number }> => {
  const rows = Arr.makeBy(length, (i) => ({ n: from + i }))
  if (!Arr.isArrayNonEmpty(rows)) throw new Error("no rows")
  return rows
}

const bytes = (text: string) => new TextEncoder().encode(text)

const row = (id: string, key: string | null = null) => ({ id, topic: "orders", key, payload: bytes(id), attempts: 0 })

const count = (sql: SqlClient.SqlClient) =>
  Effect.map(sql<{ n: number }>`SELECT count(*) AS n FROM outbox`, (rows) => rows[0]!.n)

/** The reason of the `SqlError` the effect fails with. */
const reasonOf = <A, R>(effect: Effect.Effect<A, SqlError.SqlError, R>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason)

describe("SqliteClient", () => {
  describe("statements", () => {
    it.effect("inserts with sql.insert, selects with sql.in, updates and deletes", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        yield* outboxTable(sql)
        yield* sql`INSERT INTO outbox ${sql.insert([row("m1", "a"), row("m2", "b"), row("m3")])}`

        const some = yield* sql<OutboxRow>`SELECT * FROM outbox WHERE id IN ${sql.in(["m1", "m3"])} ORDER BY id`
        expect(some.map((r) => [r.id, r.key])).toEqual([
          ["m1", "a"],
          ["m3", null]
        ])
        expect(some[0]!.payload).toEqual(bytes("m1"))

        yield* sql`UPDATE outbox SET ${sql.update({ attempts: 2 })} WHERE id = ${"m2"}`
        const [m2] = yield* sql<{ attempts: number }>`SELECT attempts FROM outbox WHERE id = ${"m2"}`
        expect(m2?.attempts).toBe(2)

        yield* sql`DELETE FROM outbox WHERE ${sql.in("id", ["m1", "m2"])}`
        expect(yield* count(sql)).toBe(1)
        // An empty list matches nothing instead of being a syntax error.
        expect(yield* sql`SELECT * FROM outbox WHERE ${sql.in("id", [])}`).toEqual([])
      })
    )

    it.effect("returns RETURNING rows from sql.insert", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        yield* sql`CREATE TABLE t (n INTEGER PRIMARY KEY, label TEXT)`
        const rows = yield* sql<{
          n: number
        }>`INSERT INTO t ${sql.insert([{ label: "a" }, { label: "b" }]).returning("n")}`
        expect(rows.map((r) => r.n)).toEqual([1, 2])
      })
    )

    it.effect("decodes rows with SqlSchema", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        yield* outboxTable(sql)
        yield* sql`INSERT INTO outbox ${sql.insert([row("m1"), row("m2")])}`
        const Outbox = Schema.Struct({ id: Schema.String, payload: Schema.Uint8Array, attempts: Schema.Number })
        const byTopic = SqlSchema.findAll({
          Request: Schema.String,
          Result: Outbox,
          execute: (topic) => sql`SELECT id, payload, attempts FROM outbox WHERE topic = ${topic} ORDER BY id`
        })
        const rows = yield* byTopic("orders")
        expect(rows.map((r) => [r.id, new TextDecoder().decode(r.payload)])).toEqual([
          ["m1", "m1"],
          ["m2", "m2"]
        ])
      })
    )

    it.effect("returns values as arrays and raw results as SQLite reports them", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        yield* sql`CREATE TABLE t (n INTEGER PRIMARY KEY, label TEXT)`
        const raw = yield* sql`INSERT INTO t (label) VALUES (${"a"}), (${"b"})`.raw
        expect(raw).toEqual({ changes: 2, lastInsertRowid: 2 })
        expect(yield* sql`SELECT n, label FROM t ORDER BY n`.values).toEqual([
          [1, "a"],
          [2, "b"]
        ])
        expect(yield* sql`SELECT label FROM t WHERE n = ${2}`.unprepared).toEqual([{ label: "b" }])
        expect(yield* sql`SELECT n FROM t ORDER BY n`.valuesUnprepared).toEqual([[1], [2]])
      })
    )

    it.effect("renames columns both ways with transformResultNames and transformQueryNames", () =>
      Effect.gen(function* () {
        const sql = yield* open({
          filename: ":memory:",
          transformQueryNames: (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
          transformResultNames: (name) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
        })
        yield* sql`CREATE TABLE t (message_id TEXT, next_attempt_at TEXT)`
        yield* sql`INSERT INTO t ${sql.insert({ messageId: "m1", nextAttemptAt: "later" })}`
        expect(yield* sql`SELECT * FROM t`).toEqual([{ messageId: "m1", nextAttemptAt: "later" }])
      })
    )
  })

  describe("parameters", () => {
    it.effect("binds booleans as 0/1, Dates as ISO text, undefined as NULL, bigints and bytes", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        const at = new Date("2024-05-06T07:08:09.010Z")
        const [r] = yield* sql<Record<string, unknown>>`SELECT
          ${true} AS yes, ${false} AS no, ${at} AS at, typeof(${at}) AS atType,
          ${undefined} AS absent, ${9007199254740993n} - 1 = 9007199254740992 AS bigOk,
          typeof(${new Uint8Array([0, 255])}) AS blobType, ${2.5} AS real`
        expect(r).toEqual({
          yes: 1,
          no: 0,
          at: "2024-05-06T07:08:09.010Z",
          atType: "text",
          absent: null,
          bigOk: 1,
          blobType: "blob",
          real: 2.5
        })
      })
    )

    it.effect("reads INTEGERs as bigint under SqlClient.SafeIntegers", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        const big = sql<{ n: unknown }>`SELECT 9223372036854775807 AS n`
        expect(yield* big.pipe(Effect.provideService(SqlClient.SafeIntegers, true))).toEqual([
          { n: 9223372036854775807n }
        ])
        // Without it the value does not fit a number: a typed error that says what to do.
        const reason = yield* reasonOf(big)
        expect(reason._tag).toBe("UnknownError")
        expect(reason.message).toContain("SafeIntegers")
        // The cached statement switches back for the next caller.
        expect(yield* sql`SELECT 1 AS n`).toEqual([{ n: 1 }])
      })
    )

    it.effect("refuses values it cannot bind with a typed error", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        const reason = yield* reasonOf(sql`SELECT ${{ a: 1 } as unknown as string} AS v`)
        expect(reason._tag).toBe("UnknownError")
        expect(reason.operation).toBe("bind")
        expect(reason.message).toContain("parameter 1 (object)")
        expect((yield* reasonOf(sql`SELECT ${new Date(Number.NaN)}`)).message).toContain("invalid Date")
      })
    )

    it.effect("round-trips every byte value of a BLOB", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        yield* outboxTable(sql)
        const payload = Uint8Array.from(Arr.makeBy(4096, (i) => i % 256))
        yield* sql`INSERT INTO outbox ${sql.insert({ id: "m1", topic: "orders", payload })}`
        const [stored] = yield* sql<{ payload: Uint8Array; size: number }>`
          SELECT payload, length(payload) AS size FROM outbox WHERE id = ${"m1"}`
        expect(stored?.payload).toBeInstanceOf(Uint8Array)
        expect(stored?.size).toBe(4096)
        expect(Buffer.from(stored!.payload).equals(Buffer.from(payload))).toBe(true)
      })
    )
  })

  describe("transactions", () => {
    it.effect("commits a transaction that succeeds and rolls back one that fails", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        yield* outboxTable(sql)
        yield* sql.withTransaction(sql`INSERT INTO outbox ${sql.insert(row("kept"))}`)
        const failed = yield* sql
          .withTransaction(
            Effect.andThen(sql`INSERT INTO outbox ${sql.insert([row("lost1"), row("lost2")])}`, Effect.fail("boom"))
          )
          .pipe(Effect.flip)
        expect(failed).toBe("boom")
        expect(yield* sql<{ id: string }>`SELECT id FROM outbox`).toEqual([{ id: "kept" }])
      })
    )

    it.effect("rolls back a nested transaction to its savepoint and keeps the outer one", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        yield* outboxTable(sql)
        yield* sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`INSERT INTO outbox ${sql.insert(row("outer"))}`
            yield* sql
              .withTransaction(Effect.andThen(sql`INSERT INTO outbox ${sql.insert(row("inner"))}`, Effect.fail("no")))
              .pipe(Effect.ignore)
            yield* sql.withTransaction(sql`INSERT INTO outbox ${sql.insert(row("inner-ok"))}`)
          })
        )
        expect((yield* sql<{ id: string }>`SELECT id FROM outbox ORDER BY id`).map((r) => r.id)).toEqual([
          "inner-ok",
          "outer"
        ])

        // An outer failure undoes the committed savepoint too.
        yield* sql
          .withTransaction(
            Effect.andThen(sql.withTransaction(sql`INSERT INTO outbox ${sql.insert(row("nested"))}`), Effect.fail("x"))
          )
          .pipe(Effect.ignore)
        expect(yield* count(sql)).toBe(2)
        // Nothing is left open: a new transaction starts at the top level.
        yield* sql.withTransaction(sql`INSERT INTO outbox ${sql.insert(row("after"))}`)
        expect(yield* count(sql)).toBe(3)
      })
    )

    it.effect("serializes concurrent transactions so no read-modify-write is lost", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        yield* sql`CREATE TABLE counter (n INTEGER NOT NULL)`
        yield* sql`INSERT INTO counter VALUES (0)`
        const increment = sql.withTransaction(
          Effect.gen(function* () {
            const [{ n }] = (yield* sql<{ n: number }>`SELECT n FROM counter`) as [{ n: number }]
            yield* Effect.yieldNow // let other fibers run between the read and the write
            yield* sql`UPDATE counter SET n = ${n + 1}`
          })
        )
        yield* Effect.all(Arr.replicate(increment, 100), { concurrency: "unbounded", discard: true })
        // Plain statements from many fibers interleave with them safely too.
        yield* Effect.all(Arr.replicate(sql`UPDATE counter SET n = n + 1`, 100), {
          concurrency: "unbounded",
          discard: true
        })
        expect(yield* sql`SELECT n FROM counter`).toEqual([{ n: 200 }])
      })
    )

    it.effect("runs afterCommit callbacks only once the outer transaction commits", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        const events: Array<string> = []
        yield* sql.withTransaction(
          Effect.gen(function* () {
            yield* sql.afterCommit(Effect.sync(() => events.push("committed")))
            events.push("in transaction")
          })
        )
        yield* sql
          .withTransaction(Effect.andThen(sql.afterCommit(Effect.sync(() => events.push("never"))), Effect.fail(1)))
          .pipe(Effect.ignore)
        expect(events).toEqual(["in transaction", "committed"])
      })
    )
  })

  describe("errors", () => {
    it.effect("maps a duplicate key to the UniqueViolation reason", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        yield* outboxTable(sql)
        yield* sql`INSERT INTO outbox ${sql.insert(row("m1", "a"))}`
        const duplicateKey = yield* sql`INSERT INTO outbox ${sql.insert(row("m2", "a"))}`.pipe(
          Effect.as("inserted"),
          Effect.catchReason("SqlError", "UniqueViolation", (reason) => Effect.succeed(reason.constraint))
        )
        expect(duplicateKey).toBe("outbox.key")
        // A duplicate primary key too, as PostgreSQL reports it.
        const duplicateId = yield* reasonOf(sql`INSERT INTO outbox ${sql.insert(row("m1"))}`)
        expect(duplicateId._tag).toBe("UniqueViolation")
        expect(duplicateId.message).toBe("UNIQUE constraint failed: outbox.id")
        expect(duplicateId.isRetryable).toBe(false)
        // Other constraints are ConstraintError.
        const check = yield* reasonOf(sql`INSERT INTO outbox ${sql.insert({ ...row("m3"), attempts: -1 })}`)
        expect(check._tag).toBe("ConstraintError")
      })
    )

    it.effect("fails a bad statement with a typed SqlError, not a defect", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        const exit = yield* Effect.exit(sql`SELEC 1`)
        expect(Exit.isFailure(exit) && exit.cause.reasons.every((r) => r._tag === "Fail")).toBe(true)
        const syntax = yield* reasonOf(sql`SELEC 1`)
        expect(syntax._tag).toBe("SqlSyntaxError")
        expect(syntax.operation).toBe("prepare")
        expect(syntax.message).toContain('near "SELEC": syntax error')
        expect((yield* reasonOf(sql`SELECT * FROM missing`))._tag).toBe("SqlSyntaxError")
        // A failed statement leaves the client usable.
        expect(yield* sql`SELECT 1 AS one`).toEqual([{ one: 1 }])
      })
    )

    it.effect("refuses a second statement instead of silently dropping it", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        yield* sql`CREATE TABLE t (n INTEGER)`
        const reason = yield* reasonOf(sql.unsafe("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)"))
        expect(reason._tag).toBe("SqlSyntaxError")
        expect(reason.message).toContain("more than one statement")
        // Trailing semicolons and comments are fine.
        yield* sql.unsafe("INSERT INTO t VALUES (3); -- done\n")
        expect(yield* sql`SELECT n FROM t`).toEqual([{ n: 3 }])
      })
    )

    it.effect("fails with a ConnectionError reason when the file cannot be opened", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const reason = yield* reasonOf(open({ filename: join(dir, "missing", "dir", "db.sqlite") }))
        expect(reason._tag).toBe("ConnectionError")
        expect(reason.operation).toBe("open")
      })
    )
  })

  describe("files", () => {
    it.effect("opens file databases with WAL, synchronous FULL, foreign keys and the busy timeout", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const sql = yield* open({ filename: join(dir, "outbox.db") })
        expect(sql.settings).toEqual({
          location: join(dir, "outbox.db"),
          readonly: false,
          journalMode: "wal",
          synchronous: "FULL",
          foreignKeys: true,
          busyTimeout: Duration.seconds(1)
        })
        expect(yield* sql`PRAGMA busy_timeout`).toEqual([{ timeout: 1000 }])
        expect(sql.driver).toBe("node-sqlite")
        const other = yield* open({ filename: join(dir, "other.db"), journalMode: "DELETE", synchronous: "NORMAL" })
        expect([other.settings.journalMode, other.settings.synchronous]).toEqual(["delete", "NORMAL"])
        // In memory there is no journal file to put in WAL mode.
        expect((yield* memory).settings.journalMode).toBe("memory")
      })
    )

    it.effect("keeps committed data across closing and reopening the file", () =>
      Effect.gen(function* () {
        const filename = join(yield* tempDir, "outbox.db")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const sql = yield* open({ filename })
            yield* outboxTable(sql)
            yield* sql.withTransaction(sql`INSERT INTO outbox ${sql.insert([row("m1"), row("m2")])}`)
            yield* sql`BEGIN` // left open at close: SQLite rolls it back
            yield* sql`INSERT INTO outbox ${sql.insert(row("uncommitted"))}`
          })
        )
        const sql = yield* open({ filename })
        expect((yield* sql<{ id: string }>`SELECT id FROM outbox ORDER BY id`).map((r) => r.id)).toEqual(["m1", "m2"])
      })
    )

    it.effect("waits busyTimeout for another connection's write lock, then fails with a retryable reason", () =>
      Effect.gen(function* () {
        const filename = join(yield* tempDir, "shared.db")
        const first = yield* open({ filename })
        const second = yield* open({ filename, busyTimeout: Duration.millis(50) })
        yield* outboxTable(first)
        const inserted = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = yield* first
          .withTransaction(
            Effect.andThen(first`INSERT INTO outbox ${first.insert(row("m1"))}`, () =>
              Effect.andThen(Deferred.succeed(inserted, undefined), Deferred.await(release))
            )
          )
          .pipe(Effect.forkChild)
        yield* Deferred.await(inserted)

        // WAL: the other connection reads the last committed state meanwhile.
        expect(yield* count(second)).toBe(0)
        const started = Date.now()
        const reason = yield* reasonOf(second.withTransaction(second`INSERT INTO outbox ${second.insert(row("m2"))}`))
        expect(Date.now() - started).toBeGreaterThanOrEqual(45)
        expect(reason._tag).toBe("LockTimeoutError")
        expect(reason.isRetryable).toBe(true)

        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        yield* second.withTransaction(second`INSERT INTO outbox ${second.insert(row("m2"))}`)
        expect(yield* count(first)).toBe(2)
      })
    )

    it.effect("closes the database with its scope", () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const sql = yield* open({ filename: ":memory:" }).pipe(Scope.provide(scope))
        yield* Scope.close(scope, Exit.void)
        const reason = yield* reasonOf(sql`SELECT 1`)
        expect(reason._tag).toBe("ConnectionError")
        expect(reason.message).toBe("database is not open")
      })
    )

    it.effect("refuses writes on a read-only database", () =>
      Effect.gen(function* () {
        const filename = join(yield* tempDir, "outbox.db")
        yield* Effect.scoped(Effect.flatMap(open({ filename }), outboxTable))
        const sql = yield* open({ filename, readonly: true })
        expect(yield* count(sql)).toBe(0)
        const reason = yield* reasonOf(sql`INSERT INTO outbox ${sql.insert(row("m1"))}`)
        expect(reason._tag).toBe("AuthorizationError")
        expect(reason.message).toBe("attempt to write a readonly database")
      })
    )
  })

  describe("streams", () => {
    it.effect("streams rows in chunks, running other statements of the transaction meanwhile", () =>
      Effect.gen(function* () {
        const sql = yield* open({ filename: ":memory:", streamChunkSize: 7 })
        yield* sql`CREATE TABLE t (n INTEGER PRIMARY KEY)`
        yield* sql`INSERT INTO t ${sql.insert(numbers(100, 1))}`
        const all = yield* Stream.runCollect(sql<{ n: number }>`SELECT n FROM t ORDER BY n`.stream)
        expect(all.map((r) => r.n)).toEqual(Arr.makeBy(100, (i) => i + 1))

        // Inside a transaction the same connection serves the stream and the
        // statements issued while consuming it, including the same SQL.
        const sums = yield* sql.withTransaction(
          sql<{ n: number }>`SELECT n FROM t ORDER BY n`.stream.pipe(
            Stream.take(3),
            Stream.mapEffect((r) =>
              Effect.map(sql<{ n: number }>`SELECT n FROM t ORDER BY n`, (rows) => r.n + rows.length)
            ),
            Stream.runCollect
          )
        )
        expect(sums).toEqual([101, 102, 103])
      })
    )

    it.effect("closes the cursor of a stream that stops early", () =>
      Effect.gen(function* () {
        const sql = yield* open({ filename: join(yield* tempDir, "stream.db"), streamChunkSize: 2 })
        yield* sql`CREATE TABLE t (n INTEGER PRIMARY KEY)`
        yield* sql`INSERT INTO t ${sql.insert(numbers(10))}`
        const first = yield* Stream.runCollect(Stream.take(sql<{ n: number }>`SELECT n FROM t`.stream, 1))
        expect(first).toEqual([{ n: 0 }])
        // An open cursor would hold a read snapshot and make the checkpoint busy.
        expect(yield* sql`PRAGMA wal_checkpoint(TRUNCATE)`).toEqual([{ busy: 0, log: 0, checkpointed: 0 }])
      })
    )

    it.effect("fails a stream of a bad statement with a SqlError", () =>
      Effect.gen(function* () {
        const sql = yield* memory
        const error = yield* Effect.flip(Stream.runCollect(sql`SELECT * FROM missing`.stream))
        expect(error.reason._tag).toBe("SqlSyntaxError")
      })
    )
  })

  describe("configuration", () => {
    it.effect("builds the layer from environment variables", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const env = {
          LOSSLESS_SQLITE_FILENAME: join(dir, "env.db"),
          LOSSLESS_SQLITE_BUSY_TIMEOUT: "250 millis",
          LOSSLESS_SQLITE_SYNCHRONOUS: "EXTRA"
        }
        const settings = yield* Effect.map(SqliteClient.SqliteClient, (c) => c.settings).pipe(
          Effect.provide(
            SqliteClient.layerConfig().pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
          )
        )
        expect([settings.location, settings.synchronous, settings.busyTimeout]).toEqual([
          join(dir, "env.db"),
          "EXTRA",
          Duration.millis(250)
        ])
      })
    )

    it.effect("fails the layer without LOSSLESS_SQLITE_FILENAME", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          Effect.asVoid(SqlClient.SqlClient).pipe(
            Effect.provide(
              SqliteClient.layerConfig().pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: {} }))))
            )
          )
        )
        expect(error._tag).toBe("ConfigError")
      })
    )

    it.effect("refuses an unknown synchronous level", () =>
      Effect.gen(function* () {
        const reason = yield* reasonOf(
          open({ filename: ":memory:", synchronous: "SOMETIMES" as SqliteClient.Synchronous })
        )
        expect(reason.message).toContain('invalid synchronous "SOMETIMES"')
      })
    )
  })
})

describe("SqliteMigrator", () => {
  const migration = (f: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, SqlError.SqlError>) =>
    Effect.asVoid(Effect.flatMap(SqlClient.SqlClient, f))
  const createOutbox = migration(outboxTable)
  const addIndex = migration((sql) => sql`CREATE INDEX outbox_topic ON outbox (topic)`)
  const addColumn = migration((sql) => sql`ALTER TABLE outbox ADD COLUMN sent_at TEXT`)

  it.effect("applies pending migrations once and records them", () =>
    Effect.gen(function* () {
      const sql = yield* open({ filename: join(yield* tempDir, "migrated.db") })
      const migrate = (migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>) =>
        SqliteMigrator.run({ loader: SqliteMigrator.fromRecord(migrations) }).pipe(
          Effect.provideService(SqlClient.SqlClient, sql)
        )

      expect(yield* migrate({ "0001_create_outbox": createOutbox, "0002_topic_index": addIndex })).toEqual([
        [1, "create_outbox"],
        [2, "topic_index"]
      ])
      // Run again: nothing to do (a second CREATE TABLE would fail).
      expect(yield* migrate({ "0001_create_outbox": createOutbox, "0002_topic_index": addIndex })).toEqual([])
      // A new migration runs alone.
      expect(
        yield* migrate({ "0001_create_outbox": createOutbox, "0002_topic_index": addIndex, "0003_sent_at": addColumn })
      ).toEqual([[3, "sent_at"]])

      const recorded = yield* sql<{ migration_id: number; name: string }>`
        SELECT migration_id, name FROM effect_sql_migrations ORDER BY migration_id`
      expect(recorded).toEqual([
        { migration_id: 1, name: "create_outbox" },
        { migration_id: 2, name: "topic_index" },
        { migration_id: 3, name: "sent_at" }
      ])
      yield* sql`INSERT INTO outbox ${sql.insert({ ...row("m1"), sent_at: "now" })}`
    })
  )

  it.effect("rolls back a failed migration with its record", () =>
    Effect.gen(function* () {
      const sql = yield* memory
      const broken = migration((s) => s`CREATE TABLE broken (`)
      const error = yield* Effect.flip(
        SqliteMigrator.run({
          loader: SqliteMigrator.fromRecord({ "0001_create_outbox": createOutbox, "0002_broken": broken })
        }).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      )
      expect(error._tag).toBe("MigrationError")
      expect(error.message).toContain('Migration "2_broken" failed')
      expect(yield* sql`SELECT name FROM sqlite_master WHERE name = 'outbox'`).toEqual([])
      expect(yield* sql`SELECT * FROM effect_sql_migrations`).toEqual([])
    })
  )

  it.effect("runs as a layer and dumps the schema when asked", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const Live = SqliteMigrator.layer({
        loader: SqliteMigrator.fromRecord({ "0001_create_outbox": createOutbox, "0002_topic_index": addIndex }),
        schemaDirectory: join(dir, "schema")
      }).pipe(Layer.provideMerge(SqliteClient.layer({ filename: join(dir, "app.db") })))

      const tables = yield* Effect.provide(
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
        ),
        Live
      )
      expect(tables.map((t) => t.name)).toEqual(["effect_sql_migrations", "outbox"])

      const dump = yield* Effect.promise(() => readFile(join(dir, "schema", "_schema.sql"), "utf8"))
      expect(dump).toContain("CREATE TABLE outbox (")
      expect(dump).toContain("CREATE INDEX outbox_topic ON outbox (topic);")
      expect(dump).toContain(`INSERT INTO "effect_sql_migrations" (migration_id, name) VALUES (2, 'topic_index');`)
    })
  )
})
