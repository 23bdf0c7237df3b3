/**
 * The outbox relay: publishes what the outbox holds, marks what the broker
 * confirmed, and schedules the rest.
 *
 * It claims batches of due rows, publishes each batch through the transport
 * in one call, marks confirmed rows `sent` and the others `failed` with the
 * next attempt time from its `retry` schedule (or `parked` when the schedule
 * ends or the failure is permanent — `onPark` fires). It wakes when the store
 * signals new rows and sweeps on `sweepInterval` for anything left behind, so
 * while the broker is down rows accumulate and drain with backoff once it is
 * back. It also resolves undecided half messages through their check-backs.
 *
 * **Pipelined.** A running relay (`run`, `layer`) does not wait for a batch's
 * confirms before claiming the next one: up to `maxInFlight` rows, over
 * several batches, are published and awaiting their confirms at once (with
 * `claimers` claims in progress), and marks are written in the background,
 * those of every batch confirmed in the meantime merged into one store call.
 * Nothing is given up for it:
 *
 * - Per-key order: the store never hands out a row while an older row of its
 *   key is claimed or waiting for a retry, and a row stays claimed until its
 *   mark is written. So a later row of a key is claimed only after the
 *   earlier one's confirm is recorded; it is never in flight beside it, and
 *   never goes out after the earlier one failed.
 * - Leases: a batch is published right after its claim, and its publish is
 *   cut off before the lease ends (`publishTimeout`, shortened to what is
 *   left of the lease), so no row is still being published when another
 *   relay may claim it.
 * - At least once: only rows the broker confirmed are marked sent. A relay
 *   that dies, or a mark that fails, leaves its rows claimed until the lease
 *   ends; then they are claimed and published again (dedupe removes the
 *   copy), never lost.
 *
 * Several relays may share one store: claims are leases, so each row goes to
 * one relay at a time, and a relay that dies leaves its claims to expire.
 *
 * **Hand-off.** With a store that offers `handoffs` (the SQL stores), a
 * running relay also takes the rows its own process stores: claimed in
 * their INSERT and handed over when their transaction commits, they are
 * published without a claim statement, under the same `maxInFlight`, leases
 * and marks as claimed batches. Claims still pick up everything else: rows
 * with keys, rows of other processes, and rows left behind.
 *
 * @since 0.1.0
 */
import {
  Clock,
  type Context,
  Duration,
  Effect,
  Exit,
  FiberSet,
  Layer,
  Metric,
  Option,
  Queue,
  Result,
  Schedule,
  type Scope,
  Semaphore,
  Stream,
  type Tracer
} from "effect"
import type { Envelope } from "./Envelope.ts"
import { PublishTimeout, type StoreUnavailable } from "./Errors.ts"
import type { CheckBack } from "./HalfMessage.ts"
import * as Headers from "./Headers.ts"
import * as Observability from "./Observability.ts"
import type { Claimed, Failure, OutboxStore } from "./Outbox.ts"
import * as RetryPolicy from "./RetryPolicy.ts"
import { type PublishResult, Transport } from "./Transport.ts"

export interface RelayOptions {
  readonly store: OutboxStore
  /**
   * Rows per claim and per transport batch.
   * @default 256
   */
  readonly batchSize?: number | undefined
  /**
   * Most rows a running relay holds claimed and not yet marked, across the
   * batches it is publishing and marking at once. At `batchSize` (or below)
   * it works one batch at a time.
   * @default 1024
   */
  readonly maxInFlight?: number | undefined
  /**
   * Claims a running relay has in progress at once, sharing `maxInFlight`.
   * A claim is the relay's one serial step; on PostgreSQL a second claim
   * skips the rows the first is taking and overlaps its round trip and
   * work, which keeps the pipeline full when the database is slow to
   * answer. On SQLite claims take turns on the one connection anyway.
   * @default 2 (at most `maxInFlight / batchSize`)
   */
  readonly claimers?: number | undefined
  /**
   * How long a claim holds; longer than a batch's publish can take. A publish
   * is cut off when the lease runs out, whatever `publishTimeout` says.
   * @default 60 seconds
   */
  readonly lease?: Duration.Input | undefined
  /**
   * Deadline for the broker to confirm a batch.
   * @default 30 seconds
   */
  readonly publishTimeout?: Duration.Input | undefined
  /**
   * Delay before a failed row's next attempt, by attempt; when it ends, the row is parked.
   * @default exponential from 1 s, capped at 5 min, jittered, 20 attempts
   */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  /**
   * How often to look for due rows without a wake-up signal.
   * @default 1 second
   */
  readonly sweepInterval?: Duration.Input | undefined
  /**
   * With observability on, how often the store's depth (rows waiting to be
   * published) and the age of its oldest unsent row are sampled into gauges.
   * @default 15 seconds
   */
  readonly statsInterval?: Duration.Input | undefined
  /** Called when a row is parked (alerting). */
  readonly onPark?: ((row: Claimed, error: string) => Effect.Effect<void>) | undefined
  /** Check-backs for undecided half messages, by topic. */
  readonly checkBacks?: ReadonlyArray<CheckBack> | undefined
  /**
   * Age after which a prepared row is checked back, and the interval between checks.
   * @default 1 minute
   */
  readonly checkInterval?: Duration.Input | undefined
  /**
   * Check-backs answered `unknown` before the row is parked.
   * @default 15
   */
  readonly maxChecks?: number | undefined
}

/** What one relay cycle did. */
export interface Cycle {
  readonly claimed: number
  readonly sent: number
  readonly failed: number
  readonly parked: number
}

export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.min([
  Schedule.exponential("1 second", 2),
  Schedule.spaced("5 minutes")
]).pipe(Schedule.jittered, Schedule.upTo({ times: 20 }))

const relayed = Metric.counter("lossless_outbox_relayed_total", { incremental: true })
const relayFailures = Metric.counter("lossless_outbox_failures_total", { incremental: true })
const parkedCounter = Metric.counter("lossless_outbox_parked_total", { incremental: true })
const depthGauge = Metric.gauge("lossless_outbox_depth", {
  description: "Outbox rows waiting to be published (pending or failed, awaiting a retry)"
})
const oldestGauge = Metric.gauge("lossless_outbox_oldest_age_millis", {
  description: "Age of the oldest outbox row not yet sent"
})
const parkedGauge = Metric.gauge("lossless_outbox_parked", { description: "Outbox rows parked, awaiting an operator" })

/** Samples the store's counts into the gauges. */
const sampleStats = (store: OutboxStore) =>
  Effect.flatMap(store.stats, (stats) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.all(
        [
          Metric.update(depthGauge, stats.pending + stats.failed),
          Metric.update(oldestGauge, stats.oldestUnsentAt === undefined ? 0 : Math.max(0, now - stats.oldestUnsentAt)),
          Metric.update(parkedGauge, stats.parked)
        ],
        { discard: true }
      )
    )
  )

const relayLag = Metric.histogram("lossless_outbox_relay_lag_millis", {
  boundaries: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000]
})

/** A batch the broker has answered for: what to mark, and what to report once marked. */
interface Published {
  readonly claimed: number
  /** Confirmed rows. */
  readonly sent: ReadonlyArray<Claimed>
  /** Rows to retry later, and rows to park (`retryAt` undefined). */
  readonly failures: ReadonlyArray<Failure>
  readonly parked: ReadonlyArray<readonly [Claimed, string]>
  /** When the broker's answers were in (epoch milliseconds): the end of the relay lag. */
  readonly at: number
}

/** The relay's steps, shared by the one-batch-at-a-time cycle and the pipelined loop. */
const steps = (options: RelayOptions) =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const store = options.store
    const batchSize = Math.max(1, Math.floor(options.batchSize ?? 256))
    const maxInFlight = Math.max(batchSize, Math.floor(options.maxInFlight ?? 1024))
    const claimers = Math.max(1, Math.min(Math.floor(options.claimers ?? 2), Math.floor(maxInFlight / batchSize)))
    const lease = Duration.fromInputUnsafe(options.lease ?? "60 seconds")
    const leaseMillis = Duration.toMillis(lease)
    const timeoutMillis = Duration.toMillis(Duration.fromInputUnsafe(options.publishTimeout ?? "30 seconds"))
    const retry = options.retry ?? defaultRetry
    const checkInterval = Duration.toMillis(options.checkInterval ?? "1 minute")
    const maxChecks = Math.max(1, options.maxChecks ?? 15)
    const checkBacks = new Map((options.checkBacks ?? []).map((c) => [c.topic, c]))
    const observed = yield* Observability.Enabled
    const relaySpan = (envelope: Envelope) =>
      Effect.makeSpan("lossless.relay", {
        kind: "producer",
        parent: Observability.parentOf(envelope),
        attributes: Observability.attributes(transport.name, envelope.topic, {
          "messaging.operation.type": "send",
          "messaging.message.id": envelope.id,
          "lossless.outbox": true
        })
      })
    const traced = (envelope: Envelope, span: Tracer.Span | undefined): Envelope =>
      span === undefined
        ? envelope
        : {
            ...envelope,
            headers: { ...envelope.headers, [Headers.Traceparent]: Observability.formatTraceparent(span) }
          }
    const endSpans = (spans: ReadonlyArray<Tracer.Span>, results: ReadonlyArray<PublishResult>) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const end = clock.currentTimeNanosUnsafe()
          spans.forEach((span, i) => {
            const result = results[i]
            span.end(end, result !== undefined && Result.isSuccess(result) ? Exit.void : Exit.fail(result?.failure))
          })
        })
      )
    const park = (row: Claimed, error: string) =>
      Effect.andThen(
        Effect.logError(`lossless: parked outbox message ${row.envelope.id} on ${row.envelope.topic}: ${error}`),
        options.onPark?.(row, error) ?? Effect.void
      )

    /** Claims a batch; `claimedAt` is read before the claim, so the lease it implies ends no later than the store's. */
    const claim = Effect.flatMap(Clock.currentTimeMillis, (claimedAt) =>
      Effect.map(store.claim(batchSize, lease), (rows) => ({ rows, claimedAt }))
    )

    /**
     * Publishes a claimed batch and sorts the broker's answers. The publish is
     * cut off at `publishTimeout` or when the lease ends, whichever is first:
     * past the lease another relay may hold the rows.
     */
    const publish = (rows: ReadonlyArray<Claimed>, claimedAt: number): Effect.Effect<Published> =>
      Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        const deadline = Math.min(timeoutMillis, claimedAt + leaseMillis - started)
        // The lease ran out before the publish began: leave the rows to whoever claims them next.
        if (deadline <= 0) return { claimed: rows.length, sent: [], failures: [], parked: [], at: started }
        const timedOut = (): ReadonlyArray<PublishResult> =>
          rows.map((r) =>
            Result.fail(
              new PublishTimeout({ topic: r.envelope.topic, messageId: r.envelope.id, timeoutMillis: deadline })
            )
          )
        // With observability on, each row is published inside a `lossless.relay` span, a child of its send,
        // and carries that span onwards, so the receive continues the same trace.
        const spans = observed ? yield* Effect.forEach(rows, (r) => relaySpan(r.envelope)) : undefined
        const envelopes =
          spans === undefined ? rows.map((r) => r.envelope) : rows.map((r, i) => traced(r.envelope, spans[i]))
        const results = yield* transport
          .publish(envelopes)
          .pipe(Effect.timeoutOrElse({ duration: Duration.millis(deadline), orElse: () => Effect.succeed(timedOut()) }))
        if (spans !== undefined) yield* endSpans(spans, results)
        const now = yield* Clock.currentTimeMillis
        const sent: Array<Claimed> = []
        const failures: Array<Failure> = []
        const parked: Array<[Claimed, string]> = []
        for (let i = 0; i < rows.length; i++) {
          const row = rows[i] as Claimed
          const result = results[i]
          if (result !== undefined && Result.isSuccess(result)) {
            sent.push(row)
            continue
          }
          const error = result === undefined ? "no result from the transport" : result.failure.message
          const retryable = result === undefined || result.failure.retryable
          const delay = retryable ? yield* RetryPolicy.nthDelay(retry, row.attempts + 1, error) : Option.none()
          const retryAt = Option.isSome(delay) ? now + Duration.toMillis(delay.value) : undefined
          failures.push({ id: row.envelope.id, claim: row.claim, error, retryAt })
          if (retryAt === undefined) parked.push([row, error])
        }
        return { claimed: rows.length, sent, failures, parked, at: now }
      })

    /** Records that the broker confirmed the rows of `batches`, in one store call, then reports them. */
    const markSent = (batches: ReadonlyArray<Published>): Effect.Effect<void, StoreUnavailable> =>
      Effect.gen(function* () {
        const rows = batches.flatMap((b) => b.sent.map((r) => ({ id: r.envelope.id, claim: r.claim })))
        if (rows.length === 0) return
        yield* store.markSent(rows)
        // One effect for every row's lag rather than one per row: this runs for each message relayed.
        yield* Effect.contextWith((context: Context.Context<never>) =>
          Effect.sync(() => {
            for (const batch of batches) {
              for (const row of batch.sent) relayLag.updateUnsafe(batch.at - row.envelope.timestamp, context)
            }
            relayed.updateUnsafe(rows.length, context)
          })
        )
      })

    /** Records the failed rows of `batches`, in one store call, then reports them and alerts on parked ones. */
    const markFailed = (batches: ReadonlyArray<Published>): Effect.Effect<void, StoreUnavailable> =>
      Effect.gen(function* () {
        const failures = batches.flatMap((b) => b.failures)
        if (failures.length === 0) return
        yield* store.markFailed(failures)
        yield* Metric.update(relayFailures, failures.length)
        const parked = batches.flatMap((b) => b.parked)
        if (parked.length > 0) yield* Metric.update(parkedCounter, parked.length)
        for (const [row, error] of parked) yield* park(row, error)
      })

    /** Claims, publishes and marks one batch, waiting for each step. */
    const relayOnce: Effect.Effect<Cycle, StoreUnavailable> = Effect.gen(function* () {
      const { rows, claimedAt } = yield* claim
      if (rows.length === 0) return { claimed: 0, sent: 0, failed: 0, parked: 0 }
      const batch = yield* publish(rows, claimedAt)
      yield* markSent([batch])
      yield* markFailed([batch])
      const parked = batch.parked.length
      return { claimed: rows.length, sent: batch.sent.length, failed: batch.failures.length - parked, parked }
    })

    /** Asks check-backs about prepared rows left undecided. */
    const checkUndecided = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const rows = yield* store.claimUndecided(now - checkInterval, batchSize, lease)
      for (const row of rows) {
        const checker = checkBacks.get(row.envelope.topic)
        const decision = checker === undefined ? "unknown" : yield* checker.check(row.envelope)
        if (decision === "commit") yield* store.commit(row.envelope.id)
        else if (decision === "rollback") yield* store.rollback(row.envelope.id)
        else {
          const exhausted = row.attempts + 1 >= maxChecks
          const reason =
            checker === undefined
              ? `no check-back registered for topic ${row.envelope.topic}`
              : "check-back answered unknown"
          yield* store.markUndecided(row.envelope.id, row.claim, exhausted ? undefined : now + checkInterval, reason)
          if (exhausted) {
            yield* Metric.update(parkedCounter, 1)
            yield* park(row, `undecided after ${row.attempts + 1} check-back(s): ${reason}`)
          }
        }
      }
      return rows.length
    })

    /** Relays until nothing is due, then resolves undecided half messages. */
    const drain = Effect.gen(function* () {
      let total = 0
      for (;;) {
        const cycle = yield* relayOnce
        total += cycle.sent
        if (cycle.claimed < batchSize) break
      }
      // Always, so a prepared row without a registered check-back is parked with an alert, not forgotten.
      yield* checkUndecided
      return total
    })

    return {
      batchSize,
      maxInFlight,
      claimers,
      lease,
      claim,
      publish,
      markSent,
      markFailed,
      relayOnce,
      checkUndecided,
      drain
    }
  })

/**
 * A relay over `options.store` and the current transport, driven by hand:
 * `relayOnce` claims, publishes and marks one batch; `drain` repeats it until
 * nothing is due, then runs `checkUndecided`. One batch at a time; `run`
 * pipelines.
 */
export const make = (options: RelayOptions) =>
  Effect.map(steps(options), ({ relayOnce, checkUndecided, drain }) => ({ relayOnce, checkUndecided, drain }))

const warn = (what: string) => (e: StoreUnavailable) =>
  Effect.logWarning(`lossless: outbox relay: ${what}: ${e.message}`)

/**
 * Runs the relay until interrupted, pipelined (see the module docs): its
 * `claimers` claim while earlier batches are published and marked, holding
 * at most `maxInFlight` rows. A claimer whose claim comes back short waits
 * for a wake-up signal or `sweepInterval` (the first resolves undecided half
 * messages before it waits). Store failures are logged and retried at the
 * next sweep; rows whose mark failed go out again when their lease ends.
 */
export const run = (options: RelayOptions): Effect.Effect<never, never, Transport | Scope.Scope> =>
  Effect.gen(function* () {
    const relay = yield* steps(options)
    const { batchSize } = relay
    const sweep = options.sweepInterval ?? "1 second"
    // One wake-up queue per claimer: each signal reaches every one.
    const wakes = yield* Effect.forEach(Array.from({ length: relay.claimers }), () => Queue.sliding<void>(1))
    const wakeAll = Effect.forEach(wakes, (q) => Queue.offer(q, undefined), { discard: true })
    yield* Effect.forkScoped(Stream.runForEach(options.store.wakeups, () => wakeAll))
    if (yield* Observability.Enabled) {
      const sample = Effect.catch(sampleStats(options.store), warn("reading the outbox's counts failed"))
      yield* Effect.forkScoped(Effect.repeat(sample, Schedule.spaced(options.statsInterval ?? "15 seconds")))
    }

    // A permit per row claimed and not yet marked.
    const inFlight = yield* Semaphore.make(relay.maxInFlight)
    const answered = yield* Queue.unbounded<Published>()
    const publishing = yield* FiberSet.make<void>()

    // Marks everything answered since the last round in one call per kind; a failed mark
    // leaves its rows claimed until the lease ends, when they are published again.
    const marker = Effect.gen(function* () {
      const batches = yield* Queue.takeAll(answered)
      const rows = batches.reduce((n, b) => n + b.claimed, 0)
      yield* Effect.gen(function* () {
        yield* Effect.catch(
          relay.markSent(batches),
          warn("marking rows sent failed; they are re-sent after their lease")
        )
        yield* Effect.catch(
          relay.markFailed(batches),
          warn("marking failed rows failed; they are retried after their lease")
        )
        // A row with a key held back the later rows of its key, and no signal announces that it no longer does.
        const keyed = (row: Claimed) => row.envelope.key !== undefined
        if (batches.some((b) => b.sent.some(keyed) || b.parked.some(([row]) => keyed(row)))) {
          yield* wakeAll
        }
      }).pipe(
        // An `onPark` that dies must not stop the relay.
        Effect.catchDefect((defect) => Effect.logError(`lossless: outbox relay: marking died: ${String(defect)}`)),
        Effect.ensuring(Semaphore.release(inFlight, rows))
      )
    })
    yield* Effect.forkScoped(Effect.forever(marker))

    /** Starts publishing claimed rows whose permits are taken; their answers go to the marker. */
    const startPublishing = (rows: ReadonlyArray<Claimed>, claimedAt: number) =>
      FiberSet.run(
        publishing,
        relay.publish(rows, claimedAt).pipe(
          Effect.flatMap((batch) => Queue.offer(answered, batch)),
          // A defect (a transport bug) must not keep the rows' permits: they come back, the rows wait for their lease.
          Effect.catchDefect((defect) =>
            Effect.andThen(
              Effect.logError(`lossless: outbox relay: publishing a batch died: ${String(defect)}`),
              Semaphore.release(inFlight, rows.length)
            )
          ),
          Effect.asVoid
        )
      )

    /** Claims one batch (once there is room for it) and starts publishing it; the number of rows. */
    const claimNext = Effect.gen(function* () {
      yield* Semaphore.take(inFlight, batchSize)
      const { rows, claimedAt } = yield* Effect.tapError(relay.claim, () => Semaphore.release(inFlight, batchSize))
      if (rows.length < batchSize) yield* Semaphore.release(inFlight, batchSize - rows.length)
      if (rows.length > 0) yield* startPublishing(rows, claimedAt)
      return rows.length
    })

    // Rows this process's own transactions stored come already claimed, once committed: published as they
    // come, within the same `maxInFlight` as claimed batches.
    const handoffs = options.store.handoffs
    if (handoffs !== undefined) {
      yield* Effect.forkScoped(
        Stream.runForEach(handoffs({ lease: relay.lease, maxRows: relay.maxInFlight }), ({ rows, claimedAt }) =>
          rows.length === 0
            ? Effect.void
            : Effect.andThen(Semaphore.take(inFlight, rows.length), startPublishing(rows, claimedAt))
        )
      )
    }

    /** A claimer: claims while batches come back full, then waits; the first also resolves half messages. */
    const claimer = (i: number) => {
      const wake = wakes[i] as Queue.Queue<void>
      const idle = Effect.andThen(
        i === 0 ? Effect.catch(relay.checkUndecided, warn("checking undecided half messages failed")) : Effect.void,
        Effect.raceFirst(Queue.take(wake), Effect.sleep(sweep))
      )
      return Effect.forever(
        Effect.flatMap(
          Effect.catch(claimNext, (e) => Effect.as(warn("claiming failed; retrying at the next sweep")(e), 0)),
          (claimed) => (claimed < batchSize ? idle : Effect.void)
        )
      )
    }
    for (let i = 1; i < relay.claimers; i++) yield* Effect.forkScoped(claimer(i))
    return yield* claimer(0)
  })

/** A relay running for the lifetime of the layer. */
export const layer = (options: RelayOptions): Layer.Layer<never, never, Transport> =>
  Layer.effectDiscard(Effect.forkScoped(run(options)))
