/**
 * The SQL outbox and inbox on a real PostgreSQL server (tables of their own
 * per case): the store contract every outbox store keeps, the outbox,
 * half-message and inbox scenarios over the memory transport, and what only
 * PostgreSQL has: claims that skip rows another relay is claiming,
 * LISTEN/NOTIFY wake-ups, and inserts of one inbox key waiting for each
 * other.
 */
import { describe, expect, it } from "@effect/vitest"
import { Consumer, type Outbox, OutboxRelay, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Postgres, SqlInbox } from "@lossless/sql"
import { Harness, OutboxStoreSuite, Services } from "@lossless/testkit"
import { ConfigProvider, Deferred, Duration, Effect, Fiber, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { postgres } from "./support/Databases.ts"
import * as Scenarios from "./support/Scenarios.ts"
import { freshStore, storeHandles, storeOn } from "./support/Stores.ts"

const pg = await Services.require("postgres")

const { realSleep, waitUntil } = OutboxStoreSuite
const ids = (rows: ReadonlyArray<Outbox.Claimed>) => rows.map((r) => r.envelope.id)
const lease = Duration.minutes(1)

describe.skipIf(!pg.available)(`PostgreSQL (${pg.url})`, () => {
  // Each further handle has a connection pool of its own, as another process has.
  OutboxStoreSuite.run({ name: "postgres", make: freshStore(postgres), handles: (n) => storeHandles(postgres, n) })
  Scenarios.run(postgres)

  describe("PostgreSQL only", () => {
    it.effect("Postgres.layerConfig connects with LOSSLESS_POSTGRES_URL and fails without it", () =>
      Effect.gen(function* () {
        const env = { LOSSLESS_POSTGRES_URL: Services.url("postgres"), LOSSLESS_POSTGRES_MAX_CONNECTIONS: "2" }
        const fromEnv = (vars: Record<string, string>) =>
          Postgres.layerConfig().pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: vars }))))
        const rows = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1 AS one`).pipe(
          Effect.provide(fromEnv(env))
        )
        expect(rows).toEqual([{ one: 1 }])
        const error = yield* Effect.flip(Effect.asVoid(SqlClient.SqlClient).pipe(Effect.provide(fromEnv({}))))
        expect(error._tag).toBe("ConfigError")
      })
    )

    it.effect("a claim skips rows another relay is claiming and leaves the later rows of their keys alone", () =>
      Effect.gen(function* () {
        const env = yield* postgres.env
        const a = yield* storeOn(env)
        const b = yield* storeOn(env, yield* env.connect)
        const [k1, k2, k3] = [1, 2, 3].map((i) => Harness.envelope("orders", { key: "k", payload: `k${i}` }))
        const x = Harness.envelope("orders", { key: "x" })
        const free = Harness.envelope("orders")
        yield* a.add([k1!, k2!, k3!, x, free], "pending")
        // Relay A's claim of k1 and k2, held open: its row locks stay, its update is not visible yet.
        const holding = yield* Deferred.make<ReadonlyArray<Outbox.Claimed>>()
        const release = yield* Deferred.make<void>()
        const relayA = yield* env.sql
          .withTransaction(
            Effect.gen(function* () {
              yield* Deferred.succeed(holding, yield* a.claim(2, lease))
              yield* Deferred.await(release)
            })
          )
          .pipe(Effect.forkChild)
        expect(ids(yield* Deferred.await(holding))).toEqual([k1!.id, k2!.id])
        // B's snapshot shows k1 and k2 free, but it must neither wait for them nor take k3 past them.
        expect(ids(yield* b.claim(10, lease))).toEqual([x.id, free.id])
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(relayA)
        expect(yield* b.claim(10, lease)).toEqual([])
      })
    )

    it.effect("a claim takes the oldest rows through the index whatever the statistics say", () =>
      Effect.gen(function* () {
        const env = yield* postgres.env
        const store = yield* storeOn(env)
        // Statistics of an empty table, then a backlog: told the limit, PostgreSQL would sort every unsent row.
        yield* env.sql.unsafe(`ANALYZE "${env.tables.outbox}"`)
        const envelopes = Array.from({ length: 2_000 }, () => Harness.envelope("orders"))
        yield* store.add(envelopes, "pending")
        for (let i = 0; i < 6; i++) {
          expect(ids(yield* store.claim(100, lease))).toEqual(envelopes.slice(i * 100, (i + 1) * 100).map((e) => e.id))
        }
        // The same statement, explained: an ordered scan of the unsent rows' index, no sort.
        const plan = yield* env.sql<{ readonly "QUERY PLAN": string }>`
          EXPLAIN SELECT id FROM ${env.sql(env.tables.outbox)}
          WHERE status IN ('pending', 'failed') ORDER BY seq LIMIT (SELECT ${100}::int)`
        expect(plan.map((row) => row["QUERY PLAN"]).join("\n")).toContain(
          `Index Scan using ${env.tables.outbox}_unsent on`
        )
      })
    )

    it.live("a relay with an hourly sweep publishes promptly after another process's committed insert", () =>
      Effect.gen(function* () {
        const Orders = Topic.make("orders", Schema.Struct({ id: Schema.String }))
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        const env = yield* postgres.env
        const relayStore = yield* storeOn(env)
        // The producer: another client, as another process has.
        const producer = yield* env.connect
        const producerStore = yield* storeOn(env, producer)
        const handled: Array<{ id: string; at: number }> = []
        yield* Consumer.start({
          topic: Orders,
          group: "billing",
          handler: (m) => Effect.sync(() => handled.push({ id: m.payload.id, at: Date.now() }))
        })
        yield* Effect.forkScoped(OutboxRelay.run({ store: relayStore, sweepInterval: "1 hour" }))
        // Let the relay start listening (its first drain follows the LISTEN).
        yield* realSleep(300)
        const send = (id: string, commit: boolean) =>
          producer
            .withTransaction(
              Effect.andThen(Publisher.send(Orders, { id }), commit ? Effect.void : Effect.fail("rolled back"))
            )
            .pipe(Effect.provide(Publisher.layerOutbox(producerStore)), Effect.ignore)
        yield* send("rolled-back", false)
        const latencies: Array<number> = []
        for (const id of ["o-1", "o-2", "o-3"]) {
          const start = Date.now()
          yield* send(id, true)
          yield* waitUntil(`${id} delivered`, () => handled.some((h) => h.id === id), 5_000)
          latencies.push(handled.find((h) => h.id === id)!.at - start)
        }
        expect(handled.map((h) => h.id)).toEqual(["o-1", "o-2", "o-3"])
        // Far below the sweep: each was woken by its NOTIFY.
        for (const latency of latencies) expect(latency).toBeLessThan(1_000)
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.live("after its connection drops, a relay listens again and is woken as before", () =>
      Effect.gen(function* () {
        const Orders = Topic.make("orders", Schema.Struct({ id: Schema.String }))
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        const env = yield* postgres.env
        const { sql: relaySql, outage } = yield* env.connectFlaky
        const relayStore = yield* storeOn(env, relaySql)
        const producerStore = yield* storeOn(env)
        const handled: Array<string> = []
        yield* Consumer.start({
          topic: Orders,
          group: "billing",
          handler: (m) => Effect.sync(() => handled.push(m.payload.id))
        })
        yield* Effect.forkScoped(OutboxRelay.run({ store: relayStore, sweepInterval: "1 hour" }))
        yield* realSleep(300)
        // The LISTEN connection is cut and the database unreachable for a while.
        yield* outage.down
        yield* realSleep(300)
        yield* outage.up
        yield* realSleep(800)
        yield* Publisher.send(Orders, { id: "after-outage" }).pipe(Effect.provide(Publisher.layerOutbox(producerStore)))
        yield* waitUntil("the message after the outage", () => handled.includes("after-outage"), 3_000)
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("a second insert of an inbox key waits for the first transaction, then finds the key", () =>
      Effect.gen(function* () {
        const env = yield* postgres.env
        const other = yield* env.connect
        const inboxOf = (sql: SqlClient.SqlClient) =>
          SqlInbox.make({ tables: env.tables }).pipe(Effect.provideService(SqlClient.SqlClient, sql))
        const [first, second] = [yield* inboxOf(env.sql), yield* inboxOf(other)]
        const waitingOnLock = Effect.map(
          env.sql<{ readonly n: number | bigint }>`
            SELECT COUNT(*) AS n FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND query LIKE ${`%INSERT INTO "${env.tables.inbox}"%`}`,
          (rows) => Number(rows[0]?.n ?? 0) > 0
        ).pipe(Effect.orDie)

        const decide = (outcome: "commit" | "fail") =>
          Effect.gen(function* () {
            const started = yield* Deferred.make<void>()
            const release = yield* Deferred.make<void>()
            const key = `g:${outcome}`
            const firstCall = yield* first
              .once(
                key,
                Effect.andThen(Deferred.succeed(started, undefined), Deferred.await(release)).pipe(
                  Effect.andThen(outcome === "fail" ? Effect.fail("handler failed") : Effect.void)
                )
              )
              .pipe(Effect.result, Effect.forkChild)
            yield* Deferred.await(started)
            let secondRuns = 0
            const secondCall = yield* second
              .once(
                key,
                Effect.sync(() => secondRuns++)
              )
              .pipe(Effect.forkChild)
            // The second INSERT blocks on the first transaction's uncommitted key.
            yield* waitUntil("the second insert waiting on the first", waitingOnLock)
            expect(secondRuns).toBe(0)
            yield* Deferred.succeed(release, undefined)
            const firstResult = yield* Fiber.join(firstCall)
            return { firstResult, second: yield* Fiber.join(secondCall), secondRuns }
          })

        // The first commits: the second finds the key and does not run.
        const committed = yield* decide("commit")
        expect(committed.firstResult).toMatchObject({ _tag: "Success", success: true })
        expect([committed.second, committed.secondRuns]).toEqual([false, 0])
        // The first fails and rolls back: the key is free again and the second runs.
        const failed = yield* decide("fail")
        expect(failed.firstResult).toMatchObject({ _tag: "Failure", failure: "handler failed" })
        expect([failed.second, failed.secondRuns]).toEqual([true, 1])
      })
    )
  })
})
