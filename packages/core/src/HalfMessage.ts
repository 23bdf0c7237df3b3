/**
 * Half messages: a message that is delivered only if a local transaction
 * commits, and never if it rolls back, even across a crash in between.
 *
 * `sendTransactional` prepares the message (stored, not deliverable), runs
 * the local transaction, then commits (deliverable) or rolls back (removed).
 * A crash or a store failure after the local transaction leaves the message
 * prepared; the relay later asks the topic's `checkBack` whether the local
 * transaction happened (`commit`), did not (`rollback`) or cannot tell yet
 * (`unknown`, asked again up to a limit, then parked with an alert).
 *
 * Transports with native half messages (RocketMQ) provide `HalfMessages`
 * themselves; every other transport gets it from the outbox
 * (`HalfMessage.layerOutbox`). A SQL outbox whose database also holds the
 * local transaction makes prepare, local work and commit one transaction.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { Envelope } from "./Envelope.ts"
import type { InvalidHeader, SchemaViolation, StoreUnavailable } from "./Errors.ts"
import * as Message from "./Message.ts"
import type { OutboxStore } from "./Outbox.ts"
import type { Interceptor } from "./Publisher.ts"
import type { Topic } from "./Topic.ts"

/** What a check-back answers about a prepared message's local transaction. */
export type Decision = "commit" | "rollback" | "unknown"

/** A topic's check-back, as the relay calls it for prepared rows left undecided. */
export interface CheckBack {
  readonly topic: string
  readonly check: (envelope: Envelope) => Effect.Effect<Decision>
}

/**
 * Registers how to decide a prepared message of `topic` after a crash: look
 * the local transaction up (by the message's business key) and answer.
 * Failures and undecodable messages answer `unknown`.
 */
export const checkBack = <A, E, R>(
  topic: Topic<A>,
  check: (message: Message.Message<A>) => Effect.Effect<Decision, E, R>
): Effect.Effect<CheckBack, never, R> =>
  Effect.map(Effect.context<R>(), (context) => ({
    topic: topic.name,
    check: (envelope) =>
      Message.decode(topic, envelope).pipe(
        Effect.flatMap(check),
        Effect.provide(context),
        Effect.catchCause((cause) =>
          Effect.as(Effect.logWarning("lossless: check-back failed; answering unknown", cause), "unknown" as const)
        )
      )
  }))

export interface HalfMessagesShape {
  /**
   * Runs `local` between preparing and committing `envelope`: the message is
   * delivered if and only if `local` succeeds.
   */
  readonly transact: <A, E, R>(
    envelope: Envelope,
    local: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | StoreUnavailable, R>
  /** Applied to each envelope before it is prepared (sequence stamps). */
  readonly interceptors: ReadonlyArray<Interceptor>
}

/** How half messages are made on the current transport. */
export class HalfMessages extends Context.Service<HalfMessages, HalfMessagesShape>()("@lossless/core/HalfMessages") {}

/**
 * Half messages through an outbox: prepare is a `prepared` row, commit makes
 * it pending for the relay, rollback deletes it.
 */
export const outbox = (
  store: OutboxStore,
  options: { readonly interceptors?: ReadonlyArray<Interceptor> | undefined } = {}
): HalfMessagesShape => ({
  interceptors: options.interceptors ?? [],
  transact: (envelope, local) =>
    Effect.gen(function* () {
      yield* store.add([envelope], "prepared")
      const exit = yield* Effect.exit(local)
      if (exit._tag === "Success") {
        // A failed commit leaves the row prepared; the check-back decides it later.
        yield* store
          .commit(envelope.id)
          .pipe(
            Effect.catch((e) =>
              Effect.logWarning(`lossless: commit of ${envelope.id} deferred to check-back: ${e.message}`)
            )
          )
        return exit.value
      }
      yield* store
        .rollback(envelope.id)
        .pipe(
          Effect.catch((e) =>
            Effect.logWarning(`lossless: rollback of ${envelope.id} deferred to check-back: ${e.message}`)
          )
        )
      return yield* exit
    })
})

/** Half messages through `store`, for transports without native support. */
export const layerOutbox = (
  store: OutboxStore,
  options: { readonly interceptors?: ReadonlyArray<Interceptor> | undefined } = {}
): Layer.Layer<HalfMessages> => Layer.succeed(HalfMessages, outbox(store, options))

/**
 * Sends `payload` on `topic` if and only if `local` succeeds. Returns what
 * `local` returned; fails with its error (the message is then not sent).
 */
export const sendTransactional = <T, A, E, R>(
  topic: Topic<T>,
  payload: T,
  local: Effect.Effect<A, E, R>,
  options?: Message.SendOptions
): Effect.Effect<A, E | SchemaViolation | InvalidHeader | StoreUnavailable, R | HalfMessages> =>
  Effect.gen(function* () {
    const half = yield* HalfMessages
    const encoded = yield* Message.encode(topic, payload, options)
    let batch: ReadonlyArray<Envelope> = [encoded]
    for (const intercept of half.interceptors) batch = yield* intercept(batch)
    return yield* half.transact(batch[0] ?? encoded, local)
  })
