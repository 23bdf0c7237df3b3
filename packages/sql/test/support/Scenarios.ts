/**
 * The outbox, half-message and inbox scenarios over the memory transport,
 * run on each database: what the SQL stores promise, end to end.
 *
 * Cases run under `TestClock` (leases, retry delays and check-back ages are
 * moved forward, not waited for) and wait for database I/O and other fibers
 * on real timers.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  ConnectionLost,
  Consumer,
  HalfMessage,
  Message,
  type Outbox,
  OutboxRelay,
  Publisher,
  StoreUnavailable,
  Topic,
  Transport,
  Unroutable
} from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { SqlInbox, SqlOutbox, type SqlOutboxStore } from "@lossless/sql"
import { Faulty, Harness, OutboxStoreSuite } from "@lossless/testkit"
import { Clock, Duration, Effect, Fiber, Layer, Result, Schedule, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import type { Database, Env } from "./Databases.ts"
import { storeOn } from "./Stores.ts"

const { realSleep, waitUntil } = OutboxStoreSuite

const Order = Schema.Struct({ id: Schema.String, n: Schema.Number })
const Orders = Topic.make("orders", Order)
const group = "billing"
const declare = Harness.declare(["orders"], [["orders", group]])
const brokerStats = MemoryTransport.Broker.useSync((b) => b.stats("orders", group)!)
const brokerIdle = Effect.map(brokerStats, (s) => s.ready === 0 && s.inflight === 0 && s.delayed === 0)
const lost = () => new ConnectionLost({ transport: "memory", reason: "broker down" })

const transport = (faults: Partial<Faulty.Faults> = {}) => {
  const faulty = Faulty.make(faults)
  return { control: faulty.control, layer: faulty.layer.pipe(Layer.provideMerge(MemoryTransport.layerWithBroker())) }
}

/** A business table of the case: `(id TEXT PRIMARY KEY, n INTEGER)`, written through `sql`. */
const businessTable = (env: Env, name: string) =>
  Effect.gen(function* () {
    const table = env.table(name)
    yield* env.sql`CREATE TABLE ${env.sql(table)} (id TEXT PRIMARY KEY, n INTEGER NOT NULL)`.pipe(Effect.orDie)
    const on = (sql: SqlClient.SqlClient) => ({
      insert: (id: string, n = 0) => Effect.asVoid(sql`INSERT INTO ${sql(table)} (id, n) VALUES (${id}, ${n})`),
      exists: (id: string) => Effect.map(sql`SELECT id FROM ${sql(table)} WHERE id = ${id}`, (rows) => rows.length > 0)
    })
    return {
      ...on(env.sql),
      on,
      ids: Effect.map(env.sql<{ readonly id: string }>`SELECT id FROM ${env.sql(table)} ORDER BY id`, (rows) =>
        rows.map((r) => r.id)
      ).pipe(Effect.orDie)
    }
  })

/** Rows in a table of the case. */
const countRows = (env: Env, table: string) =>
  Effect.map(env.sql<{ readonly n: number | bigint }>`SELECT COUNT(*) AS n FROM ${env.sql(table)}`, (rows) =>
    Number(rows[0]?.n ?? 0)
  ).pipe(Effect.orDie)

/** Everything the consumer handled, in order. */
const consume = Effect.gen(function* () {
  const handled: Array<{ id: string; key: string | undefined; n: number }> = []
  yield* Consumer.start({
    topic: Orders,
    group,
    handler: (m) => Effect.sync(() => handled.push({ id: m.payload.id, key: m.key, n: m.payload.n }))
  })
  return handled
})

/** Moves the test clock on by `step` at each poll until `condition` holds: relays sleep on that clock. */
const drive = <E, R>(what: string, condition: Effect.Effect<boolean, E, R>, step: Duration.Input = "1 second") =>
  waitUntil(
    what,
    Effect.flatMap(condition, (ok) => (ok ? Effect.succeed(true) : Effect.as(TestClock.adjust(step), false)))
  )

const statsOf = (store: Outbox.OutboxStore) => Effect.orDie(store.stats)

const keyOrderKept = (handled: ReadonlyArray<{ key: string | undefined; n: number }>, keys: ReadonlyArray<string>) => {
  for (const key of keys) {
    const ns = handled.filter((h) => h.key === key).map((h) => h.n)
    expect(ns).toEqual([...ns].sort((a, b) => a - b))
  }
}

const outboxPublisher = (store: Outbox.OutboxStore) => Publisher.layerOutbox(store)

/** Registers the scenarios for `db`. */
export const run = (db: Database): void => {
  const inboxOn = (env: Env, sql: SqlClient.SqlClient = env.sql) =>
    SqlInbox.make({ tables: env.tables }).pipe(Effect.provideService(SqlClient.SqlClient, sql))

  describe(`outbox on ${db.name}`, () => {
    it.effect("a rolled-back business transaction publishes nothing; a committed one is published", () => {
      const { layer } = transport()
      return Effect.gen(function* () {
        yield* declare
        const env = yield* db.env
        const orders = yield* businessTable(env, "orders")
        const store = yield* storeOn(env)
        const handled = yield* consume
        yield* Effect.forkScoped(OutboxRelay.run({ store, sweepInterval: "1 hour" }))
        const placeOrder = (id: string, n: number, payment: Effect.Effect<void, string>) =>
          env.sql
            .withTransaction(
              Effect.gen(function* () {
                yield* orders.insert(id, n)
                yield* Publisher.send(Orders, { id, n })
                yield* payment
              })
            )
            .pipe(Effect.provide(outboxPublisher(store)))
        expect(yield* Effect.flip(placeOrder("o-1", 1, Effect.fail("payment declined")))).toBe("payment declined")
        yield* placeOrder("o-2", 2, Effect.void)
        // Woken by the commit, not by the hourly sweep.
        yield* waitUntil("the committed order's message", () => handled.length > 0)
        expect(handled.map((h) => h.id)).toEqual(["o-2"])
        expect(yield* orders.ids).toEqual(["o-2"])
        // The relay marks the row after the broker confirmed it: wait for the mark, not the delivery.
        yield* waitUntil(
          "the row marked sent",
          Effect.map(statsOf(store), (s) => s.sent === 1)
        )
        expect(yield* statsOf(store)).toMatchObject({ pending: 0, sent: 1 })
        expect(yield* countRows(env, env.tables.outbox)).toBe(1)
        yield* realSleep(50)
        expect(handled).toHaveLength(1)
      }).pipe(Effect.provide(layer))
    })

    it.effect(
      "a relay killed after publishing, before marking, re-sends after the lease; with the inbox the effect happens once",
      () => {
        const { layer, control } = transport()
        return Effect.gen(function* () {
          yield* declare
          const env = yield* db.env
          const effects = yield* businessTable(env, "effects")
          const inner = yield* storeOn(env)
          let killed = true
          // The relay's marks never land, as if it died right after the broker confirmed.
          const store: Outbox.OutboxStore = {
            ...inner,
            markSent: (rows) =>
              killed
                ? Effect.fail(new StoreUnavailable({ store: inner.name, reason: "relay killed" }))
                : inner.markSent(rows)
          }
          const inbox = yield* inboxOn(env)
          let runs = 0
          yield* Consumer.start({
            topic: Orders,
            group,
            dedupe: { store: inbox },
            // The business effect: a row written in the inbox's transaction.
            handler: (m) =>
              Effect.suspend(() => {
                runs++
                return effects.insert(m.payload.id, m.payload.n)
              })
          })
          const ids = Array.from({ length: 5 }, (_, i) => `o-${i}`)
          for (const [i, id] of ids.entries()) {
            yield* Publisher.send(Orders, { id, n: i }).pipe(Effect.provide(outboxPublisher(store)))
          }
          const relay = yield* OutboxRelay.make({ store, lease: "10 seconds" })
          yield* Effect.flip(relay.relayOnce)
          killed = false
          yield* waitUntil("the first copies handled", () => runs === 5)
          // Still claimed by the dead relay: nothing goes out again before the lease ends.
          expect((yield* relay.relayOnce).claimed).toBe(0)
          yield* TestClock.adjust("10 seconds")
          expect((yield* relay.relayOnce).sent).toBe(5)
          expect(control.published()).toBe(10)
          yield* waitUntil("the second copies settled", brokerIdle)
          expect(runs).toBe(5)
          expect(yield* effects.ids).toEqual(ids)
          expect(yield* countRows(env, env.tables.inbox)).toBe(5)
          expect(yield* statsOf(inner)).toMatchObject({ sent: 5, pending: 0 })
        }).pipe(Effect.provide(layer))
      }
    )

    it.effect("two relays at once publish every row exactly once and keep each key's order", () => {
      const { layer, control } = transport()
      // A broker round trip per publish, as a real broker has: while one relay waits for its
      // confirms the other claims, so their cycles overlap.
      const withLatency = Layer.effect(
        Transport.Transport,
        Effect.map(Transport.Transport, (inner) =>
          Transport.Transport.of({
            ...inner,
            publish: (envelopes) => Effect.andThen(realSleep(1), inner.publish(envelopes))
          })
        )
      ).pipe(Layer.provideMerge(layer))
      return Effect.gen(function* () {
        yield* declare
        const env = yield* db.env
        const a = yield* storeOn(env)
        // The second relay has connections of its own, as a relay in another process has.
        const b = yield* storeOn(env, yield* env.connect)
        const handled = yield* consume
        const total = 400
        // More keys than a batch covers: a key's rows go out one batch at a time, so relays
        // share the work by key (with a handful of keys, one relay holds them all and the other waits).
        const keys = Array.from({ length: 40 }, (_, k) => `c-${k}`)
        for (let i = 0; i < total; i += 50) {
          const batch = Array.from({ length: 50 }, (_, j) => ({
            payload: { id: `o-${i + j}`, n: i + j },
            key: keys[(i + j) % keys.length]!
          }))
          yield* env.sql
            .withTransaction(Publisher.sendBatch(Orders, batch))
            .pipe(Effect.provide(outboxPublisher(a)), Effect.orDie)
        }
        // Both connected before the race starts, so neither is still connecting while the other drains.
        yield* Effect.all([statsOf(a), statsOf(b)])
        const relayA = yield* OutboxRelay.make({ store: a, batchSize: 16 })
        const relayB = yield* OutboxRelay.make({ store: b, batchSize: 16 })
        // Each relay cycles until the outbox is empty, as a running relay would (an empty claim
        // waits a moment and tries again instead of ending its turn).
        let done = 0
        const cycles = (relay: { readonly relayOnce: Effect.Effect<OutboxRelay.Cycle, StoreUnavailable> }) =>
          Effect.gen(function* () {
            let sent = 0
            for (let i = 0; i < 5_000 && done < total; i++) {
              const cycle = yield* relay.relayOnce
              sent += cycle.sent
              done += cycle.sent
              if (cycle.claimed === 0) yield* realSleep(1)
            }
            return sent
          })
        const [byA, byB] = yield* Effect.all([cycles(relayA), cycles(relayB)], { concurrency: "unbounded" })
        expect(byA + byB).toBe(total)
        expect(yield* statsOf(a)).toMatchObject({ sent: total, pending: 0, failed: 0 })
        // Both relays did part of the work.
        expect(byA).toBeGreaterThan(0)
        expect(byB).toBeGreaterThan(0)
        // Each row reached the broker once.
        expect(control.published()).toBe(total)
        yield* waitUntil("every message handled", () => handled.length >= total)
        Harness.assertExactlyOnce(
          Array.from({ length: total }, (_, i) => `o-${i}`),
          handled.map((h) => h.id)
        )
        keyOrderKept(handled, keys)
      }).pipe(Effect.provide(withLatency))
    })

    it.effect(
      "two running relays, each with several batches in flight, publish every row once in each key's order",
      () => {
        const { layer, control } = transport()
        // Per key: rows published so far, and whether a row went out while an older one of its key was unconfirmed.
        const confirmed = new Set<string>()
        const keyOf = new Map<string, { key: string; n: number }>()
        const violations: Array<string> = []
        let inFlight = 0
        let maxInFlight = 0
        const observed = Layer.effect(
          Transport.Transport,
          Effect.map(Transport.Transport, (inner) =>
            Transport.Transport.of({
              ...inner,
              publish: (envelopes) =>
                Effect.gen(function* () {
                  const inCall = new Set<string>()
                  for (const e of envelopes) {
                    const mine = keyOf.get(e.id)!
                    for (const [id, other] of keyOf) {
                      if (other.key === mine.key && other.n < mine.n && !confirmed.has(id) && !inCall.has(id)) {
                        violations.push(`#${mine.n} before #${other.n}`)
                      }
                    }
                    inCall.add(e.id)
                  }
                  maxInFlight = Math.max(maxInFlight, ++inFlight)
                  // A broker round trip, so batches overlap.
                  yield* realSleep(2)
                  const results = yield* inner.publish(envelopes)
                  results.forEach((r, i) => {
                    if (Result.isSuccess(r)) confirmed.add(envelopes[i]!.id)
                  })
                  inFlight--
                  return results
                })
            })
          )
        ).pipe(Layer.provideMerge(layer))
        return Effect.gen(function* () {
          yield* declare
          const env = yield* db.env
          const a = yield* storeOn(env)
          const b = yield* storeOn(env, yield* env.connect)
          const handled = yield* consume
          const total = 400
          const keys = Array.from({ length: 40 }, (_, k) => `c-${k}`)
          for (let i = 0; i < total; i += 50) {
            const batch = Array.from({ length: 50 }, (_, j) => ({
              payload: { id: `o-${i + j}`, n: i + j },
              key: keys[(i + j) % keys.length]!
            }))
            yield* env.sql
              .withTransaction(Publisher.sendBatch(Orders, batch))
              .pipe(Effect.provide(outboxPublisher(a)), Effect.orDie)
          }
          for (const row of yield* Effect.orDie(a.list("pending", total))) {
            keyOf.set(row.envelope.id, { key: row.envelope.key!, n: keyOf.size })
          }
          yield* Effect.all([statsOf(a), statsOf(b)])
          for (const store of [a, b]) {
            yield* Effect.forkScoped(OutboxRelay.run({ store, batchSize: 8, maxInFlight: 32, sweepInterval: "1 hour" }))
          }
          yield* waitUntil(
            "every row sent",
            Effect.map(statsOf(a), (s) => s.sent === total),
            20_000
          )
          expect(maxInFlight).toBeGreaterThan(1)
          expect(violations.slice(0, 5)).toEqual([])
          expect(control.published()).toBe(total)
          yield* waitUntil("every message handled", () => handled.length >= total)
          Harness.assertExactlyOnce(
            Array.from({ length: total }, (_, i) => `o-${i}`),
            handled.map((h) => h.id)
          )
          keyOrderKept(handled, keys)
        }).pipe(Effect.provide(observed))
      }
    )

    it.effect("while the broker is down rows pile up, then all drain once it is back, none lost", () => {
      let down = true
      const { layer } = transport({ publish: () => (down ? { _tag: "Fail", error: lost } : Faulty.pass) })
      return Effect.gen(function* () {
        yield* declare
        const env = yield* db.env
        const store = yield* storeOn(env)
        const handled = yield* consume
        yield* Effect.forkScoped(
          OutboxRelay.run({
            store,
            sweepInterval: "1 second",
            retry: Schedule.exponential("1 second").pipe(Schedule.upTo({ times: 10 }))
          })
        )
        const keys = ["c-0", "c-1", "c-2"]
        for (let i = 0; i < 30; i++) {
          yield* Publisher.send(Orders, { id: `o-${i}`, n: i }, { key: keys[i % 3]! }).pipe(
            Effect.provide(outboxPublisher(store))
          )
        }
        yield* waitUntil(
          "rows failing while the broker is down",
          Effect.map(statsOf(store), (s) => s.failed > 0 && s.failed + s.pending === 30)
        )
        expect((yield* statsOf(store)).sent).toBe(0)
        expect((yield* Effect.orDie(store.list("failed", 1)))[0]?.lastError).toContain("broker down")
        down = false
        yield* drive(
          "every row sent",
          Effect.map(statsOf(store), (s) => s.sent === 30)
        )
        expect(yield* statsOf(store)).toMatchObject({ pending: 0, failed: 0, parked: 0, oldestUnsentAt: undefined })
        yield* waitUntil("every message handled", () => handled.length >= 30)
        Harness.assertExactlyOnce(
          Array.from({ length: 30 }, (_, i) => `o-${i}`),
          handled.map((h) => h.id)
        )
        keyOrderKept(handled, keys)
      }).pipe(Effect.provide(layer))
    })

    it.effect("after the last attempt a row is parked with an alert, and an operator can re-drive it", () => {
      let failing = true
      const { layer } = transport({ publish: () => (failing ? { _tag: "Fail", error: lost } : Faulty.pass) })
      return Effect.gen(function* () {
        yield* declare
        const env = yield* db.env
        const store = yield* storeOn(env)
        const alerts: Array<string> = []
        yield* Publisher.send(Orders, { id: "o-1", n: 1 }).pipe(Effect.provide(outboxPublisher(store)))
        const relay = yield* OutboxRelay.make({
          store,
          retry: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 2 })),
          onPark: (row, error) => Effect.sync(() => alerts.push(`${row.envelope.id}: ${error}`))
        })
        expect((yield* relay.relayOnce).failed).toBe(1)
        yield* TestClock.adjust("1 second")
        expect((yield* relay.relayOnce).failed).toBe(1)
        yield* TestClock.adjust("1 second")
        expect((yield* relay.relayOnce).parked).toBe(1)
        expect(alerts).toHaveLength(1)
        expect(alerts[0]).toContain("broker down")
        const [parked] = yield* Effect.orDie(store.list("parked", 10))
        expect(parked).toMatchObject({ status: "parked", attempts: 3 })
        // The cause is fixed; the operator re-drives the row.
        failing = false
        expect(yield* Effect.orDie(store.retry(parked!.envelope.id))).toBe(true)
        expect((yield* relay.relayOnce).sent).toBe(1)
        expect(yield* statsOf(store)).toMatchObject({ sent: 1, parked: 0 })
      }).pipe(Effect.provide(layer))
    })

    it.effect("a permanent failure parks the row at once", () => {
      const { layer } = transport({
        publish: () => ({ _tag: "Fail", error: (e) => new Unroutable({ topic: e.topic, messageId: e.id }) })
      })
      return Effect.gen(function* () {
        yield* declare
        const env = yield* db.env
        const store = yield* storeOn(env)
        yield* Publisher.send(Orders, { id: "o-1", n: 1 }).pipe(Effect.provide(outboxPublisher(store)))
        const relay = yield* OutboxRelay.make({ store })
        expect(yield* relay.relayOnce).toMatchObject({ claimed: 1, parked: 1 })
        expect((yield* Effect.orDie(store.list("parked", 1)))[0]?.lastError).toContain("unroutable")
      }).pipe(Effect.provide(layer))
    })
  })

  describe(`hand-off on ${db.name}`, () => {
    const lease = Duration.minutes(1)
    const orderEnvelope = (id: string, key?: string) =>
      Harness.envelope("orders", { payload: id, ...(key === undefined ? {} : { key }) })

    /**
     * Takes `store`'s hand-offs in a fiber of the case: `received` lists them;
     * while `hold` is set, the taker stops at the next one until it is cleared.
     * Returns once the subscription is up: a probe batch came through it.
     */
    const taking = (store: SqlOutboxStore.SqlOutboxStore) =>
      Effect.gen(function* () {
        const received: Array<Outbox.Handoff> = []
        const control = { hold: false }
        const fiber = yield* Effect.forkScoped(
          Stream.runForEach(store.handoffs!({ lease, maxRows: 1000 }), (handoff) =>
            Effect.andThen(
              Effect.sync(() => received.push(handoff)),
              waitUntil("the case to let the taker go on", () => !control.hold, 30_000)
            )
          )
        )
        yield* waitUntil(
          "the hand-off subscription",
          Effect.gen(function* () {
            const probe = orderEnvelope("probe")
            yield* Effect.orDie(store.add([probe], "pending"))
            // A probe that went the usual way is claimed off, so the case starts from no claimable rows.
            const claimed = yield* Effect.orDie(store.claim(100, lease))
            yield* Effect.orDie(store.markSent(claimed.map((r) => ({ id: r.envelope.id, claim: r.claim }))))
            yield* realSleep(5)
            return received.some((h) => h.rows.some((r) => r.envelope.id === probe.id))
          })
        )
        const probes = received.flatMap((h) => h.rows)
        yield* Effect.orDie(store.markSent(probes.map((r) => ({ id: r.envelope.id, claim: r.claim }))))
        received.length = 0
        return { received, control, fiber }
      })

    const handedIds = (received: ReadonlyArray<Outbox.Handoff>) =>
      received.flatMap((h) => h.rows.map((r) => r.envelope.id))
    /** Claims what is claimable and marks it sent, so a later claim sees only what came since. */
    const claimIds = (store: Outbox.OutboxStore) =>
      Effect.gen(function* () {
        const rows = yield* Effect.orDie(store.claim(100, lease))
        yield* Effect.orDie(store.markSent(rows.map((r) => ({ id: r.envelope.id, claim: r.claim }))))
        return rows.map((r) => r.envelope.id)
      })

    it.effect("a committed batch is handed over claimed, at the commit; a rolled-back one leaves nothing", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(1_700_000_000_000)
        const env = yield* db.env
        const store = yield* storeOn(env)
        const { received } = yield* taking(store)
        const [a, b, c] = [orderEnvelope("a"), orderEnvelope("b"), orderEnvelope("c")]
        yield* env.sql.withTransaction(
          Effect.gen(function* () {
            yield* Effect.orDie(store.add([a, b], "pending"))
            yield* realSleep(20)
            expect(received).toHaveLength(0)
          })
        )
        yield* waitUntil("the committed batch", () => received.length === 1)
        const handoff = received[0]!
        expect(handedIds(received)).toEqual([a.id, b.id])
        expect(handoff.rows.map((r) => r.attempts)).toEqual([0, 0])
        expect(handoff.claimedAt).toBe(yield* Clock.currentTimeMillis)
        // Claimed for the hand-off: no claim gets them while the lease holds.
        expect(yield* claimIds(store)).toEqual([])
        yield* Effect.orDie(store.markSent(handoff.rows.map((r) => ({ id: r.envelope.id, claim: r.claim }))))
        expect(yield* statsOf(store)).toMatchObject({ pending: 0 })
        const sent = yield* Effect.orDie(store.list("sent", 100))
        expect(sent.map((r) => r.envelope.id)).toEqual(expect.arrayContaining([a.id, b.id]))

        const rolledBack = env.sql.withTransaction(
          Effect.andThen(Effect.orDie(store.add([c], "pending")), Effect.fail("no"))
        )
        expect(yield* Effect.flip(rolledBack)).toBe("no")
        yield* realSleep(50)
        expect(received).toHaveLength(1)
        expect(yield* Effect.orDie(store.list("pending", 10))).toEqual([])
      })
    )

    it.effect("a batch with a key, and batches past a stalled relay's backlog, go the usual way", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(1_700_000_000_000)
        const env = yield* db.env
        const store = yield* storeOn(env)
        const { received, control } = yield* taking(store)
        const keyed = [orderEnvelope("k1", "customer-1"), orderEnvelope("u1")]
        yield* Effect.orDie(store.add(keyed, "pending"))
        expect(yield* claimIds(store)).toEqual(keyed.map((e) => e.id))

        control.hold = true
        const batches = Array.from({ length: 20 }, (_, i) => [orderEnvelope(`b${i}`)])
        yield* Effect.orDie(store.add(batches[0]!, "pending"))
        yield* waitUntil("the taker to stall on the first batch", () => received.length === 1)
        for (const batch of batches.slice(1)) yield* Effect.orDie(store.add(batch, "pending"))
        // One batch taken, sixteen waiting: the last three were stored unclaimed.
        expect(yield* claimIds(store)).toEqual(batches.slice(17).map((b) => b[0]!.id))
        control.hold = false
        yield* waitUntil("the waiting batches", () => received.length === 17)
        expect(handedIds(received)).toEqual(batches.slice(0, 17).map((b) => b[0]!.id))
      })
    )

    it.effect("batches a relay has not taken when it stops are released at once; a taken one waits for its lease", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(1_700_000_000_000)
        const env = yield* db.env
        const store = yield* storeOn(env)
        const { received, control, fiber } = yield* taking(store)
        control.hold = true
        const batches = Array.from({ length: 3 }, (_, i) => [orderEnvelope(`s${i}`), orderEnvelope(`t${i}`)])
        yield* Effect.orDie(store.add(batches[0]!, "pending"))
        yield* waitUntil("the taker to stall on the first batch", () => received.length === 1)
        for (const batch of batches.slice(1)) yield* Effect.orDie(store.add(batch, "pending"))
        yield* Fiber.interrupt(fiber)
        expect(yield* claimIds(store)).toEqual(batches.slice(1).flatMap((b) => b.map((e) => e.id)))
        // Once the relay has stopped, nothing more is claimed for it.
        const after = orderEnvelope("after")
        yield* Effect.orDie(store.add([after], "pending"))
        expect(yield* claimIds(store)).toEqual([after.id])
        yield* TestClock.adjust(lease)
        expect(yield* claimIds(store)).toEqual(batches[0]!.map((e) => e.id))
      })
    )

    it.effect("a running relay publishes its own process's committed batches without claiming them", () => {
      const { layer } = transport()
      return Effect.gen(function* () {
        yield* declare
        const env = yield* db.env
        const inner = yield* storeOn(env)
        let claimedRows = 0
        const store: Outbox.OutboxStore = {
          ...inner,
          claim: (limit, lease) =>
            Effect.tap(inner.claim(limit, lease), (rows) => Effect.sync(() => (claimedRows += rows.length)))
        }
        const handled = yield* consume
        yield* Effect.forkScoped(OutboxRelay.run({ store, sweepInterval: "1 hour" }))
        // The relay's subscription is up once a probe sent outside any transaction is delivered unclaimed.
        let probes = 0
        yield* waitUntil(
          "the relay's subscription",
          Effect.gen(function* () {
            const probe = `probe-${probes++}`
            const claimedBefore = claimedRows
            yield* Publisher.send(Orders, { id: probe, n: 0 }).pipe(Effect.provide(outboxPublisher(store)))
            yield* waitUntil(`${probe} delivered`, () => handled.some((h) => h.id === probe))
            return claimedRows === claimedBefore
          }).pipe(Effect.orDie)
        )
        yield* waitUntil(
          "the probes marked sent",
          Effect.map(statsOf(store), (s) => s.pending === 0)
        )
        const before = handled.length
        const claimedBefore = claimedRows
        yield* env.sql.withTransaction(
          Publisher.sendBatch(
            Orders,
            Array.from({ length: 50 }, (_, n) => ({ payload: { id: `o-${n}`, n } }))
          ).pipe(Effect.provide(outboxPublisher(store)))
        )
        yield* waitUntil("the batch delivered", () => handled.length === before + 50)
        yield* waitUntil(
          "every row marked sent",
          Effect.map(statsOf(store), (s) => s.pending === 0 && s.sent === before + 50)
        )
        expect(claimedRows).toBe(claimedBefore)
        // Without keys, handlers run concurrently: every message once, in any order.
        expect(
          handled
            .slice(before)
            .map((h) => h.n)
            .sort((a, b) => a - b)
        ).toEqual(Array.from({ length: 50 }, (_, n) => n))
      }).pipe(Effect.provide(layer))
    })
  })

  describe(`layers on ${db.name}`, () => {
    it.effect("SqlOutbox.layer wires the store, an outbox publisher, a relay and its purge; half messages join", () =>
      Effect.gen(function* () {
        const env = yield* db.env
        const orders = yield* businessTable(env, "orders")
        const Live = SqlOutbox.layerHalfMessages({ local: "same-database" }).pipe(
          Layer.provideMerge(
            SqlOutbox.layer({ tables: env.tables, relay: { sweepInterval: "1 hour", retention: "1 day" } })
          ),
          Layer.provideMerge(MemoryTransport.layerWithBroker()),
          Layer.provideMerge(Layer.succeed(SqlClient.SqlClient, env.sql))
        )
        yield* Effect.gen(function* () {
          yield* declare
          const handled = yield* consume
          const store = yield* SqlOutbox.Store
          yield* env.sql.withTransaction(
            Effect.andThen(orders.insert("o-1"), Publisher.send(Orders, { id: "o-1", n: 1 }))
          )
          yield* HalfMessage.sendTransactional(Orders, { id: "o-2", n: 2 }, orders.insert("o-2"))
          yield* waitUntil("both messages delivered", () => handled.length === 2)
          expect(handled.map((h) => h.id).sort()).toEqual(["o-1", "o-2"])
          yield* waitUntil(
            "the rows marked sent",
            Effect.map(statsOf(store), (s) => s.sent === 2)
          )
          // Sent rows are kept for the retention, then purged.
          yield* drive(
            "sent rows purged",
            Effect.map(statsOf(store), (s) => s.sent === 0),
            "6 hours"
          )
          expect(yield* orders.ids).toEqual(["o-1", "o-2"])
        }).pipe(Effect.provide(Live))
      })
    )
  })

  describe(`half messages on ${db.name}`, () => {
    const halfMessages = (env: Env, store: Outbox.OutboxStore, local: SqlOutbox.HalfMessagesOptions["local"]) =>
      SqlOutbox.layerHalfMessages({ local }).pipe(
        Layer.provide(Layer.succeed(SqlOutbox.Store, store as SqlOutboxStore.SqlOutboxStore)),
        Layer.provide(Layer.succeed(SqlClient.SqlClient, env.sql))
      )

    it.effect("a half message is delivered when its local transaction commits, and not when it fails", () => {
      const { layer } = transport()
      return Effect.gen(function* () {
        yield* declare
        const env = yield* db.env
        const orders = yield* businessTable(env, "orders")
        const store = yield* storeOn(env)
        const handled = yield* consume
        yield* Effect.forkScoped(OutboxRelay.run({ store, sweepInterval: "1 hour" }))
        const half = halfMessages(env, store, "elsewhere")
        const result = yield* HalfMessage.sendTransactional(
          Orders,
          { id: "o-1", n: 1 },
          env.sql.withTransaction(Effect.as(orders.insert("o-1"), "booked"))
        ).pipe(Effect.provide(half))
        expect(result).toBe("booked")
        const failure = yield* HalfMessage.sendTransactional(
          Orders,
          { id: "o-2", n: 2 },
          env.sql.withTransaction(Effect.andThen(orders.insert("o-2"), Effect.fail("insufficient stock")))
        ).pipe(Effect.provide(half), Effect.flip)
        expect(failure).toBe("insufficient stock")
        yield* waitUntil("the committed message", () => handled.length > 0)
        expect(handled.map((h) => h.id)).toEqual(["o-1"])
        expect(yield* orders.ids).toEqual(["o-1"])
        yield* waitUntil(
          "the row marked sent",
          Effect.map(statsOf(store), (s) => s.sent === 1)
        )
        expect(yield* statsOf(store)).toMatchObject({ prepared: 0, sent: 1 })
        expect(yield* countRows(env, env.tables.outbox)).toBe(1)
      }).pipe(Effect.provide(layer))
    })

    it.effect(
      "a crash between the local transaction and commit is resolved by check-back: commit delivers, rollback drops",
      () => {
        const { layer } = transport()
        return Effect.gen(function* () {
          yield* declare
          const env = yield* db.env
          const orders = yield* businessTable(env, "orders")
          const inner = yield* storeOn(env)
          // Commit and rollback never reach the store: the process died after the local transaction.
          const crashed = Effect.fail(new StoreUnavailable({ store: inner.name, reason: "crashed" }))
          const store = { ...inner, commit: () => crashed, rollback: () => crashed }
          const handled = yield* consume
          const half = halfMessages(env, store, "elsewhere")
          yield* HalfMessage.sendTransactional(
            Orders,
            { id: "commit-me", n: 1 },
            env.sql.withTransaction(orders.insert("commit-me"))
          ).pipe(Effect.provide(half))
          yield* HalfMessage.sendTransactional(
            Orders,
            { id: "drop-me", n: 2 },
            env.sql.withTransaction(Effect.andThen(orders.insert("drop-me"), Effect.fail("local failed")))
          ).pipe(Effect.provide(half), Effect.ignore)
          expect(yield* statsOf(inner)).toMatchObject({ prepared: 2, pending: 0 })
          // The check-back looks the local transaction up: the order row exists or it does not.
          const asked: Array<string> = []
          const check = yield* HalfMessage.checkBack(Orders, (m) =>
            Effect.map(orders.exists(m.payload.id), (exists) => {
              asked.push(m.payload.id)
              return exists ? ("commit" as const) : ("rollback" as const)
            })
          )
          const relay = yield* OutboxRelay.make({ store: inner, checkBacks: [check], checkInterval: "1 minute" })
          yield* relay.drain
          expect(asked).toEqual([])
          yield* TestClock.adjust("61 seconds")
          yield* relay.drain
          expect(asked.sort()).toEqual(["commit-me", "drop-me"])
          yield* relay.drain
          yield* waitUntil("the committed message", () => handled.length > 0)
          expect(handled.map((h) => h.id)).toEqual(["commit-me"])
          expect(yield* statsOf(inner)).toMatchObject({ prepared: 0, sent: 1 })
          expect(yield* countRows(env, env.tables.outbox)).toBe(1)
        }).pipe(Effect.provide(layer))
      }
    )

    it.effect("a half message whose check-back keeps answering unknown is parked after the maximum checks", () => {
      const { layer } = transport()
      return Effect.gen(function* () {
        yield* declare
        const env = yield* db.env
        const store = yield* storeOn(env)
        const failingCommit = {
          ...store,
          commit: () => Effect.fail(new StoreUnavailable({ store: store.name, reason: "crashed" }))
        }
        yield* HalfMessage.sendTransactional(Orders, { id: "o-1", n: 1 }, Effect.void).pipe(
          Effect.provide(halfMessages(env, failingCommit, "elsewhere"))
        )
        const asked: Array<string> = []
        const alerts: Array<string> = []
        const relay = yield* OutboxRelay.make({
          store,
          checkBacks: [
            yield* HalfMessage.checkBack(Orders, (m) =>
              Effect.sync(() => {
                asked.push(m.payload.id)
                return "unknown" as const
              })
            )
          ],
          checkInterval: "10 seconds",
          maxChecks: 3,
          onPark: (_, error) => Effect.sync(() => alerts.push(error))
        })
        for (let i = 0; i < 5; i++) {
          yield* TestClock.adjust("11 seconds")
          yield* relay.drain
        }
        expect(asked).toEqual(["o-1", "o-1", "o-1"])
        expect(alerts).toHaveLength(1)
        expect(alerts[0]).toContain("undecided after 3 check-back(s)")
        expect(yield* Effect.orDie(store.list("parked", 10))).toMatchObject([{ attempts: 3 }])
      }).pipe(Effect.provide(layer))
    })

    it.effect("on the same database, the local writes and the message are one transaction", () => {
      const { layer } = transport()
      return Effect.gen(function* () {
        yield* declare
        const env = yield* db.env
        const orders = yield* businessTable(env, "orders")
        const store = yield* storeOn(env)
        const handled = yield* consume
        yield* Effect.forkScoped(OutboxRelay.run({ store, sweepInterval: "1 hour" }))
        const half = halfMessages(env, store, "same-database")
        const send = <A, E>(id: string, local: Effect.Effect<A, E>) =>
          HalfMessage.sendTransactional(Orders, { id, n: 0 }, local).pipe(Effect.provide(half))

        expect(yield* send("o-1", Effect.as(orders.insert("o-1"), "booked"))).toBe("booked")
        // A failing local write: its own error, unchanged, and neither the order nor the message.
        const duplicate = yield* Effect.flip(send("o-2", Effect.andThen(orders.insert("o-2"), orders.insert("o-2"))))
        expect(duplicate._tag).toBe("SqlError")
        // A local failure after a successful write rolls the write back too.
        expect(yield* Effect.flip(send("o-3", Effect.andThen(orders.insert("o-3"), Effect.fail("declined"))))).toBe(
          "declined"
        )
        // Inside an outer transaction that rolls back, it is a savepoint: gone with the rest.
        yield* env.sql
          .withTransaction(Effect.andThen(send("o-4", orders.insert("o-4")), Effect.fail("outer rolled back")))
          .pipe(Effect.ignore)

        yield* waitUntil("the committed message", () => handled.length > 0)
        expect(handled.map((h) => h.id)).toEqual(["o-1"])
        expect(yield* orders.ids).toEqual(["o-1"])
        // Never a prepared row for a check-back to decide.
        yield* waitUntil(
          "the row marked sent",
          Effect.map(statsOf(store), (s) => s.sent === 1)
        )
        expect(yield* statsOf(store)).toMatchObject({ prepared: 0, pending: 0, sent: 1 })
        expect(yield* countRows(env, env.tables.outbox)).toBe(1)
      }).pipe(Effect.provide(layer))
    })
  })

  describe(`inbox on ${db.name}`, () => {
    const layer = Publisher.layer({ retry: Schedule.recurs(0) }).pipe(
      Layer.provideMerge(MemoryTransport.layerWithBroker())
    )

    it.effect("concurrent calls with one key run the handler once", () =>
      Effect.gen(function* () {
        const env = yield* db.env
        const effects = yield* businessTable(env, "effects")
        const sibling = yield* env.sibling
        const [first, second] = [yield* inboxOn(env), yield* inboxOn(env, sibling)]
        let runs = 0
        const handle = (sql: SqlClient.SqlClient) =>
          Effect.gen(function* () {
            runs++
            yield* realSleep(20)
            yield* effects.on(sql).insert("o-1")
          })
        const answers = yield* Effect.all(
          [first.once("g:o-1", handle(env.sql)), second.once("g:o-1", handle(sibling))],
          {
            concurrency: "unbounded"
          }
        )
        expect(answers.sort()).toEqual([false, true])
        expect(runs).toBe(1)
        expect(yield* effects.ids).toEqual(["o-1"])
        expect(yield* first.once("g:o-1", handle(env.sql))).toBe(false)
        expect(yield* first.has("g:o-1")).toBe(true)
      })
    )

    it.effect("two consumers racing on one message id write one business row", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", group]])
        const env = yield* db.env
        const effects = yield* businessTable(env, "effects")
        let runs = 0
        // Two consumers of one group, each with its own client and inbox, as in two processes.
        for (const sql of [env.sql, yield* env.sibling]) {
          const inbox = yield* inboxOn(env, sql)
          yield* Consumer.start({
            topic: Orders,
            group,
            dedupe: { store: inbox },
            handler: (m) =>
              Effect.gen(function* () {
                runs++
                yield* realSleep(10)
                yield* effects.on(sql).insert(m.payload.id)
              })
          })
        }
        // The same message twice, as after a producer retry whose confirm was lost.
        const envelope = yield* Message.encode(Orders, { id: "o-1", n: 1 })
        yield* Harness.publishAll([envelope, envelope])
        yield* waitUntil("both deliveries settled", brokerIdle)
        expect(runs).toBe(1)
        expect(yield* effects.ids).toEqual(["o-1"])
        expect(yield* countRows(env, env.tables.inbox)).toBe(1)
      }).pipe(Effect.provide(layer))
    )

    it.effect("a failed handler records nothing, its writes roll back, and its retry runs it again", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", group]])
        const env = yield* db.env
        const effects = yield* businessTable(env, "effects")
        const inbox = yield* inboxOn(env)
        const attempts: Array<number> = []
        yield* Consumer.start({
          topic: Orders,
          group,
          dedupe: { store: inbox },
          retry: { immediate: 1, delayed: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 3 })) },
          handler: (m, context) =>
            Effect.gen(function* () {
              attempts.push(context.attempt)
              yield* effects.insert(m.payload.id)
              if (context.attempt === 1) return yield* Effect.fail(new Error("deadlock"))
            })
        })
        yield* Publisher.send(Orders, { id: "o-1", n: 1 })
        // One run and one immediate retry, each its own transaction; nothing recorded.
        yield* waitUntil("the first attempts", () => attempts.length === 2)
        yield* waitUntil(
          "the retry scheduled",
          Effect.map(brokerStats, (s) => s.delayed === 1)
        )
        expect(attempts).toEqual([1, 1])
        expect(yield* effects.ids).toEqual([])
        expect(yield* countRows(env, env.tables.inbox)).toBe(0)
        yield* TestClock.adjust("1 second")
        yield* waitUntil("the delayed retry", brokerIdle)
        expect(attempts).toEqual([1, 1, 2])
        expect(yield* effects.ids).toEqual(["o-1"])
        expect(yield* countRows(env, env.tables.inbox)).toBe(1)
      }).pipe(Effect.provide(layer))
    )

    it.effect("with the database down, the message is handed back, neither acked nor dead-lettered", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", group]])
        const env = yield* db.env
        const effects = yield* businessTable(env, "effects")
        const { sql, outage } = yield* env.connectFlaky
        const inbox = yield* inboxOn(env, sql)
        let runs = 0
        yield* Consumer.start({
          topic: Orders,
          group,
          dedupe: { store: inbox, storeRetry: Schedule.spaced("5 seconds") },
          handler: (m) =>
            Effect.suspend(() => {
              runs++
              return effects.on(sql).insert(m.payload.id)
            })
        })
        yield* outage.down
        yield* Publisher.send(Orders, { id: "o-1", n: 1 })
        yield* waitUntil(
          "the message handed back",
          Effect.map(brokerStats, (s) => s.delayed === 1)
        )
        expect(runs).toBe(0)
        expect(yield* brokerStats).toMatchObject({ ready: 0, inflight: 0, deadLetters: 0 })
        yield* outage.up
        yield* TestClock.adjust("5 seconds")
        yield* waitUntil("the message handled", () => runs === 1)
        yield* waitUntil("the message acked", brokerIdle)
        expect(yield* brokerStats).toMatchObject({ deadLetters: 0 })
        expect(yield* effects.ids).toEqual(["o-1"])
      }).pipe(Effect.provide(layer))
    )

    it.effect("a handler's own SQL failure comes out as the handler's, not as the store's", () =>
      Effect.gen(function* () {
        const env = yield* db.env
        const inbox = yield* inboxOn(env)
        const error = yield* Effect.flip(inbox.once("g:k", env.sql`SELECT * FROM no_such_table`))
        expect(error._tag).toBe("SqlError")
        expect(yield* inbox.has("g:k")).toBe(false)
      })
    )

    it.effect("keys past the retention are purged", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(1_700_000_000_000)
        const env = yield* db.env
        yield* SqlInbox.make({ tables: env.tables, retention: "1 day", cleanupInterval: "10 minutes" }).pipe(
          Effect.provideService(SqlClient.SqlClient, env.sql)
        )
        const inbox = yield* inboxOn(env)
        yield* inbox.once("g:old", Effect.void)
        yield* TestClock.adjust("2 days")
        const fresh = yield* Clock.currentTimeMillis
        yield* inbox.once("g:new", Effect.void)
        yield* drive(
          "the old key purged",
          Effect.map(Effect.orDie(inbox.has("g:old")), (has) => !has),
          "10 minutes"
        )
        // Every cleanup so far ran before "new" was a day old (the clock moved far less).
        expect(yield* Clock.currentTimeMillis).toBeLessThan(fresh + Duration.toMillis(Duration.days(1)))
        expect(yield* inbox.has("g:new")).toBe(true)
        expect(yield* inbox.purge(fresh + 1)).toBe(1)
        expect(yield* inbox.has("g:new")).toBe(false)
      })
    )
  })
}
