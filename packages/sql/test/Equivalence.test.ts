/**
 * The SQL stores against core's memory store, operation by operation: seeded
 * random sequences of adds, claims, marks, commits, rollbacks, check-backs,
 * retries and clock moves run on both, and every answer and every row must
 * match. The memory store is the reference for the semantics.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Envelope, Outbox } from "@lossless/core"
import { Harness, Services } from "@lossless/testkit"
import { Clock, Duration, Effect } from "effect"
import { TestClock } from "effect/testing"
import { type Database, postgres, sqlite } from "./support/Databases.ts"
import { freshStore } from "./support/Stores.ts"

const pg = await Services.require("postgres")

/** A small deterministic generator (mulberry32), so a failing sequence can be replayed from its seed. */
const random = (seed: number) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const pick = <A>(items: ReadonlyArray<A>): A => items[int(items.length)] as A
  return { next, int, pick }
}

const statuses: ReadonlyArray<Outbox.Status> = ["prepared", "pending", "failed", "sent", "parked"]

const snapshot = (store: Outbox.OutboxStore) =>
  Effect.gen(function* () {
    const rows = yield* Effect.forEach(statuses, (status) => store.list(status, 10_000))
    return {
      stats: yield* store.stats,
      rows: rows.flat().map((r) => ({
        id: r.envelope.id,
        status: r.status,
        attempts: r.attempts,
        lastError: r.lastError,
        nextAttemptAt: r.nextAttemptAt,
        createdAt: r.createdAt
      }))
    }
  })

/** Runs `steps` random operations on the memory store and `db`'s store, comparing after each. */
const compare = (db: Database, seed: number, steps: number) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(1_700_000_000_000)
    const memory = yield* Outbox.memoryStore
    const sql = yield* freshStore(db)
    const rng = random(seed)
    const ids: Array<string> = []
    // Claim events: the rows each claim returned, each with its claim token in either store.
    const claims: Array<ReadonlyArray<{ readonly id: string; readonly tokens: readonly [string, string] }>> = []
    const undecided: Array<{ readonly id: string; readonly tokens: readonly [string, string] }> = []
    const log: Array<string> = []
    let claimedRows = 0

    const both = <A>(op: (store: Outbox.OutboxStore, index: 0 | 1) => Effect.Effect<A, unknown>) =>
      Effect.all([op(memory, 0), op(sql, 1)])

    const claimed = (rows: ReadonlyArray<Outbox.Claimed>) => rows.map((r) => `${r.envelope.id}@${r.attempts}`)

    for (let step = 0; step < steps; step++) {
      const now = yield* Clock.currentTimeMillis
      const choice = rng.int(100)
      if (choice < 20) {
        const batch: Array<Envelope.Envelope> = Array.from({ length: 1 + rng.int(4) }, () => {
          const key = rng.pick(["k0", "k1", "k2", undefined])
          return Harness.envelope("orders", key === undefined ? {} : { key })
        })
        // Now and then an id stored before.
        if (ids.length > 0 && rng.int(5) === 0) batch.push({ ...Harness.envelope("orders"), id: rng.pick(ids) })
        const status = rng.int(4) === 0 ? "prepared" : "pending"
        log.push(`add ${batch.length} ${status}`)
        yield* both((s) => s.add(batch, status))
        for (const e of batch) if (!ids.includes(e.id)) ids.push(e.id)
      } else if (choice < 40) {
        const limit = 1 + rng.int(5)
        const lease = Duration.millis(rng.pick([500, 2_000, 10_000]))
        log.push(`claim ${limit}`)
        const [a, b] = yield* both((s) => s.claim(limit, lease))
        expect(claimed(b), `step ${step}: ${log.slice(-5).join(" | ")}`).toEqual(claimed(a))
        claimedRows += a.length
        if (a.length > 0) claims.push(a.map((r, j) => ({ id: r.envelope.id, tokens: [r.claim, b[j]!.claim] as const })))
      } else if (choice < 52 && claims.length > 0) {
        const chosen = rng.pick(claims).filter(() => rng.int(2) === 0)
        log.push(`markSent ${chosen.length}`)
        yield* both((s, i) => s.markSent(chosen.map(({ id, tokens }) => ({ id, claim: tokens[i] }))))
      } else if (choice < 62 && claims.length > 0) {
        const chosen = rng.pick(claims).filter(() => rng.int(2) === 0)
        const retryAt = rng.pick([undefined, now, now + 700, now + 3_000])
        log.push(`markFailed ${chosen.length} ${retryAt === undefined ? "park" : retryAt - now}`)
        yield* both((s, i) =>
          s.markFailed(chosen.map(({ id, tokens }) => ({ id, claim: tokens[i], error: `e${step}`, retryAt })))
        )
      } else if (choice < 68 && ids.length > 0) {
        const id = rng.pick(ids)
        const op = rng.pick(["commit", "rollback", "retry"] as const)
        log.push(`${op} ${id.slice(-4)}`)
        const [a, b] = yield* both((s) => s[op](id))
        expect(b, `step ${step}: ${log.slice(-5).join(" | ")}`).toBe(a)
      } else if (choice < 76) {
        const olderThan = now - rng.pick([0, 1_000, 5_000])
        const limit = 1 + rng.int(3)
        log.push(`claimUndecided ${limit}`)
        const [a, b] = yield* both((s) => s.claimUndecided(olderThan, limit, Duration.seconds(2)))
        expect(claimed(b), `step ${step}: ${log.slice(-5).join(" | ")}`).toEqual(claimed(a))
        for (const [j, row] of a.entries()) {
          undecided.push({ id: row.envelope.id, tokens: [row.claim, b[j]!.claim] })
        }
      } else if (choice < 82 && undecided.length > 0) {
        const { id, tokens } = rng.pick(undecided)
        const retryAt = rng.pick([undefined, now + 1_000])
        log.push(`markUndecided ${id.slice(-4)}`)
        yield* both((s, i) => s.markUndecided(id, tokens[i], retryAt, `unknown ${step}`))
      } else {
        const millis = rng.pick([0, 300, 1_000, 5_000])
        log.push(`advance ${millis}`)
        yield* TestClock.adjust(millis)
      }
      const [expected, actual] = yield* both(snapshot)
      expect(actual, `step ${step}: ${log.slice(-5).join(" | ")}`).toEqual(expected)
    }
    return { steps: log.length, claimedRows }
  })

const equivalence = (db: Database, seeds: ReadonlyArray<number>, steps: number): void => {
  describe(`${db.name} store against the memory store`, () => {
    for (const seed of seeds) {
      it.effect(`random operations, seed ${seed}`, () =>
        Effect.gen(function* () {
          const { steps: ran, claimedRows } = yield* compare(db, seed, steps)
          expect(ran).toBe(steps)
          // The sequence did reach the interesting states, not only empty claims.
          expect(claimedRows).toBeGreaterThan(steps / 10)
        })
      )
    }
  })
}

equivalence(sqlite, [1, 2, 3], 300)
describe.skipIf(!pg.available)("PostgreSQL", () => equivalence(postgres, [5, 6], 250))
