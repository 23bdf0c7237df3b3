/**
 * The running relay is pipelined: it claims and publishes further batches
 * while earlier ones wait for their confirms and marks. These cases prove it
 * keeps what the one-batch-at-a-time relay kept: each key's order, leases,
 * at-least-once, and one publish per claim with several relays.
 */
import { expect, it } from "@effect/vitest"
import { type Envelope, Outbox, OutboxRelay, StoreUnavailable, Transport, Unroutable } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Harness } from "@lossless/testkit"
import { Duration, Effect, Layer, Result } from "effect"
import { TestClock } from "effect/testing"

const topic = "orders"
const declare = Harness.declare([topic], [[topic, "billing"]])

/** Lets forked fibers run until they block. */
const settle = Effect.gen(function* () {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

/** Moves the test clock on in `step`s, letting fibers run between, until `done` holds (at most `steps` times). */
const driveUntil = (done: Effect.Effect<boolean>, step: Duration.Input = "10 millis", steps = 2_000) =>
  Effect.gen(function* () {
    for (let i = 0; i < steps; i++) {
      yield* settle
      if (yield* done) return
      yield* TestClock.adjust(step)
    }
    expect.fail(`not done after ${steps} steps of ${Duration.format(Duration.fromInputUnsafe(step))}`)
  })

/** Rows of a case; row `n` has key `c-<n % keys>`, except every fourth row, and every row when `keys` is 0. */
const rows = (total: number, keys: number) =>
  Array.from({ length: total }, (_, n) =>
    Harness.envelope(
      topic,
      keys === 0 || n % 4 === 3 ? { payload: String(n) } : { payload: String(n), key: `c-${n % keys}` }
    )
  )
const numberOf = (e: Envelope.Envelope) => Number(Harness.text(e.payload))

/**
 * What the broker saw: publishes per message id, calls in flight at once,
 * and every publish of a row while an earlier row of its key was not yet
 * answered: confirmed, or refused for good (earlier in the same call is
 * fine: a call goes out in order).
 */
const observer = (all: ReadonlyArray<Envelope.Envelope>) => {
  const answered = new Set<string>()
  const published = new Map<string, number>()
  const violations: Array<string> = []
  let calls = 0
  let inFlight = 0
  let maxInFlight = 0
  const earlier = (e: Envelope.Envelope) =>
    all.filter((o) => o.key !== undefined && o.key === e.key && numberOf(o) < numberOf(e))
  /** `inner` with `latency` (test clock) before each confirm, failing the envelopes `fail` names. */
  const wrap = (
    inner: Transport.TransportShape,
    latency: Duration.Input,
    fail: (e: Envelope.Envelope, call: number) => boolean = () => false
  ): Transport.TransportShape => ({
    ...inner,
    publish: (envelopes) =>
      Effect.gen(function* () {
        const call = ++calls
        const inCall = new Set<string>()
        for (const e of envelopes) {
          for (const o of earlier(e)) {
            if (!answered.has(o.id) && !inCall.has(o.id)) violations.push(`${numberOf(e)} before ${numberOf(o)}`)
          }
          inCall.add(e.id)
          published.set(e.id, (published.get(e.id) ?? 0) + 1)
        }
        maxInFlight = Math.max(maxInFlight, ++inFlight)
        yield* Effect.sleep(latency)
        const results: Array<Transport.PublishResult> = []
        for (const e of envelopes) {
          if (fail(e, call)) {
            // Unroutable is permanent: the row is parked, no longer holding its key back.
            results.push(Result.fail(new Unroutable({ topic: e.topic, messageId: e.id })))
            answered.add(e.id)
          } else {
            const [result] = yield* inner.publish([e])
            results.push(result!)
            if (result !== undefined && Result.isSuccess(result)) answered.add(e.id)
          }
        }
        inFlight--
        return results
      })
  })
  return {
    wrap,
    published,
    violations,
    calls: () => calls,
    maxInFlight: () => maxInFlight,
    /** A layer replacing the transport with `wrap` of it. */
    layer: (latency: Duration.Input, fail?: (e: Envelope.Envelope, call: number) => boolean) =>
      Layer.effect(
        Transport.Transport,
        Effect.map(Transport.Transport, (inner) => Transport.Transport.of(wrap(inner, latency, fail)))
      )
  }
}

const sentAll = (store: Outbox.OutboxStore, total: number) =>
  Effect.map(Effect.orDie(store.stats), (s) => s.sent === total)

for (const claimers of [1, 2]) {
  it.effect(
    `with ${claimers} claimer(s), publishes several batches at once, never a row before its key's earlier rows are confirmed`,
    () => {
      const all = rows(200, 40)
      const seen = observer(all)
      return Effect.gen(function* () {
        yield* declare
        const store = yield* Outbox.memoryStore
        yield* store.add(all, "pending")
        yield* Effect.forkScoped(OutboxRelay.run({ store, batchSize: 8, maxInFlight: 32, claimers }))
        yield* driveUntil(sentAll(store, all.length))
        // Pipelined: up to four batches of eight were waiting for their confirms at once.
        expect(seen.maxInFlight()).toBeGreaterThan(1)
        expect(seen.maxInFlight()).toBeLessThanOrEqual(4)
        expect(seen.violations).toEqual([])
        expect([...seen.published.values()].every((n) => n === 1)).toBe(true)
        expect(seen.published.size).toBe(all.length)
      }).pipe(Effect.provide(seen.layer("20 millis").pipe(Layer.provideMerge(MemoryTransport.layerWithBroker()))))
    }
  )
}

it.effect("at maxInFlight = batchSize it publishes one batch at a time", () => {
  const all = rows(40, 40)
  const seen = observer(all)
  return Effect.gen(function* () {
    yield* declare
    const store = yield* Outbox.memoryStore
    yield* store.add(all, "pending")
    yield* Effect.forkScoped(OutboxRelay.run({ store, batchSize: 8, maxInFlight: 8 }))
    yield* driveUntil(sentAll(store, all.length))
    expect(seen.maxInFlight()).toBe(1)
    expect(seen.calls()).toBe(5)
  }).pipe(Effect.provide(seen.layer("20 millis").pipe(Layer.provideMerge(MemoryTransport.layerWithBroker()))))
})

it.effect("a row the broker refused is never marked sent, and the later rows of its key wait behind it", () => {
  const all = rows(40, 5)
  const seen = observer(all)
  // The first attempt of row 0 (key c-0) is refused; everything else goes through.
  const refused = all[0]!
  let refusals = 0
  const fail = (e: Envelope.Envelope) => e.id === refused.id && refusals++ === 0
  return Effect.gen(function* () {
    yield* declare
    const store = yield* Outbox.memoryStore
    yield* store.add(all, "pending")
    yield* Effect.forkScoped(OutboxRelay.run({ store, batchSize: 4, maxInFlight: 16 }))
    // Unroutable is permanent: the row is parked, and its key's later rows go on without it.
    yield* driveUntil(sentAll(store, all.length - 1))
    const [parked] = yield* store.list("parked", 10)
    expect(parked?.envelope.id).toBe(refused.id)
    expect(parked?.lastError).toContain("unroutable")
    // No later row of c-0 went out while row 0 was in flight; each went out once.
    expect(seen.violations).toEqual([])
    expect(seen.published.size).toBe(all.length)
    expect([...seen.published.values()].every((n) => n === 1)).toBe(true)
  }).pipe(Effect.provide(seen.layer("10 millis", fail).pipe(Layer.provideMerge(MemoryTransport.layerWithBroker()))))
})

it.effect("a mark that fails leaves its rows claimed; they are re-sent when the lease ends, none lost", () => {
  // Without keys, so no row waits behind the rows of the lost mark.
  const all = rows(24, 0)
  const seen = observer(all)
  return Effect.gen(function* () {
    yield* declare
    const inner = yield* Outbox.memoryStore
    let marks = 0
    let lostMark: ReadonlyArray<string> = []
    // The first mark never lands, as if the database went away for a moment.
    const store: Outbox.OutboxStore = {
      ...inner,
      markSent: (sent) =>
        Effect.suspend(() => {
          if (marks++ > 0) return inner.markSent(sent)
          lostMark = sent.map((s) => s.id)
          return Effect.fail(new StoreUnavailable({ store: "memory", reason: "connection reset" }))
        })
    }
    yield* store.add(all, "pending")
    yield* Effect.forkScoped(OutboxRelay.run({ store, batchSize: 4, maxInFlight: 12, lease: "10 seconds" }))
    yield* driveUntil(
      Effect.suspend(() => sentAll(store, all.length - lostMark.length)),
      "10 millis",
      500
    )
    expect(lostMark.length).toBeGreaterThan(0)
    // Still claimed: the rows of the lost mark are neither sent nor published again before the lease ends.
    expect((yield* inner.stats).pending).toBe(lostMark.length)
    expect(lostMark.every((id) => seen.published.get(id) === 1)).toBe(true)
    yield* driveUntil(sentAll(store, all.length), "1 second", 20)
    expect(lostMark.every((id) => seen.published.get(id) === 2)).toBe(true)
    expect(all.every((e) => (seen.published.get(e.id) ?? 0) >= 1)).toBe(true)
    expect(seen.violations).toEqual([])
  }).pipe(Effect.provide(seen.layer("10 millis").pipe(Layer.provideMerge(MemoryTransport.layerWithBroker()))))
})

it.effect("two running relays on one store publish each row once and keep each key's order", () => {
  const all = rows(300, 40)
  const seen = observer(all)
  return Effect.gen(function* () {
    yield* declare
    const store = yield* Outbox.memoryStore
    const inner = yield* Transport.Transport
    // Each relay with its own view of the broker, so each one's share is known.
    const calls = [0, 0]
    const relay = (i: 0 | 1) => {
      const wrapped = seen.wrap(inner, "15 millis")
      const counted = Transport.Transport.of({
        ...wrapped,
        publish: (envelopes) =>
          Effect.andThen(
            Effect.sync(() => calls[i]!++),
            wrapped.publish(envelopes)
          )
      })
      return OutboxRelay.run({ store, batchSize: 8, maxInFlight: 32 }).pipe(
        Effect.provideService(Transport.Transport, counted)
      )
    }
    yield* store.add(all, "pending")
    yield* Effect.forkScoped(relay(0))
    yield* Effect.forkScoped(relay(1))
    yield* driveUntil(sentAll(store, all.length))
    expect(calls[0]).toBeGreaterThan(0)
    expect(calls[1]).toBeGreaterThan(0)
    expect(seen.published.size).toBe(all.length)
    expect([...seen.published.values()].every((n) => n === 1)).toBe(true)
    expect(seen.violations).toEqual([])
  }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
})

it.effect("a publish is cut off when the lease runs out, even before publishTimeout", () => {
  const all = rows(1, 1)
  let hang = true
  let calls = 0
  const hanging = Layer.effect(
    Transport.Transport,
    Effect.map(Transport.Transport, (inner) =>
      Transport.Transport.of({
        ...inner,
        publish: (envelopes) =>
          Effect.suspend(() => {
            calls++
            return hang ? Effect.never : inner.publish(envelopes)
          })
      })
    )
  ).pipe(Layer.provideMerge(MemoryTransport.layerWithBroker()))
  return Effect.gen(function* () {
    yield* declare
    const store = yield* Outbox.memoryStore
    yield* store.add(all, "pending")
    yield* Effect.forkScoped(OutboxRelay.run({ store, lease: "5 seconds", publishTimeout: "30 seconds" }))
    yield* settle
    expect(calls).toBe(1)
    yield* TestClock.adjust("4999 millis")
    yield* settle
    expect(store.rows()[0]).toMatchObject({ status: "pending", attempts: 0 })
    // Past the lease another relay may hold the row: the publish gives up as the lease ends.
    yield* TestClock.adjust("1 millis")
    yield* settle
    const [row] = store.rows()
    expect(row).toMatchObject({ status: "failed", attempts: 1 })
    expect(row?.lastError).toContain("within 5000 ms")
    hang = false
    yield* driveUntil(sentAll(store, 1), "1 second", 10)
  }).pipe(Effect.provide(hanging))
})
