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
 * Several relays may share one store: claims are leases, so each row goes to
 * one relay at a time, and a relay that dies leaves its claims to expire.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Layer, Metric, Option, Queue, Result, Schedule, type Scope, Stream } from "effect"
import { PublishTimeout, type StoreUnavailable } from "./Errors.ts"
import type { CheckBack } from "./HalfMessage.ts"
import type { Claimed, Failure, OutboxStore } from "./Outbox.ts"
import * as RetryPolicy from "./RetryPolicy.ts"
import { Transport } from "./Transport.ts"

export interface RelayOptions {
  readonly store: OutboxStore
  /**
   * Rows per claim and per transport batch.
   * @default 256
   */
  readonly batchSize?: number | undefined
  /**
   * How long a claim holds; longer than a batch's publish can take.
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
const relayLag = Metric.histogram("lossless_outbox_relay_lag_millis", {
  boundaries: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000]
})

/** A relay over `options.store` and the current transport. */
export const make = (options: RelayOptions) =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const store = options.store
    const batchSize = Math.max(1, Math.floor(options.batchSize ?? 256))
    const lease = Duration.fromInputUnsafe(options.lease ?? "60 seconds")
    const timeout = Duration.fromInputUnsafe(options.publishTimeout ?? "30 seconds")
    const retry = options.retry ?? defaultRetry
    const checkInterval = Duration.toMillis(options.checkInterval ?? "1 minute")
    const maxChecks = Math.max(1, options.maxChecks ?? 15)
    const checkBacks = new Map((options.checkBacks ?? []).map((c) => [c.topic, c]))
    const park = (row: Claimed, error: string) =>
      Effect.andThen(
        Effect.logError(`lossless: parked outbox message ${row.envelope.id} on ${row.envelope.topic}: ${error}`),
        options.onPark?.(row, error) ?? Effect.void
      )

    /** Claims, publishes and marks one batch. */
    const relayOnce: Effect.Effect<Cycle, StoreUnavailable> = Effect.gen(function* () {
      const rows = yield* store.claim(batchSize, lease)
      if (rows.length === 0) return { claimed: 0, sent: 0, failed: 0, parked: 0 }
      const results = yield* transport.publish(rows.map((r) => r.envelope)).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () =>
            Effect.succeed(
              rows.map((r) =>
                Result.fail(
                  new PublishTimeout({
                    topic: r.envelope.topic,
                    messageId: r.envelope.id,
                    timeoutMillis: Duration.toMillis(timeout)
                  })
                )
              )
            )
        })
      )
      const now = yield* Clock.currentTimeMillis
      const sent: Array<{ id: string; claim: string }> = []
      const failures: Array<Failure> = []
      const parked: Array<[Claimed, string]> = []
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i] as Claimed
        const result = results[i]
        if (result !== undefined && Result.isSuccess(result)) {
          sent.push({ id: row.envelope.id, claim: row.claim })
          continue
        }
        const error = result === undefined ? "no result from the transport" : result.failure.message
        const retryable = result === undefined || result.failure.retryable
        const delay = retryable ? yield* RetryPolicy.nthDelay(retry, row.attempts + 1, error) : Option.none()
        const retryAt = Option.isSome(delay) ? now + Duration.toMillis(delay.value) : undefined
        failures.push({ id: row.envelope.id, claim: row.claim, error, retryAt })
        if (retryAt === undefined) parked.push([row, error])
      }
      if (sent.length > 0) yield* store.markSent(sent)
      if (failures.length > 0) yield* store.markFailed(failures)
      const confirmed = new Set(sent.map((s) => s.id))
      for (const row of rows) {
        if (confirmed.has(row.envelope.id)) yield* Metric.update(relayLag, now - row.envelope.timestamp)
      }
      yield* Metric.update(relayed, sent.length)
      if (failures.length > 0) yield* Metric.update(relayFailures, failures.length)
      if (parked.length > 0) yield* Metric.update(parkedCounter, parked.length)
      for (const [row, error] of parked) yield* park(row, error)
      return { claimed: rows.length, sent: sent.length, failed: failures.length - parked.length, parked: parked.length }
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

    return { relayOnce, checkUndecided, drain }
  })

/**
 * Runs the relay until interrupted: drains on every wake-up signal and every
 * `sweepInterval`. Store failures are logged and retried at the next sweep.
 */
export const run = (options: RelayOptions): Effect.Effect<never, never, Transport | Scope.Scope> =>
  Effect.gen(function* () {
    const relay = yield* make(options)
    const sweep = options.sweepInterval ?? "1 second"
    const wake = yield* Queue.sliding<void>(1)
    yield* Effect.forkScoped(Stream.runForEach(options.store.wakeups, () => Queue.offer(wake, undefined)))
    const cycle = relay.drain.pipe(
      Effect.catch((e) => Effect.logWarning(`lossless: outbox relay: ${e.message}; retrying at the next sweep`))
    )
    return yield* Effect.forever(Effect.andThen(cycle, Effect.raceFirst(Queue.take(wake), Effect.sleep(sweep))))
  })

/** A relay running for the lifetime of the layer. */
export const layer = (options: RelayOptions): Layer.Layer<never, never, Transport> =>
  Layer.effectDiscard(Effect.forkScoped(run(options)))
