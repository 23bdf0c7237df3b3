/**
 * `lossless outbox` on real outbox tables: rows written by the SQL outbox
 * store (as the relay leaves them), then read and changed by the cli. On
 * PostgreSQL (when it answers) and on an embedded SQLite file.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import type { Outbox } from "@lossless/core"
import { OutboxSchema, Postgres, SqliteClient, SqlOutboxStore } from "@lossless/sql"
import { Harness, Services } from "@lossless/testkit"
import { Duration, Effect, type Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { json, run } from "./support.ts"

/** Rows in every state: e1 sent, e2 failed, e3 parked, e4-e5 pending on orders, e6 pending on payments. */
const seed = (prefix: string) =>
  Effect.gen(function* () {
    const tables = OutboxSchema.withPrefix(prefix)
    yield* OutboxSchema.migrate({ tables })
    const store = yield* SqlOutboxStore.make({ tables, notify: false })
    const orders = Harness.uniqueName("orders")
    const payments = Harness.uniqueName("payments")
    const rows = [...Harness.envelopes(orders, 5), Harness.envelope(payments)]
    for (const row of rows) yield* store.add([row], "pending")
    const claimed = yield* store.claim(3, Duration.minutes(1))
    expect(claimed.map((c) => c.envelope.id)).toEqual(rows.slice(0, 3).map((r) => r.id))
    const [c1, c2, c3] = claimed as [Outbox.Claimed, Outbox.Claimed, Outbox.Claimed]
    yield* store.markSent([{ id: c1.envelope.id, claim: c1.claim }])
    yield* store.markFailed([
      { id: c2.envelope.id, claim: c2.claim, error: "broker timeout", retryAt: Date.now() + 3_600_000 },
      { id: c3.envelope.id, claim: c3.claim, error: "unroutable: no exchange", retryAt: undefined }
    ])
    return { store, ids: rows.map((r) => r.id), orders, payments }
  })

const scenario = (name: string, storeUrl: string, client: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  it.live(`${name}: status, list, retry and park act on the outbox rows`, () =>
    Effect.gen(function* () {
      const prefix = `cli_${Math.random().toString(36).slice(2, 10)}_`
      const { store, ids, orders, payments } = yield* seed(prefix)
      const [e1, e2, e3, e4, e5, e6] = ids as [string, string, string, string, string, string]
      const cli = (...args: Array<string>) => run(["--store", storeUrl, "--table-prefix", prefix, ...args])
      const statusOf = (id: string) =>
        Effect.map(store.list("parked", 100), (parked) =>
          parked.some((r) => r.envelope.id === id) ? "parked" : "other"
        )

      const status = json(yield* cli("--json", "outbox", "status"))
      expect(status.counts).toEqual({ prepared: 0, pending: 3, failed: 1, sent: 1, parked: 1 })
      expect(status.parked).toBe(1)
      expect(status.oldestPendingAgeMs).toBeGreaterThanOrEqual(0)
      const human = yield* cli("outbox", "status")
      expect(human.code).toBe(0)
      expect(human.stdout).toMatch(/pending\s+3/)
      expect(human.stdout).toContain("parked: 1 (oldest")

      const parked = json(yield* cli("--json", "outbox", "list", "--status", "parked"))
      expect(parked.map((r: { id: string }) => r.id)).toEqual([e3])
      expect(parked[0].lastError).toBe("unroutable: no exchange")
      const byTopic = json(yield* cli("--json", "outbox", "list", "--topic", payments))
      expect(byTopic.map((r: { id: string }) => r.id)).toEqual([e6])
      const table = yield* cli("outbox", "list", "--topic", orders, "--limit", "2")
      expect(table.stdout.split("\n")).toHaveLength(3)
      expect(table.stdout).toContain(e1)
      expect(table.stdout).toContain("sent")

      // e4 is pending: retry skips it and says so, with a failing exit code.
      const retry = yield* cli("outbox", "retry", e3, e4)
      expect(retry.code).toBe(1)
      expect(retry.stdout).toContain("retried 1 of 2 outbox rows")
      expect(retry.stdout).toContain(`${e4}: not found or not parked or failed`)
      const due = yield* store.claim(10, Duration.seconds(1))
      expect(due.map((c) => c.envelope.id)).toContain(e3)
      expect(due.map((c) => c.envelope.id)).not.toContain(e2)

      const park = yield* cli("outbox", "park", e5)
      expect(park.code).toBe(0)
      expect(park.stdout).toBe("parked 1 of 1 outbox row")
      expect(yield* statusOf(e5)).toBe("parked")

      const all = json(yield* cli("--json", "outbox", "retry", "--all-parked"))
      expect(all.retried).toEqual([e5])
      expect(yield* statusOf(e5)).toBe("other")
      const after = json(yield* cli("--json", "outbox", "status"))
      expect(after.counts).toEqual({ prepared: 0, pending: 4, failed: 1, sent: 1, parked: 0 })

      const sql = yield* SqlClient.SqlClient
      for (const table of Object.values(OutboxSchema.withPrefix(prefix)))
        yield* sql.unsafe(`DROP TABLE IF EXISTS "${table}"`)
    }).pipe(Effect.provide(client))
  )

const pg = await Services.require("postgres")

describe("lossless outbox (PostgreSQL)", () => {
  if (!pg.available) {
    it.skip(`PostgreSQL unavailable: ${pg.reason}`, () => {})
    return
  }
  const url = Services.url("postgres")
  scenario("postgres", url, Postgres.layer({ url: Redacted.make(url), maxConnections: 2 }))

  it.live("an unreachable database exits 1 naming the host, never the password", () =>
    Effect.gen(function* () {
      const out = yield* run(["--store", "postgres://ops:hunter2@127.0.0.1:1/orders", "outbox", "status"])
      expect(out.code).toBe(1)
      expect(out.stderr).toContain("postgres://ops:***@127.0.0.1:1/orders")
      expect(out.stderr + out.stdout).not.toContain("hunter2")
    })
  )

  it.live("a database without the outbox table says so", () =>
    Effect.gen(function* () {
      const out = yield* run(["--store", url, "--table-prefix", "cli_missing_", "outbox", "status"])
      expect(out.code).toBe(1)
      expect(out.stderr).toContain("has no table cli_missing_outbox")
    })
  )
})

const dir = await mkdtemp(join(tmpdir(), "lossless-cli-"))

describe("lossless outbox (SQLite)", () => {
  const file = join(dir, "outbox.db")
  scenario("sqlite", file, SqliteClient.layer({ filename: file }))

  it.live("a missing SQLite file is named, not created", () =>
    Effect.gen(function* () {
      const out = yield* run(["--store", join(dir, "nope.db"), "outbox", "status"])
      expect(out.code).toBe(1)
      expect(out.stderr).toContain(`--store: no SQLite database at ${join(dir, "nope.db")}`)
      yield* Effect.promise(() => rm(dir, { recursive: true, force: true }))
    })
  )
})
