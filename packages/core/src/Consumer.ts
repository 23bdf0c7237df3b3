/**
 * The consumer runtime: runs a handler for a topic and group and settles
 * each delivery only after the handler's Effect has finished.
 *
 * - Success → `ack`.
 * - Failure → the `RetryPolicy`: immediate retries, then `retryLater` with the
 *   schedule's delay for the attempt, then `deadLetter` with the error.
 * - Undecodable payload, or an error the policy deems permanent → `deadLetter` at once.
 * - Interruption (shutdown) → no settlement: the broker redelivers.
 *
 * At most `concurrency` handlers run at once. With `ordering: "key"` (the
 * default) messages with the same key are handled one at a time, in delivery
 * order; a message handed to `retryLater` leaves that order, as on every
 * broker. Shutdown stops taking new deliveries, lets running handlers finish
 * within `shutdownTimeout`, then interrupts the rest without settling them.
 *
 * Work the handler starts but does not wait for (a forked fiber, a promise not
 * awaited) is not covered by the ack: keep all of it inside the handler's Effect.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  type Metric,
  Option,
  Queue,
  Result,
  Schedule,
  type Scope,
  Stream
} from "effect"
import * as Dedupe from "./Dedupe.ts"
import type { Delivery } from "./Delivery.ts"
import {
  type DecodeFailed,
  type GroupNotFound,
  isRetryable,
  type SettlementFailed,
  type StoreUnavailable,
  type SubscribeError,
  type TopicNotFound,
  type TopologyError
} from "./Errors.ts"
import { fnv1a } from "./internal/hash.ts"
import type * as LossDetector from "./LossDetector.ts"
import * as Message from "./Message.ts"
import * as Names from "./Names.ts"
import * as Observability from "./Observability.ts"
import * as RetryPolicy from "./RetryPolicy.ts"
import type { Topic } from "./Topic.ts"
import { Transport } from "./Transport.ts"

/** What a handler knows about the delivery besides the message. */
export interface Context {
  readonly group: string
  /** 1 on first delivery, raised by each delayed retry. */
  readonly attempt: number
  /** Delivered before without settlement (a consumer crashed or stopped mid-handling). */
  readonly redelivered: boolean
}

/** Handles one message. Its success acks the message; its failure goes to the retry policy. */
export type Handler<A, E, R> = (message: Message.Message<A>, context: Context) => Effect.Effect<void, E, R>

export interface ConsumerOptions<A, E, R> {
  readonly topic: Topic<A>
  readonly group: string
  readonly handler: Handler<A, E, R>
  /**
   * Handlers running at once.
   * @default 16
   */
  readonly concurrency?: number | undefined
  /**
   * Deliveries the broker may hand out ahead of the handlers.
   * @default 2 × concurrency
   */
  readonly prefetch?: number | undefined
  /**
   * `"key"`: one message per key at a time, in delivery order. `"none"`: any order.
   * @default "key"
   */
  readonly ordering?: "key" | "none" | undefined
  /** Records every delivery's sequence stamp, to report lost and duplicated messages (see `LossDetector`). */
  readonly lossDetector?: LossDetector.LossDetector | undefined
  /** Handle each message once per group despite redeliveries (see `Dedupe`). */
  readonly dedupe?: Dedupe.DedupeOptions | undefined
  /** Overrides of `RetryPolicy.defaults`. */
  readonly retry?: Partial<RetryPolicy.RetryPolicy> | undefined
  /**
   * How long shutdown waits for running handlers before interrupting them.
   * @default 30 seconds
   */
  readonly shutdownTimeout?: Duration.Input | undefined
  /**
   * When a subscription fails with a retryable error, how to resubscribe.
   * @default exponential from 200 ms capped at 30 s, forever
   */
  readonly resubscribe?: Schedule.Schedule<unknown, unknown> | undefined
}

/** A running consumer. */
export interface Running {
  /** Stops intake, waits for running handlers up to the shutdown timeout, then ends the subscription. */
  readonly stop: Effect.Effect<void>
  /** Completes when the consumer stops; fails if its subscription failed for good. */
  readonly done: Effect.Effect<void, TopicNotFound | GroupNotFound | SubscribeError>
}

/** Errors that end a consumer: its topology or subscription cannot be had. */
export type ConsumerError = TopologyError | SubscribeError

/** Resubscribes after 200 ms, 400 ms ... capped at 30 s, for as long as the error is retryable. */
export const defaultResubscribe: Schedule.Schedule<unknown, unknown> = Schedule.min([
  Schedule.exponential("200 millis", 2),
  Schedule.spaced("30 seconds")
]).pipe(Schedule.jittered)

const describe = (error: unknown): string => {
  if (error instanceof Error) {
    const tag = (error as { _tag?: unknown })._tag
    return `${typeof tag === "string" ? tag : error.name}: ${error.message}`
  }
  if (typeof error === "object" && error !== null && "_tag" in error) {
    try {
      return JSON.stringify(error)
    } catch {
      return String((error as { _tag: unknown })._tag)
    }
  }
  return String(error)
}

/** Chunks of deliveries whose dedupe claims may be awaiting the store at once. */
const claimsInFlight = 8

/**
 * Batches of handled keys that may be awaiting the store at once. More than
 * one, so keys handled while a batch is on its way go at once instead of
 * waiting for its answer: each message's time in flight, which the prefetch
 * bounds, then holds one store round trip for recording instead of up to two.
 */
const completersInFlight = 4

/** A delivery on its way to a handler, with what the intake already did for it. */
interface Job<A> {
  readonly delivery: Delivery
  /** Decoded ahead (dedupe consumers decode to find the key). */
  readonly decoded?: Result.Result<Message.Message<A>, DecodeFailed> | undefined
  /** The dedupe store key, when computed ahead. */
  readonly key?: string | undefined
  /** The claim taken ahead, batched with the rest of its chunk. */
  readonly claim?: Result.Result<Dedupe.Claim, StoreUnavailable> | undefined
}

/** A handled delivery whose key is to be recorded as done before it is acked. */
interface Completed extends Dedupe.Completion {
  readonly delivery: Delivery
}

/** How a handler ended after its immediate retries. */
type HandlerExit = Exit.Exit<void, HandlerFailure>

/** Why a handler run failed: its error, or a defect it threw. */
class HandlerFailure {
  readonly cause: Cause.Cause<unknown>
  constructor(cause: Cause.Cause<unknown>) {
    this.cause = cause
  }
  get error(): unknown {
    return Cause.squash(this.cause)
  }
}

/**
 * Starts a consumer in the current scope. Closing the scope shuts it down
 * gracefully. Fails at once if its topology cannot be declared.
 */
export const start = <A, E, R>(
  options: ConsumerOptions<A, E, R>
): Effect.Effect<Running, ConsumerError, Transport | Scope.Scope | R> =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const { topic, group, handler } = options
    yield* Names.validate("group", group)
    const concurrency = Math.max(1, Math.floor(options.concurrency ?? 16))
    const prefetch = Math.max(1, Math.floor(options.prefetch ?? concurrency * 2))
    const byKey = (options.ordering ?? "key") === "key"
    const policy = RetryPolicy.make(options.retry)
    const dedupe = options.dedupe === undefined ? undefined : Dedupe.resolve(options.dedupe)
    const shutdownTimeout = options.shutdownTimeout ?? "30 seconds"
    const resubscribe = options.resubscribe ?? defaultResubscribe

    yield* transport.ensureTopology({ topics: [topic.name], groups: [{ topic: topic.name, group }] })

    const settle = (delivery: Delivery, settlement: Effect.Effect<void, SettlementFailed>) =>
      Effect.catchTag(settlement, "SettlementFailed", (e) =>
        Effect.logWarning(`lossless: ${e.message}; the broker will redeliver ${delivery.envelope.id}`)
      )

    /** Jobs claimed ahead and not yet queued for a handler: their claims are given back if shutdown strands them. */
    const claimedAhead = new Set<Job<A>>()

    /** Handled deliveries whose dedupe key is yet to be recorded as done, then acked. */
    const completions = yield* Queue.unbounded<Completed, Cause.Done>()

    // Spans and counters only when observability was on at start: otherwise none of it runs.
    const observed = yield* Observability.Enabled
    const tags = { topic: topic.name, group }
    const counted = <E>(metric: Metric.Counter<number>, effect: Effect.Effect<void, E>, n = 1) =>
      observed ? Effect.andThen(effect, Observability.count(metric, n, tags)) : effect
    const { metrics } = Observability
    const ackHandled = (delivery: Delivery) => counted(metrics.handled, settle(delivery, delivery.ack))
    const ackDuplicate = (delivery: Delivery) => counted(metrics.deduped, settle(delivery, delivery.ack))
    const deadLetter = (delivery: Delivery, reason: string) =>
      counted(metrics.deadLettered, settle(delivery, delivery.deadLetter(reason)))

    const releaseClaim = (store: Dedupe.DedupeStore, key: string, token: string) =>
      store
        .release(key, token)
        .pipe(Effect.catch((e) => Effect.logWarning(`lossless: could not release ${key}: ${e.message}`)))

    /** One run of the handler: an error or a thrown defect becomes a `HandlerFailure`; interruption stays one. */
    const attempt = (message: Message.Message<A>, context: Context) => {
      const run = Effect.suspend(() => handler(message, context)).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.failCause(cause as Cause.Cause<never>)
            : observed
              ? Effect.andThen(
                  Observability.count(metrics.handlerFailures, 1, tags),
                  Effect.fail(new HandlerFailure(cause))
                )
              : Effect.fail(new HandlerFailure(cause))
        )
      )
      return observed
        ? Effect.withSpan(run, "lossless.handle", {
            attributes: { "messaging.message.id": message.id, "lossless.attempt": context.attempt }
          })
        : run
    }

    /**
     * Runs the handler with immediate retries and continues with how it ended.
     * A successful first run goes straight on, without the retry machinery.
     */
    const runThen = <X>(
      message: Message.Message<A>,
      context: Context,
      then: (exit: HandlerExit) => Effect.Effect<X, never, R>
    ): Effect.Effect<X, never, R> => {
      // The retry schedule is built only after a failure: the common, successful run skips it.
      const retried = (failure: HandlerFailure) =>
        policy.immediate < 1 || policy.isPermanent(failure.error)
          ? then(Exit.fail(failure))
          : Effect.flatMap(
              Effect.exit(
                Effect.retry(attempt(message, context), {
                  times: policy.immediate - 1,
                  while: (next) => !policy.isPermanent(next.error)
                })
              ),
              then
            )
      // With observability on, every run is in a span and counted (`attempt`).
      const first = observed ? attempt(message, context) : Effect.suspend(() => handler(message, context))
      return Effect.matchCauseEffect(first, {
        onSuccess: () => then(Exit.void),
        onFailure: (cause: Cause.Cause<unknown>) => {
          if (Cause.hasInterruptsOnly(cause)) return then(Exit.failCause(cause as Cause.Cause<never>))
          const error = Cause.findErrorOption(cause)
          return retried(
            error._tag === "Some" && error.value instanceof HandlerFailure ? error.value : new HandlerFailure(cause)
          )
        }
      })
    }

    /** Runs the handler with immediate retries; the exit says how it ended. */
    const runHandler = (message: Message.Message<A>, context: Context): Effect.Effect<HandlerExit, never, R> =>
      runThen(message, context, Effect.succeed)

    /** Settles a delivery whose handler failed: retry later on the policy's schedule, or dead-letter. */
    const afterFailure = (delivery: Delivery, error: unknown) =>
      Effect.gen(function* () {
        if (policy.isPermanent(error)) {
          return yield* deadLetter(delivery, `permanent failure: ${describe(error)}`)
        }
        const delay = yield* RetryPolicy.delayAfter(policy, delivery.attempt, error)
        if (Option.isNone(delay)) {
          return yield* deadLetter(
            delivery,
            `retries exhausted after ${delivery.attempt} attempt(s): ${describe(error)}`
          )
        }
        yield* counted(metrics.retried, settle(delivery, delivery.retryLater(delay.value)))
      })

    /** Handles a decoded message without dedupe. */
    const process = (delivery: Delivery, message: Message.Message<A>, context: Context) =>
      runThen(message, context, (exit) => {
        if (Exit.isSuccess(exit)) return ackHandled(delivery)
        const failure = Cause.findErrorOption(exit.cause)
        // Interrupted (shutdown): leave it unsettled for redelivery.
        return Option.isNone(failure) ? Effect.void : afterFailure(delivery, failure.value.error)
      })

    /** The store could not be reached: hand the message back, or handle it without dedupe. */
    const storeDown = (
      dedupe: Dedupe.Resolved,
      error: StoreUnavailable,
      delivery: Delivery,
      message: Message.Message<A>,
      context: Context
    ) =>
      Effect.gen(function* () {
        if (dedupe.onStoreUnavailable === "process") {
          yield* Effect.logWarning(`lossless: ${error.message}; handling ${message.id} without dedupe`)
          return yield* process(delivery, message, context)
        }
        // Not acked and not dead-lettered: the message waits for the store to come back.
        const delay = yield* RetryPolicy.nthDelay(dedupe.storeRetry, delivery.attempt, error)
        yield* Effect.logWarning(`lossless: ${error.message}; ${message.id} will be retried`)
        // Counted as an attempt so the delays grow while the store stays down.
        return yield* settle(delivery, delivery.retryLater(Option.getOrElse(delay, () => dedupe.busyDelay)))
      })

    /** Handles a decoded message inside an inbox transaction. */
    const processInbox = (
      dedupe: Dedupe.Resolved,
      inbox: Dedupe.Inbox,
      delivery: Delivery,
      message: Message.Message<A>,
      context: Context
    ) =>
      Effect.gen(function* () {
        const key = Dedupe.storeKey(group, dedupe.key(message as Message.Message<unknown>))
        const handleOnce = inbox.once(key, attempt(message, context))
        // Each immediate retry is a new transaction: a failed one rolled back the record too.
        const exit = yield* handleOnce.pipe(
          Effect.retry({
            times: policy.immediate,
            while: (failure) => failure instanceof HandlerFailure && !policy.isPermanent(failure.error)
          }),
          Effect.exit
        )
        // `false`: recorded before, so the handler did not run.
        if (Exit.isSuccess(exit)) return yield* exit.value ? ackHandled(delivery) : ackDuplicate(delivery)
        const failure = Cause.findErrorOption(exit.cause)
        if (Option.isNone(failure)) return
        const error = failure.value
        if (error instanceof HandlerFailure) return yield* afterFailure(delivery, error.error)
        return yield* storeDown(dedupe, error, delivery, message, context)
      })

    /** Handles a decoded message under a dedupe claim, taken ahead by the intake or now. */
    const processOnce = (
      dedupe: Dedupe.Resolved,
      store: Dedupe.DedupeStore,
      job: Job<A>,
      message: Message.Message<A>,
      context: Context
    ): Effect.Effect<void, never, R> => {
      const delivery = job.delivery
      const key = job.key ?? Dedupe.storeKey(group, dedupe.key(message as Message.Message<unknown>))
      const withClaim = (claim: Result.Result<Dedupe.Claim, StoreUnavailable>): Effect.Effect<void, never, R> => {
        if (claim._tag === "Failure") return storeDown(dedupe, claim.failure, delivery, message, context)
        switch (claim.success._tag) {
          case "Done":
            return ackDuplicate(delivery)
          case "Busy":
            return settle(delivery, delivery.retryLater(dedupe.busyDelay, { countAttempt: false }))
        }
        const token = claim.success.token
        // Built only when needed: most runs succeed and never release.
        const release = () => releaseClaim(store, key, token)
        return Effect.flatMap(
          Effect.onInterrupt(runHandler(message, context), release),
          (exit): Effect.Effect<void, never, R> => {
            // Recording the key and acking happen in a completer, batched, so this handler slot is free at once.
            if (Exit.isSuccess(exit)) {
              return Effect.sync(() => {
                Queue.offerUnsafe(completions, { key, token, delivery })
              })
            }
            const failure = Cause.findErrorOption(exit.cause)
            if (Option.isNone(failure)) return Effect.void
            return Effect.andThen(release(), afterFailure(delivery, failure.value.error))
          }
        )
      }
      // A claim taken ahead that found the key busy is asked again: the holder may have finished since.
      const ahead = job.claim
      return ahead !== undefined && !(Result.isSuccess(ahead) && ahead.success._tag === "Busy")
        ? withClaim(ahead)
        : Effect.flatMap(Effect.result(store.claim(key, dedupe.lease)), withClaim)
    }

    /** A decoded message to the handler, through dedupe when it is on. */
    const dispatch = (job: Job<A>, decoded: Result.Result<Message.Message<A>, DecodeFailed>) => {
      const delivery = job.delivery
      if (decoded._tag === "Failure") return deadLetter(delivery, describe(decoded.failure))
      const context: Context = { group, attempt: delivery.attempt, redelivered: delivery.redelivered }
      if (dedupe === undefined) return process(delivery, decoded.success, context)
      if (Dedupe.isInbox(dedupe.store)) return processInbox(dedupe, dedupe.store, delivery, decoded.success, context)
      return processOnce(dedupe, dedupe.store, job, decoded.success, context)
    }

    // Written without generators: this runs once per delivery.
    const handleNow = (job: Job<A>): Effect.Effect<void, never, R> => {
      const delivery = job.delivery
      const envelope = delivery.envelope
      // Its channel is gone (a reconnect): the broker redelivers it, so handling it now would only repeat work.
      if (!delivery.settleable()) return releaseAhead(job)
      // Emulated delayed delivery for brokers that cannot hold a message until a time.
      if (!transport.capabilities.delayedDelivery && envelope.deliverAt !== undefined) {
        const deliverAt = envelope.deliverAt
        return Effect.flatMap(Clock.currentTimeMillis, (now) =>
          deliverAt > now
            ? settle(delivery, delivery.retryLater(deliverAt - now, { countAttempt: false }))
            : decodeAndDispatch(job)
        )
      }
      return decodeAndDispatch(job)
    }

    const decodeAndDispatch = (job: Job<A>): Effect.Effect<void, never, R> =>
      job.decoded !== undefined
        ? dispatch(job, job.decoded)
        : Effect.flatMap(Effect.result(Message.decode(topic, job.delivery.envelope)), (decoded) =>
            dispatch(job, decoded)
          )

    const detector = options.lossDetector
    const clock = yield* Clock.Clock
    const handle: (job: Job<A>) => Effect.Effect<void, never, R> =
      detector === undefined
        ? handleNow
        : (job) => {
            detector.record(job.delivery.envelope, job.delivery, clock.currentTimeMillisUnsafe())
            return handleNow(job)
          }

    /**
     * Claims the keys of a chunk of deliveries in one store round trip before
     * they queue for a handler, so handlers never wait on the store to start.
     * Deliveries that will not be handled now (unsettleable, not yet due,
     * undecodable) are not claimed.
     */
    const claimAhead = (
      dedupe: Dedupe.Resolved,
      store: Dedupe.DedupeStore,
      deliveries: ReadonlyArray<Delivery>
    ): Effect.Effect<ReadonlyArray<Job<A>>> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        // In delivery order; the due ones are replaced by their prepared jobs below.
        const jobs: Array<Job<A>> = []
        const due: Array<Delivery> = []
        const dueAt: Array<number> = []
        for (const delivery of deliveries) {
          const envelope = delivery.envelope
          const later =
            !transport.capabilities.delayedDelivery && envelope.deliverAt !== undefined && envelope.deliverAt > now
          if (!later && delivery.settleable()) {
            due.push(delivery)
            dueAt.push(jobs.length)
          }
          jobs.push({ delivery })
        }
        if (due.length === 0) return Effect.succeed(jobs)
        // The default key is the message id: no need to decode the payload to know it.
        const keyed: Effect.Effect<ReadonlyArray<Job<A>>> = dedupe.byId
          ? Effect.succeed(due.map((delivery) => ({ delivery, key: Dedupe.storeKey(group, delivery.envelope.id) })))
          : Effect.forEach(due, (delivery) =>
              Effect.map(
                Effect.result(Message.decode(topic, delivery.envelope)),
                (decoded): Job<A> =>
                  decoded._tag === "Failure"
                    ? { delivery, decoded }
                    : {
                        delivery,
                        decoded,
                        key: Dedupe.storeKey(group, dedupe.key(decoded.success as Message.Message<unknown>))
                      }
              )
            )
        return Effect.flatMap(keyed, (prepared) => {
          const claimed = prepared.filter((job) => job.key !== undefined)
          prepared.forEach((job, i) => {
            jobs[dueAt[i] as number] = job
          })
          if (claimed.length === 0) return Effect.succeed(jobs)
          const keys = claimed.map((job) => job.key as string)
          // Not interrupted between the store's answer and recording it: every claim taken is known, to give back.
          return Effect.uninterruptible(
            Effect.map(Effect.result(Dedupe.claimAll(store, keys, dedupe.lease)), (claims) => {
              for (let i = 0; i < claimed.length; i++) {
                const job = claimed[i] as { claim?: Job<A>["claim"] }
                job.claim =
                  claims._tag === "Failure"
                    ? Result.fail(claims.failure)
                    : Result.succeed(claims.success[i] ?? { _tag: "Busy" as const })
                claimedAhead.add(job as Job<A>)
              }
              return jobs
            })
          )
        })
      })

    /** Gives back a claim taken ahead for a delivery that will not be handled now. */
    const releaseAhead = (job: Job<A>): Effect.Effect<void> => {
      const claim = job.claim
      if (claim === undefined || claim._tag === "Failure" || claim.success._tag !== "Acquired") return Effect.void
      if (dedupe === undefined || Dedupe.isInbox(dedupe.store) || job.key === undefined) return Effect.void
      return releaseClaim(dedupe.store, job.key, claim.success.token)
    }

    /**
     * Records handled keys as done and acks their deliveries, many per store
     * round trip. A key that could not be recorded is still acked: the effect
     * happened, and only a redelivery could repeat it now.
     */
    const complete = (dedupe: Dedupe.Resolved, store: Dedupe.DedupeStore) =>
      Effect.flatMap(Queue.takeBetween(completions, 1, 1024), (done) =>
        Effect.flatMap(Effect.result(Dedupe.completeAll(store, done, dedupe.ttl)), (recorded) =>
          counted(
            metrics.handled,
            Effect.forEach(
              done,
              (entry, i) => {
                const ok = recorded._tag === "Success" && recorded.success[i] === true
                const ack = settle(entry.delivery, entry.delivery.ack)
                return ok
                  ? ack
                  : Effect.andThen(
                      Effect.logWarning(
                        `lossless: handled ${entry.delivery.envelope.id} but could not record ${entry.key} as done` +
                          (recorded._tag === "Failure" ? `: ${recorded.failure.message}` : ": the claim had expired")
                      ),
                      ack
                    )
              },
              { discard: true }
            ),
            done.length
          )
        )
      )

    /** `handle` in a `lossless.receive` span, a child of the span that published the message. */
    const traced = !observed
      ? handle
      : (job: Job<A>) =>
          Effect.withSpan(handle(job), `lossless.receive`, {
            kind: "consumer",
            parent: Observability.parentOf(job.delivery.envelope),
            attributes: Observability.attributes(transport.name, topic.name, {
              "messaging.operation.type": "process",
              "messaging.consumer.group.name": group,
              "messaging.message.id": job.delivery.envelope.id,
              "lossless.attempt": job.delivery.attempt
            })
          })

    // One lane per worker when ordering by key (same key, same lane); otherwise one shared lane.
    const lanes = yield* Effect.forEach(Array.from({ length: byKey ? concurrency : 1 }), () =>
      Queue.bounded<Job<A>, Cause.Done>(byKey ? 1 : concurrency)
    )
    let stopping = false
    let roundRobin = 0
    const laneOf = (delivery: Delivery): Queue.Queue<Job<A>, Cause.Done> => {
      if (!byKey) return lanes[0] as Queue.Queue<Job<A>, Cause.Done>
      const key = delivery.envelope.key
      const index = key === undefined ? roundRobin++ % lanes.length : fnv1a(key) % lanes.length
      return lanes[index] as Queue.Queue<Job<A>, Cause.Done>
    }
    // A lane ended by shutdown takes nothing more: the delivery goes back to the broker, its claim to the store.
    const enqueue = (job: Job<A>, lane = laneOf(job.delivery)) =>
      Effect.flatMap(Queue.offer(lane, job), (taken) => {
        if (job.claim === undefined) return taken ? Effect.void : releaseAhead(job)
        claimedAhead.delete(job)
        return taken ? Effect.void : releaseAhead(job)
      })

    /**
     * `enqueue` for a chunk, in order: jobs whose lane has room are handed over
     * at once, and the first that must wait (or is refused) goes through
     * `enqueue` before the rest follow. No offer is ever waiting when one is
     * made at once, so delivery order within a lane is kept.
     */
    const enqueueAll = (jobs: ReadonlyArray<Job<A>>): Effect.Effect<void> => {
      let i = 0
      return Effect.whileLoop({
        while: () => i < jobs.length,
        body: () => {
          while (i < jobs.length) {
            const job = jobs[i++] as Job<A>
            // Chosen once: a key-less job's lane is picked round-robin.
            const lane = laneOf(job.delivery)
            if (!Queue.offerUnsafe(lane, job)) return enqueue(job, lane)
            if (job.claim !== undefined) claimedAhead.delete(job)
          }
          return Effect.void
        },
        step: () => {}
      })
    }

    const worker = (lane: Queue.Queue<Job<A>, Cause.Done>) =>
      Effect.whileLoop({
        while: () => !stopping,
        body: () =>
          Effect.flatMap(Queue.take(lane), (job) =>
            // A delivery taken after shutdown began is left unsettled for redelivery.
            stopping ? releaseAhead(job) : traced(job)
          ),
        step: () => {}
      }).pipe(Effect.catchTag("Done", () => Effect.void))

    const done = yield* Deferred.make<void, SubscribeError>()
    const deliveries = transport.subscribe(topic.name, group, { prefetch })
    const claimStore = dedupe !== undefined && !Dedupe.isInbox(dedupe.store) ? dedupe.store : undefined
    const intake =
      dedupe === undefined || claimStore === undefined
        ? Stream.runForEachArray(deliveries, (chunk) => enqueueAll(chunk.map((delivery) => ({ delivery }))))
        : deliveries.pipe(
            Stream.chunks,
            // Several chunks' claims in flight at once; their jobs still reach the lanes in delivery order.
            Stream.mapEffect((chunk) => claimAhead(dedupe, claimStore, chunk), { concurrency: claimsInFlight }),
            Stream.runForEach(enqueueAll)
          )
    const subscription = intake.pipe(
      Effect.tapError((e) => Effect.logWarning(`lossless: subscription ${topic.name}/${group} failed: ${e.message}`)),
      Effect.retry({ schedule: resubscribe, while: isRetryable }),
      Effect.exit,
      Effect.flatMap((exit) => Deferred.done(done, Exit.isFailure(exit) ? exit : Exit.void))
    )

    const workers = yield* Effect.forEach(
      Array.from({ length: concurrency }, (_, i) => lanes[byKey ? i : 0] as Queue.Queue<Job<A>, Cause.Done>),
      (lane) => Effect.forkChild(worker(lane))
    )
    const completers =
      dedupe === undefined || claimStore === undefined
        ? []
        : yield* Effect.forEach(Array.from({ length: completersInFlight }), () =>
            Effect.forkChild(
              Effect.forever(complete(dedupe, claimStore)).pipe(Effect.catchTag("Done", () => Effect.void))
            )
          )
    const subscriber = yield* Effect.forkChild(subscription)

    const stop = Effect.gen(function* () {
      if (stopping) return
      stopping = true
      for (const lane of lanes) Queue.endUnsafe(lane)
      const finished = yield* Fiber.joinAll(workers).pipe(Effect.timeoutOption(shutdownTimeout))
      if (Option.isNone(finished)) {
        yield* Effect.logWarning(
          `lossless: handlers of ${topic.name}/${group} still running after ${Duration.format(Duration.fromInputUnsafe(shutdownTimeout))}; interrupting them unsettled`
        )
        yield* Fiber.interruptAll(workers)
      }
      // Handled messages waiting to be recorded and acked are settled before the subscription ends.
      Queue.endUnsafe(completions)
      yield* Fiber.joinAll(completers)
      // Ending the subscription returns whatever is still unsettled to the broker.
      yield* Fiber.interrupt(subscriber)
      // Claims taken ahead for deliveries never handled are given back, so their redeliveries run at once.
      for (const lane of lanes) {
        const left = yield* Queue.clear(lane).pipe(Effect.orElseSucceed((): Array<Job<A>> => []))
        yield* Effect.forEach(left, releaseAhead, { discard: true })
      }
      yield* Effect.forEach(claimedAhead, releaseAhead, { discard: true })
      claimedAhead.clear()
      yield* Deferred.done(done, Exit.void)
    }).pipe(Effect.uninterruptible)

    yield* Effect.addFinalizer(() => stop)
    return { stop, done: Deferred.await(done) }
  })

/** Runs a consumer until interrupted; fails if its subscription fails for good. */
export const run = <A, E, R>(options: ConsumerOptions<A, E, R>): Effect.Effect<void, ConsumerError, Transport | R> =>
  Effect.scoped(Effect.flatMap(start(options), (running) => running.done))

/** A consumer that runs for the lifetime of the layer. */
export const layer = <A, E, R>(options: ConsumerOptions<A, E, R>): Layer.Layer<never, ConsumerError, Transport | R> =>
  Layer.effectDiscard(start(options))
