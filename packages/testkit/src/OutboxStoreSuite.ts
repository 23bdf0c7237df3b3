/**
 * The shared suite for outbox stores: every `OutboxStore` (core's memory
 * store, the SQL stores) runs it, so claims, leases, the per-key order rule,
 * statuses, half-message rows and wake-ups mean the same on each.
 *
 * ```ts
 * OutboxStoreSuite.run({ name: "memory", make: Outbox.memoryStore })
 * ```
 *
 * Cases run under `TestClock`: a store reads time from the Effect `Clock`,
 * as the relay computes retry and check-back times on it. Waiting for other
 * fibers (wake-ups, concurrent claimers) uses real timers, so stores doing
 * real I/O take part too.
 *
 * @since 0.1.0
 */
import { describe, expect, it } from "@effect/vitest"
import type { Envelope, Outbox } from "@lossless/core"
import { Duration, Effect, Fiber, type Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { envelope, uniqueName } from "./Harness.ts"

export interface OutboxStoreSuiteOptions {
  readonly name: string
  /** A store with no rows; built afresh for each case, in the case's scope. */
  readonly make: Effect.Effect<Outbox.OutboxStore, unknown, Scope.Scope>
  /**
   * `n` handles on one set of rows (no rows yet), as `n` processes would
   * have (for a SQL store: each with its own connections). By default one
   * store from `make`, `n` times.
   */
  readonly handles?: ((n: number) => Effect.Effect<ReadonlyArray<Outbox.OutboxStore>, unknown, Scope.Scope>) | undefined
  /** Concurrent claimers and rows in the concurrency case. @default 4 claimers, 300 rows */
  readonly concurrency?: { readonly claimers: number; readonly rows: number } | undefined
}

/** Where the test clock starts: a realistic epoch time rather than 0. */
const start = 1_700_000_000_000

const lease = Duration.minutes(1)

/** Sleeps on the real clock, whatever clock the fiber has. */
export const realSleep = (millis: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })

/** Polls `condition` on the real clock until it holds; dies naming `what` after `within` milliseconds. */
export const waitUntil = <E = never, R = never>(
  what: string,
  condition: Effect.Effect<boolean, E, R> | (() => boolean),
  within = 10_000
): Effect.Effect<void, E, R> =>
  Effect.gen(function* () {
    const check = typeof condition === "function" ? Effect.sync(condition) : condition
    const deadline = Date.now() + within
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out after ${within} ms waiting for ${what}`))
      yield* realSleep(5)
    }
  })

const ids = (rows: ReadonlyArray<{ readonly envelope: Envelope.Envelope }>) => rows.map((r) => r.envelope.id)

/** Registers the outbox store suite. */
export const run = ({ name, make, handles, concurrency }: OutboxStoreSuiteOptions): void => {
  const many = handles ?? ((n: number) => Effect.map(make, (store) => Array.from({ length: n }, () => store)))
  describe(`outbox store conformance: ${name}`, () => {
    const topic = "orders"
    const setup = Effect.andThen(TestClock.setTime(start), make)
    const at = (millis: number) => start + millis

    it.effect("stores envelopes as given, oldest first, and ignores an id stored before", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const a = envelope(topic, { key: "k1", payload: "a", headers: { "x-trace": "1" }, deliverAt: start + 5 })
        const b = envelope(topic, { payload: "b" })
        yield* store.add([a, b], "pending")
        yield* store.add([{ ...a, payload: new Uint8Array([9]) }], "pending")
        yield* store.add([], "pending")
        const rows = yield* store.list("pending", 10)
        expect(rows.map((r) => r.envelope)).toEqual([a, b])
        expect(rows[0]).toMatchObject({ status: "pending", attempts: 0, nextAttemptAt: start, createdAt: start })
        expect(rows[0]?.lastError).toBeUndefined()
        expect(yield* store.list("pending", 1)).toHaveLength(1)
        expect(yield* store.stats).toEqual({
          prepared: 0,
          pending: 2,
          failed: 0,
          sent: 0,
          parked: 0,
          oldestUnsentAt: start
        })
      })
    )

    it.effect("claims due rows oldest first, up to the limit, for the lease", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const batch = Array.from({ length: 5 }, (_, i) => envelope(topic, { payload: String(i) }))
        yield* store.add(batch, "pending")
        const first = yield* store.claim(3, Duration.seconds(10))
        expect(first.map((c) => c.envelope)).toEqual(batch.slice(0, 3))
        expect(first.map((c) => c.attempts)).toEqual([0, 0, 0])
        expect(ids(yield* store.claim(10, Duration.seconds(10)))).toEqual(batch.slice(3).map((e) => e.id))
        expect(yield* store.claim(10, Duration.seconds(10))).toEqual([])
        expect(yield* store.claim(0, Duration.seconds(10))).toEqual([])
        yield* TestClock.adjust("9999 millis")
        expect(yield* store.claim(10, Duration.seconds(10))).toEqual([])
        // The lease ran out (a relay died): the rows go to the next claim, under a new claim.
        yield* TestClock.adjust("1 millis")
        const again = yield* store.claim(10, Duration.seconds(10))
        expect(ids(again)).toEqual(batch.map((e) => e.id))
        expect(again[0]?.claim).not.toBe(first[0]?.claim)
      })
    )

    it.effect("marks a row only with the claim that holds it", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const [a, b] = [envelope(topic), envelope(topic)]
        yield* store.add([a, b], "pending")
        const [ca, cb] = yield* store.claim(10, Duration.seconds(10))
        yield* store.markSent([{ id: a.id, claim: "someone-else" }])
        expect(ids(yield* store.list("pending", 10))).toEqual([a.id, b.id])
        yield* store.markSent([{ id: a.id, claim: ca!.claim }])
        expect(yield* store.list("sent", 10)).toMatchObject([{ envelope: a, attempts: 1 }])
        // b's lease runs out and another relay takes it: the first relay's marks no longer count.
        yield* TestClock.adjust("10 seconds")
        const [retaken] = yield* store.claim(10, Duration.seconds(10))
        expect(retaken?.envelope.id).toBe(b.id)
        yield* store.markSent([{ id: b.id, claim: cb!.claim }])
        yield* store.markFailed([{ id: b.id, claim: cb!.claim, error: "stale", retryAt: undefined }])
        expect(ids(yield* store.list("pending", 10))).toEqual([b.id])
        yield* store.markSent([{ id: b.id, claim: retaken!.claim }])
        expect(yield* store.stats).toMatchObject({ pending: 0, sent: 2, parked: 0, oldestUnsentAt: undefined })
      })
    )

    it.effect("marks rows of several claims in one call, each only with the claim that holds it", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const batch = Array.from({ length: 6 }, (_, i) => envelope(topic, { payload: String(i) }))
        yield* store.add(batch, "pending")
        // Three batches in flight at once, as a pipelined relay holds them.
        const [first, second, third] = [
          yield* store.claim(2, lease),
          yield* store.claim(2, lease),
          yield* store.claim(2, lease)
        ]
        expect(new Set([first, second, third].map((rows) => rows[0]?.claim)).size).toBe(3)
        const mark = (rows: ReadonlyArray<Outbox.Claimed>) => rows.map((r) => ({ id: r.envelope.id, claim: r.claim }))
        // The third batch's first row under the first batch's claim: not its claim, so left alone.
        yield* store.markSent([
          ...mark(first!),
          ...mark(second!),
          { id: third![0]!.envelope.id, claim: first![0]!.claim }
        ])
        expect(ids(yield* store.list("sent", 10))).toEqual(batch.slice(0, 4).map((e) => e.id))
        yield* store.markFailed(
          third!.map((r, i) => ({
            id: r.envelope.id,
            claim: r.claim,
            error: "nack",
            retryAt: i === 0 ? at(5) : undefined
          }))
        )
        expect(ids(yield* store.list("failed", 10))).toEqual([batch[4]!.id])
        expect(ids(yield* store.list("parked", 10))).toEqual([batch[5]!.id])
      })
    )

    it.effect("a failed row waits for its retry time; without one it is parked", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const [a, b] = [envelope(topic), envelope(topic)]
        yield* store.add([a, b], "pending")
        const [ca, cb] = yield* store.claim(10, lease)
        yield* store.markFailed([
          { id: a.id, claim: ca!.claim, error: "broker down", retryAt: at(5000) },
          { id: b.id, claim: cb!.claim, error: "unroutable", retryAt: undefined }
        ])
        expect(yield* store.list("failed", 10)).toMatchObject([
          { envelope: a, attempts: 1, lastError: "broker down", nextAttemptAt: at(5000) }
        ])
        expect(yield* store.list("parked", 10)).toMatchObject([{ envelope: b, attempts: 1, lastError: "unroutable" }])
        // The claim was released with the failure; the row waits for its time, not for the lease.
        yield* TestClock.adjust("4999 millis")
        expect(yield* store.claim(10, lease)).toEqual([])
        yield* TestClock.adjust("1 millis")
        const [retried] = yield* store.claim(10, lease)
        expect(retried).toMatchObject({ envelope: a, attempts: 1 })
        yield* store.markSent([{ id: a.id, claim: retried!.claim }])
        expect(yield* store.list("sent", 10)).toMatchObject([{ envelope: a, attempts: 2, lastError: "broker down" }])
        expect(yield* store.stats).toMatchObject({ failed: 0, sent: 1, parked: 1, oldestUnsentAt: undefined })
      })
    )

    it.effect("keeps each key's order: a row waits while an older row of its key is held or not due", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const a = envelope(topic, { key: "k1", payload: "a" })
        const b = envelope(topic, { key: "k1", payload: "b" })
        const c = envelope(topic, { key: "k2", payload: "c" })
        const d = envelope(topic, { payload: "d" })
        const e = envelope(topic, { key: "k1", payload: "e" })
        yield* store.add([a, b, c, d, e], "pending")
        const first = yield* store.claim(2, lease)
        expect(ids(first)).toEqual([a.id, b.id])
        // e waits behind a and b; another key and a keyless row pass.
        const second = yield* store.claim(10, lease)
        expect(ids(second)).toEqual([c.id, d.id])
        yield* store.markFailed([{ id: a.id, claim: first[0]!.claim, error: "nack", retryAt: at(5000) }])
        yield* store.markSent([{ id: b.id, claim: first[1]!.claim }])
        // a failed and waits for its retry: e still waits behind it.
        expect(yield* store.claim(10, lease)).toEqual([])
        yield* TestClock.adjust("5 seconds")
        // Rows taken together stay in order; the limit cuts a key's run from the end.
        const third = yield* store.claim(1, lease)
        expect(ids(third)).toEqual([a.id])
        expect(yield* store.claim(10, lease)).toEqual([])
        yield* store.markSent([{ id: a.id, claim: third[0]!.claim }])
        expect(ids(yield* store.claim(10, lease))).toEqual([e.id])
      })
    )

    it.effect("a parked row no longer holds its key back", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const a = envelope(topic, { key: "k1" })
        const b = envelope(topic, { key: "k1" })
        yield* store.add([a, b], "pending")
        const [ca] = yield* store.claim(1, lease)
        yield* store.markFailed([{ id: a.id, claim: ca!.claim, error: "too large", retryAt: undefined }])
        expect(ids(yield* store.claim(10, lease))).toEqual([b.id])
      })
    )

    it.effect("prepared rows are invisible to claims until committed; rollback removes them", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const p = envelope(topic, { key: "k1", payload: "p" })
        const a = envelope(topic, { key: "k1", payload: "a" })
        yield* store.add([p], "prepared")
        yield* store.add([a], "pending")
        expect(yield* store.stats).toMatchObject({ prepared: 1, pending: 1, oldestUnsentAt: start })
        // A prepared row neither goes out nor holds its key back.
        const [ca] = yield* store.claim(10, lease)
        expect(ca?.envelope.id).toBe(a.id)
        yield* TestClock.adjust("1 second")
        expect(yield* store.commit(p.id)).toBe(true)
        expect(yield* store.commit(p.id)).toBe(false)
        expect(yield* store.commit("unknown-id")).toBe(false)
        expect(yield* store.list("pending", 10)).toMatchObject([
          { envelope: p, attempts: 0, nextAttemptAt: at(1000), createdAt: start },
          { envelope: a }
        ])
        expect(ids(yield* store.claim(10, lease))).toEqual([p.id])

        const q = envelope(topic, { payload: "q" })
        yield* store.add([q], "prepared")
        expect(yield* store.rollback(a.id)).toBe(false)
        expect(yield* store.rollback(q.id)).toBe(true)
        expect(yield* store.rollback(q.id)).toBe(false)
        expect(yield* store.commit(q.id)).toBe(false)
        expect(yield* store.list("prepared", 10)).toEqual([])
        expect((yield* store.stats).prepared).toBe(0)
      })
    )

    it.effect("check-backs claim prepared rows older than asked, then wait or park", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const p = envelope(topic, { payload: "p" })
        yield* store.add([p], "prepared")
        yield* store.add([envelope(topic)], "pending")
        expect(yield* store.claimUndecided(start, 10, lease)).toEqual([])
        yield* TestClock.adjust("1 second")
        const [first] = yield* store.claimUndecided(at(500), 10, lease)
        expect(first).toMatchObject({ envelope: p, attempts: 0 })
        expect(yield* store.claimUndecided(at(1000), 10, lease)).toEqual([])
        yield* store.markUndecided(p.id, "someone-else", undefined, "ignored")
        yield* store.markUndecided(p.id, first!.claim, at(11_000), "check-back answered unknown")
        expect(yield* store.list("prepared", 10)).toMatchObject([
          { envelope: p, attempts: 1, lastError: "check-back answered unknown", nextAttemptAt: at(11_000) }
        ])
        // Not due before its next check, whatever the age asked for.
        expect(yield* store.claimUndecided(at(1000), 10, lease)).toEqual([])
        yield* TestClock.adjust("10 seconds")
        const [second] = yield* store.claimUndecided(at(1000), 10, lease)
        expect(second).toMatchObject({ envelope: p, attempts: 1 })
        yield* store.markUndecided(p.id, second!.claim, undefined, "undecided")
        expect(yield* store.list("parked", 10)).toMatchObject([{ envelope: p, attempts: 2, lastError: "undecided" }])
        expect(yield* store.claimUndecided(at(100_000), 10, lease)).toEqual([])
      })
    )

    it.effect("a commit decides a prepared row a check-back holds; the check-back's mark is then ignored", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const p = envelope(topic)
        yield* store.add([p], "prepared")
        yield* TestClock.adjust("1 minute")
        const [held] = yield* store.claimUndecided(at(1), 10, lease)
        expect(yield* store.commit(p.id)).toBe(true)
        yield* store.markUndecided(p.id, held!.claim, undefined, "too late")
        expect(yield* store.list("pending", 10)).toMatchObject([{ envelope: p, attempts: 0 }])
        expect(ids(yield* store.claim(10, lease))).toEqual([p.id])
      })
    )

    it.effect("retry makes a parked or failed row pending and due now", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const [a, b] = [envelope(topic), envelope(topic)]
        yield* store.add([a, b], "pending")
        const [ca, cb] = yield* store.claim(10, lease)
        yield* store.markFailed([
          { id: a.id, claim: ca!.claim, error: "nack", retryAt: at(60_000) },
          { id: b.id, claim: cb!.claim, error: "unroutable", retryAt: undefined }
        ])
        yield* TestClock.adjust("1 second")
        expect(yield* store.retry(a.id)).toBe(true)
        expect(yield* store.retry(b.id)).toBe(true)
        expect(yield* store.retry(a.id)).toBe(false)
        expect(yield* store.retry("unknown-id")).toBe(false)
        expect(yield* store.list("pending", 10)).toMatchObject([
          { envelope: a, attempts: 1, nextAttemptAt: at(1000) },
          { envelope: b, attempts: 1, nextAttemptAt: at(1000) }
        ])
        const claimed = yield* store.claim(10, lease)
        expect(ids(claimed)).toEqual([a.id, b.id])
        yield* store.markSent(claimed.map((c) => ({ id: c.envelope.id, claim: c.claim })))
        expect(yield* store.retry(a.id)).toBe(false)
      })
    )

    it.effect("stats count rows by status and date the oldest unsent one", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const [a, b] = [envelope(topic), envelope(topic)]
        yield* store.add([envelope(topic)], "prepared")
        yield* TestClock.adjust("1 second")
        yield* store.add([a], "pending")
        yield* TestClock.adjust("1 second")
        yield* store.add([b], "pending")
        expect(yield* store.stats).toEqual({
          prepared: 1,
          pending: 2,
          failed: 0,
          sent: 0,
          parked: 0,
          oldestUnsentAt: at(1000)
        })
        const [ca] = yield* store.claim(1, lease)
        yield* store.markSent([{ id: a.id, claim: ca!.claim }])
        expect(yield* store.stats).toMatchObject({ pending: 1, sent: 1, oldestUnsentAt: at(2000) })
      })
    )

    it.effect("handles batches larger than any single statement would", () =>
      Effect.gen(function* () {
        const store = yield* setup
        const batch = Array.from({ length: 1_234 }, (_, i) => envelope(topic, { key: `k${i % 3}`, payload: String(i) }))
        yield* store.add(batch, "pending")
        const claimed = yield* store.claim(2_000, lease)
        expect(ids(claimed)).toEqual(batch.map((e) => e.id))
        yield* store.markFailed(
          claimed.slice(0, 1_100).map((c) => ({ id: c.envelope.id, claim: c.claim, error: "x", retryAt: at(1) }))
        )
        yield* store.markSent(claimed.slice(1_100).map((c) => ({ id: c.envelope.id, claim: c.claim })))
        expect(yield* store.stats).toMatchObject({ failed: 1_100, sent: 134 })
      })
    )

    it.effect("signals wake-ups after rows become ready", () =>
      Effect.gen(function* () {
        const store = yield* setup
        let signals = 0
        const listener = yield* Effect.forkChild(Stream.runForEach(store.wakeups, () => Effect.sync(() => signals++)))
        // Time to subscribe (a SQL store may LISTEN on a connection); a first signal then is allowed.
        yield* realSleep(200)
        signals = 0
        yield* store.add([envelope(topic)], "pending")
        yield* waitUntil("a wake-up after add", () => signals > 0)
        const p = envelope(topic)
        yield* store.add([p], "prepared")
        signals = 0
        yield* store.commit(p.id)
        yield* waitUntil("a wake-up after commit", () => signals > 0)
        yield* Fiber.interrupt(listener)
      })
    )

    it.effect("concurrent claimers get each row once and never a row whose older same-key row another holds", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(start)
        const { claimers, rows } = concurrency ?? { claimers: 4, rows: 300 }
        const handleList = yield* many(claimers)
        const store = handleList[0]!
        const keys = ["k0", "k1", "k2", "k3", "k4"]
        const batch = Array.from({ length: rows }, (_, i) =>
          envelope(topic, i % 6 === 5 ? { payload: String(i) } : { key: keys[i % 5]!, payload: String(i) })
        )
        yield* store.add(batch, "pending")
        const order = new Map(batch.map((e, i) => [e.id, i]))
        const claimedBy = new Map<string, number>()
        // Rows whose holder finished: added before markSent, so a correct store
        // hands out a later row of the key only after its older rows are in here.
        const finished = new Set<string>()
        const violations: Array<string> = []
        const claimer = (handle: Outbox.OutboxStore, who: number) =>
          Effect.gen(function* () {
            let idle = 0
            while (finished.size < rows && idle < 2_000) {
              const claimed = yield* handle.claim(7, Duration.hours(1))
              if (claimed.length === 0) {
                idle++
                yield* realSleep(1)
                continue
              }
              idle = 0
              const inBatch = new Set(claimed.map((c) => c.envelope.id))
              for (const c of claimed) {
                if (claimedBy.has(c.envelope.id)) violations.push(`${c.envelope.id} claimed twice`)
                claimedBy.set(c.envelope.id, who)
                const key = c.envelope.key
                if (key === undefined) continue
                const mine = order.get(c.envelope.id)!
                for (const older of batch.slice(0, mine)) {
                  if (older.key === key && !finished.has(older.id) && !inBatch.has(older.id)) {
                    violations.push(
                      `${c.envelope.id} (#${mine}) claimed while #${order.get(older.id)} of ${key} was unsent`
                    )
                  }
                }
              }
              // Hold the rows a moment, as a relay publishing them would.
              yield* realSleep(1)
              for (const c of claimed) finished.add(c.envelope.id)
              yield* handle.markSent(claimed.map((c) => ({ id: c.envelope.id, claim: c.claim })))
            }
          })
        // Every handle connected before the race starts, so none is still connecting while the others drain.
        yield* Effect.forEach(handleList, (handle) => handle.stats, { discard: true })
        yield* Effect.forEach(handleList, claimer, { concurrency: "unbounded", discard: true })
        expect(violations.slice(0, 5)).toEqual([])
        expect(claimedBy.size).toBe(rows)
        expect((yield* store.stats).sent).toBe(rows)
        // Every claimer got work: the claims really ran side by side.
        expect(new Set(claimedBy.values()).size).toBe(claimers)
      })
    )
  })
}

/** A name for tables or prefixes no other case uses. */
export const uniqueSuffix = (): string => uniqueName("t").replaceAll("-", "_").toLowerCase()
