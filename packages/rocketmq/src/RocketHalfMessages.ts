/**
 * Native half messages: RocketMQ's transactional messages behind core's
 * `HalfMessages` service, so `HalfMessage.sendTransactional` needs no outbox
 * on RocketMQ.
 *
 * `transact(envelope, local)` sends the envelope as a half message (stored,
 * not deliverable), runs `local`, then commits (deliverable) or rolls back
 * (discarded) with EndTransaction. When the decision never reaches the
 * broker (a crash, a lost connection, a failed EndTransaction), the broker
 * asks a producer of the topic later — a check-back over the telemetry
 * stream — and this producer answers with the topic's registered
 * `HalfMessage.CheckBack`: `commit`, `rollback`, or `unknown` (asked again,
 * up to the broker's `transactionCheckMax`, after which the broker discards
 * the message).
 *
 * The broker sends a topic's check-backs only to producers that declared the
 * topic, so the transactional producer declares every topic it serves, and
 * it refuses to start (`CheckBackMissing`) when one of them has no
 * check-back: such a half message, once undecided, could never be resolved.
 *
 * ```ts
 * const HalfLive = Layer.unwrap(Effect.map(
 *   HalfMessage.checkBack(Bookings, (m) => bookingExists(m.payload.id)),
 *   (checkBack) => RocketHalfMessages.layer({ url: "rocketmq://proxy:8081", checkBacks: [checkBack] })
 * ))
 * ```
 *
 * @since 0.1.0
 */
import {
  Envelope,
  HalfMessage as Half,
  type HalfMessage,
  type InvalidUrl,
  type Publisher,
  StoreUnavailable,
  type TransportUnavailable
} from "@lossless/core"
import { Clock, Context, Duration, Effect, Layer, type Scope } from "effect"
import type { MessageView, Producer, TransactionChecker } from "rocketmq-client-nodejs"

/** The client's transaction handle (not exported by name from the package). */
type Transaction = ReturnType<Producer["beginTransaction"]>

import * as Clients from "./internal/clients.ts"
import * as Wire from "./internal/wire.ts"
import * as RocketConfig from "./RocketConfig.ts"
import * as RocketError from "./RocketError.ts"

/** A half message stored by the broker, awaiting commit or rollback. */
export interface Prepared {
  readonly envelope: Envelope.Envelope
  /**
   * The client's handle for ending it; absent when the broker stored it but
   * answered with a persistence status (relaxed mode): the check-back decides it.
   */
  readonly transaction: Transaction | undefined
}

/** Native half messages, with the steps of `transact` exposed for operators and tests. */
export interface RocketHalfMessagesShape extends HalfMessage.HalfMessagesShape {
  /** The topics this producer serves (each with a check-back). */
  readonly topics: ReadonlyArray<string>
  /** Stores `envelope` as a half message. */
  readonly prepare: (envelope: Envelope.Envelope) => Effect.Effect<Prepared, StoreUnavailable>
  /** Makes a prepared message deliverable. */
  readonly commit: (prepared: Prepared) => Effect.Effect<void, StoreUnavailable>
  /** Discards a prepared message. */
  readonly rollback: (prepared: Prepared) => Effect.Effect<void, StoreUnavailable>
}

export interface RocketHalfMessagesOptions {
  /** How to decide each topic's half messages left undecided; one per topic. */
  readonly checkBacks: ReadonlyArray<HalfMessage.CheckBack>
  /**
   * The topics transactional sends go to. Each needs a check-back.
   * @default the topics of `checkBacks`
   */
  readonly topics?: ReadonlyArray<string> | undefined
  /** Applied to each envelope before it is prepared (sequence stamps). */
  readonly interceptors?: ReadonlyArray<Publisher.Interceptor> | undefined
}

// apache.rocketmq.v2.TransactionResolution
const resolution = { unknown: 0, commit: 1, rollback: 2 } as const
type Resolution = Awaited<ReturnType<TransactionChecker["check"]>>

const storeName = RocketError.transport

/** Starts a transactional producer for the topics in the current scope. */
export const make = (
  config: RocketConfig.RocketConfig,
  options: RocketHalfMessagesOptions
): Effect.Effect<RocketHalfMessagesShape, RocketError.CheckBackMissing | TransportUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const checks = new Map(options.checkBacks.map((c) => [c.topic, c]))
    const topics = [...new Set(options.topics ?? options.checkBacks.map((c) => c.topic))]
    const missing = topics.filter((t) => !checks.has(t))
    if (missing.length > 0) return yield* new RocketError.CheckBackMissing({ topics: missing })
    if (topics.length === 0) return yield* new RocketError.CheckBackMissing({ topics: [] })
    const context = yield* Effect.context<never>()
    const run = Effect.runPromiseWith(context)

    const answer = (view: MessageView): Effect.Effect<Resolution> =>
      Effect.gen(function* () {
        const check = checks.get(view.topic)
        if (check === undefined) {
          yield* Effect.logError(`lossless: check-back for a topic without one: ${view.topic}`)
          return resolution.unknown as Resolution
        }
        const decoded = yield* Effect.result(
          Envelope.fromWire({ topic: view.topic, payload: view.body, headers: Wire.headers(view) })
        )
        if (decoded._tag === "Failure") {
          yield* Effect.logWarning(`lossless: undecodable half message on ${view.topic}: ${decoded.failure.message}`)
          return resolution.unknown as Resolution
        }
        const decision = yield* check.check(decoded.success)
        return resolution[decision] as Resolution
      })

    const checker: TransactionChecker = { check: (view) => run(answer(view)) }
    const producer: Producer = yield* Clients.producer(config, { topics, checker }).pipe(
      Effect.mapError((error) =>
        error._tag === "TransportUnavailable"
          ? error
          : RocketError.unavailable(`cannot start the transactional producer: ${error.message}`)
      )
    )
    const shape = { fifo: false, maxDelayMillis: Duration.toMillis(config.maxDelay) }
    const timeoutMillis = Duration.toMillis(config.requestTimeout)

    const unavailable = (what: string, error: unknown) =>
      new StoreUnavailable({ store: storeName, reason: `${what}: ${RocketError.describe(error)}` })

    const prepare = (envelope: Envelope.Envelope): Effect.Effect<Prepared, StoreUnavailable> =>
      Effect.gen(function* () {
        if (!checks.has(envelope.topic)) {
          return yield* Effect.die(new RocketError.CheckBackMissing({ topics: [envelope.topic] }))
        }
        const now = yield* Clock.currentTimeMillis
        const transaction = producer.beginTransaction()
        // Half messages carry no delivery time or message group.
        const message = Wire.message({ ...envelope, deliverAt: undefined }, shape, now)
        const sent = yield* Effect.tryPromise({
          try: () => producer.send(message, transaction),
          catch: (error) => error
        }).pipe(Effect.result)
        if (sent._tag === "Success") return { envelope, transaction }
        if (!config.strict && RocketError.isStoredWithoutConfirmation(sent.failure)) {
          return { envelope, transaction: undefined }
        }
        const failure = RocketError.publishFailure(sent.failure, {
          topic: envelope.topic,
          messageId: envelope.id,
          size: envelope.payload.byteLength,
          limit: config.maxMessageBytes,
          timeoutMillis
        })
        return yield* new StoreUnavailable({
          store: storeName,
          reason: `the half message was not stored: ${failure.message}`
        })
      })

    const end = (prepared: Prepared, decision: "commit" | "rollback") =>
      Effect.suspend(() => {
        const transaction = prepared.transaction
        if (transaction === undefined) {
          return Effect.fail(
            new StoreUnavailable({
              store: storeName,
              reason: "the broker stored the half message without confirming it; its check-back decides it"
            })
          )
        }
        return Effect.tryPromise({
          try: () => (decision === "commit" ? transaction.commit() : transaction.rollback()),
          catch: (error) => unavailable(`${decision} of ${prepared.envelope.id} failed`, error)
        })
      })

    const transact: HalfMessage.HalfMessagesShape["transact"] = (envelope, local) =>
      Effect.gen(function* () {
        const prepared = yield* prepare(envelope)
        const exit = yield* Effect.exit(local)
        if (exit._tag === "Success") {
          // A commit that did not land leaves the message prepared: the broker's check-back decides it.
          yield* end(prepared, "commit").pipe(
            Effect.catch((e) => Effect.logWarning(`lossless: commit deferred to check-back: ${e.message}`))
          )
          return exit.value
        }
        yield* end(prepared, "rollback").pipe(
          Effect.catch((e) => Effect.logWarning(`lossless: rollback deferred to check-back: ${e.message}`))
        )
        return yield* exit
      })

    return {
      topics,
      interceptors: options.interceptors ?? [],
      prepare,
      commit: (prepared) => end(prepared, "commit"),
      rollback: (prepared) => end(prepared, "rollback"),
      transact
    }
  })

/** The native half messages as a service, for tests and tools that drive the steps one by one. */
export class RocketHalfMessages extends Context.Service<RocketHalfMessages, RocketHalfMessagesShape>()(
  "@lossless/rocketmq/RocketHalfMessages"
) {}

/** Why the layer could not be built. */
export type LayerError = InvalidUrl | TransportUnavailable | RocketError.CheckBackMissing

/**
 * Core's `HalfMessages` (and `RocketHalfMessages`) through a transactional
 * producer; started when built, shut down when released.
 */
export const layer = (
  options: RocketConfig.RocketOptions & RocketHalfMessagesOptions
): Layer.Layer<Half.HalfMessages | RocketHalfMessages, LayerError> => {
  const { checkBacks, topics, interceptors, ...rest } = options
  return Layer.effectContext(
    Effect.gen(function* () {
      const config = yield* RocketConfig.make(rest)
      const native = yield* make(config, { checkBacks, topics, interceptors })
      return Context.make(RocketHalfMessages, native).pipe(Context.add(Half.HalfMessages, native))
    })
  )
}
