/**
 * Reliable publish: a send succeeds only after the broker confirmed it.
 *
 * `send` validates and encodes the payload, runs the publish interceptors
 * (sequence stamps, trace context), publishes through the transport and
 * waits for the confirm. Each attempt has a deadline; retryable failures
 * (timeouts, lost connections, broker nacks) are retried on a `Schedule`,
 * permanent ones (unroutable, too large, unknown topic) are not. A final
 * failure is a `SendFailed` carrying every unconfirmed envelope: nothing is
 * dropped silently. The message id is fixed before the first attempt and
 * never changes, so a retry that duplicates a message can be deduplicated.
 *
 * At most `maxInFlight` messages are outstanding per publisher; further sends
 * wait (backpressure) instead of buffering without bound.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Result, Schedule, Semaphore } from "effect"
import type { Envelope } from "./Envelope.ts"
import {
  type InvalidHeader,
  type PublishError,
  PublishTimeout,
  type SchemaViolation,
  SendFailed,
  type SendFailure,
  TransportUnavailable
} from "./Errors.ts"
import * as LossDetector from "./LossDetector.ts"
import * as Message from "./Message.ts"
import * as Observability from "./Observability.ts"
import type { OutboxStore } from "./Outbox.ts"
import type { Topic } from "./Topic.ts"
import { Transport } from "./Transport.ts"

/** A confirmed message. */
export interface Sent {
  readonly id: string
  readonly topic: string
  /** Publish attempts it took, 1 when the first was confirmed. */
  readonly attempts: number
}

/** Rewrites envelopes just before they are published (stamps headers). Runs once per send, not per attempt. */
export type Interceptor = (envelopes: ReadonlyArray<Envelope>) => Effect.Effect<ReadonlyArray<Envelope>>

export interface PublisherOptions {
  /**
   * When to retry an unconfirmed batch; its input is the last error.
   * @default exponential from 100 ms, doubling, capped at 5 s, jittered, at most 8 retries
   */
  readonly retry?: Schedule.Schedule<unknown, PublishError> | undefined
  /**
   * Deadline of one publish attempt, after which it counts as a retryable `PublishTimeout`.
   * @default 30 seconds
   */
  readonly attemptTimeout?: Duration.Input | undefined
  /**
   * Most messages outstanding at once; more sends wait.
   * @default 4096
   */
  readonly maxInFlight?: number | undefined
  /** Applied in order to every batch before its first attempt. */
  readonly interceptors?: ReadonlyArray<Interceptor> | undefined
  /** Stamp producer id and sequence numbers for loss detection (see `LossDetector.stamp`). */
  readonly lossDetection?: LossDetector.StampOptions | boolean | undefined
}

/** The default retry schedule of a send. */
export const defaultRetry: Schedule.Schedule<unknown, PublishError> = Schedule.min([
  Schedule.exponential("100 millis", 2),
  Schedule.spaced("5 seconds")
]).pipe(Schedule.jittered, Schedule.upTo({ times: 8 }))

/** A message of a batch send. */
export interface Outgoing<A> extends Message.SendOptions {
  readonly payload: A
}

export interface PublisherShape {
  /** Sends one message; succeeds once the broker confirmed it. */
  readonly send: <A>(
    topic: Topic<A>,
    payload: A,
    options?: Message.SendOptions
  ) => Effect.Effect<Sent, SchemaViolation | InvalidHeader | SendFailed>
  /**
   * Sends messages of one topic as one batch. Validation happens first for
   * all of them, so an invalid message fails the batch before anything is sent.
   */
  readonly sendBatch: <A>(
    topic: Topic<A>,
    messages: ReadonlyArray<Outgoing<A>>
  ) => Effect.Effect<ReadonlyArray<Sent>, SchemaViolation | InvalidHeader | SendFailed>
  /** Publishes ready envelopes (re-sends, relays, re-drives) with the same confirm and retry rules. */
  readonly publish: (envelopes: ReadonlyArray<Envelope>) => Effect.Effect<ReadonlyArray<Sent>, SendFailed>
}

/** Reliable publishing over the current transport. */
export class Publisher extends Context.Service<Publisher, PublisherShape>()("@lossless/core/Publisher") {}

/**
 * The configured interceptors, with the loss-detection stamp last so nothing
 * disturbs its numbering, and the trace context first when observability is on.
 */
export const interceptorsOf = (
  options: Pick<PublisherOptions, "interceptors" | "lossDetection">
): Effect.Effect<ReadonlyArray<Interceptor>> =>
  Effect.gen(function* () {
    const stamping = options.lossDetection
    const stamp =
      stamping === undefined || stamping === false
        ? []
        : [(yield* LossDetector.stamp(stamping === true ? {} : stamping)).interceptor]
    const trace = (yield* Observability.Enabled) ? [Observability.traceparentInterceptor] : []
    return [...trace, ...(options.interceptors ?? []), ...stamp]
  })

/** Wraps a publish in a `lossless.send` span, and counts what it sent, when observability is on. */
const observedPublish =
  (transport: string, outbox: boolean) =>
  (
    publish: (envelopes: ReadonlyArray<Envelope>) => Effect.Effect<ReadonlyArray<Sent>, SendFailed>
  ): ((envelopes: ReadonlyArray<Envelope>) => Effect.Effect<ReadonlyArray<Sent>, SendFailed>) =>
  (envelopes) => {
    const topic = envelopes[0]?.topic ?? ""
    const tags = { topic }
    const { metrics, count } = Observability
    return publish(envelopes).pipe(
      Effect.tap((sent) => {
        let retries = 0
        for (const s of sent) retries += Math.max(0, s.attempts - 1)
        return Effect.all(
          [
            count(metrics.sent, envelopes.length, tags),
            outbox ? Effect.void : count(metrics.confirmed, sent.length, tags),
            count(metrics.sendRetries, retries, tags)
          ],
          { discard: true }
        )
      }),
      Effect.tapError((error) =>
        Effect.all(
          [
            count(metrics.sent, envelopes.length, tags),
            count(metrics.confirmed, error.confirmed.length, tags),
            count(metrics.sendFailed, error.failures.length, tags)
          ],
          { discard: true }
        )
      ),
      Effect.withSpan("lossless.send", {
        kind: "producer",
        attributes: Observability.attributes(transport, topic, {
          "messaging.operation.type": "send",
          "messaging.batch.message_count": envelopes.length,
          ...(outbox ? { "lossless.outbox": true } : {}),
          ...(envelopes.length === 1 ? { "messaging.message.id": envelopes[0]?.id } : {})
        })
      })
    )
  }

const intercept = (
  interceptors: ReadonlyArray<Interceptor>,
  envelopes: ReadonlyArray<Envelope>
): Effect.Effect<ReadonlyArray<Envelope>> =>
  interceptors.length === 0
    ? Effect.succeed(envelopes)
    : Effect.gen(function* () {
        let batch = envelopes
        for (const f of interceptors) batch = yield* f(batch)
        return batch
      })

/** A publisher whose `send` and `sendBatch` encode and then hand the envelopes to `publish`. */
const fromPublish = (
  publish: (envelopes: ReadonlyArray<Envelope>) => Effect.Effect<ReadonlyArray<Sent>, SendFailed>
): PublisherShape =>
  Publisher.of({
    send: (topic, payload, options) =>
      Effect.flatMap(Message.encode(topic, payload, options), (envelope) =>
        Effect.map(publish([envelope]), (sent) => sent[0] as Sent)
      ),
    sendBatch: (topic, messages) => Effect.flatMap(Message.encodeBatch(topic, messages), publish),
    publish
  })

/** Builds a publisher over the current transport. */
export const make = (options: PublisherOptions = {}): Effect.Effect<PublisherShape, never, Transport> =>
  Effect.gen(function* () {
    const transport = yield* Transport
    const schedule = options.retry ?? defaultRetry
    const timeout = Duration.fromInputUnsafe(options.attemptTimeout ?? "30 seconds")
    const timeoutMillis = Duration.toMillis(timeout)
    const maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? 4096))
    const interceptors = yield* interceptorsOf(options)
    const permits = yield* Semaphore.make(maxInFlight)

    const timedOut = (envelope: Envelope) =>
      new PublishTimeout({ topic: envelope.topic, messageId: envelope.id, timeoutMillis })

    // Written without a generator and with plain arrays: its loops run once per message.
    const publishOnce = (batch: ReadonlyArray<Envelope>): Effect.Effect<ReadonlyArray<Sent>, SendFailed> => {
      const sent: Array<Sent | undefined> = new Array(batch.length)
      const failures: Array<SendFailure> = []
      // Every attempt publishes all that is still pending, so a message settled by attempt n took n attempts.
      let attempts = 0
      // The last error of each position still pending, made when one first has to go again.
      let errors: Array<PublishError | undefined> | undefined
      // The positions still unconfirmed; `undefined` for the whole batch (the first attempt).
      let pending: Array<number> | undefined

      const attempt = Effect.suspend(() => {
        const current = pending
        const envelopes = current === undefined ? batch : current.map((i) => batch[i] as Envelope)
        return transport.publish(envelopes).pipe(
          Effect.timeoutOrElse({
            duration: timeout,
            orElse: () => Effect.succeed(envelopes.map((e) => Result.fail(timedOut(e))))
          }),
          Effect.flatMap((results) => {
            const n = ++attempts
            const again: Array<number> = []
            for (let k = 0; k < envelopes.length; k++) {
              const i = current === undefined ? k : (current[k] as number)
              const envelope = envelopes[k] as Envelope
              const result = results[k]
              if (result !== undefined && Result.isSuccess(result)) {
                sent[i] = { id: envelope.id, topic: envelope.topic, attempts: n }
              } else if (result === undefined || result.failure.retryable) {
                errors ??= new Array(batch.length)
                errors[i] = result === undefined ? timedOut(envelope) : result.failure
                again.push(i)
              } else {
                failures.push({ envelope, attempts: n, error: result.failure })
              }
            }
            pending = again
            return again.length === 0 ? Effect.void : Effect.fail(errors?.[again[0] as number] as PublishError)
          })
        )
      })

      // The schedule decides whether to go again; whatever is still pending when it gives up has failed.
      // The retry is set up only once the first attempt failed (setting it up costs more than a whole
      // attempt): it replays that first failure to the schedule, then goes on exactly as a retry from the start.
      const retried = (first: PublishError) => {
        let replay: PublishError | undefined = first
        const again = Effect.suspend(() => {
          if (replay === undefined) return attempt
          const error = replay
          replay = undefined
          return Effect.fail(error)
        })
        return Effect.ignore(Effect.retry(again, schedule))
      }
      return Effect.flatMap(Effect.catch(attempt, retried), () => {
        for (const i of pending ?? batch.map((_, i) => i))
          failures.push({ envelope: batch[i] as Envelope, attempts, error: errors?.[i] as PublishError })
        if (failures.length > 0) {
          return Effect.fail(
            new SendFailed({
              failures,
              confirmed: sent.flatMap((s) => (s === undefined ? [] : [s.id]))
            })
          )
        }
        return Effect.succeed(sent as Array<Sent>)
      })
    }

    const publishAll = (envelopes: ReadonlyArray<Envelope>): Effect.Effect<ReadonlyArray<Sent>, SendFailed> =>
      Semaphore.withPermits(
        permits,
        Math.min(envelopes.length, maxInFlight)
      )(Effect.flatMap(intercept(interceptors, envelopes), publishOnce))
    const observed = (yield* Observability.Enabled) ? observedPublish(transport.name, false)(publishAll) : publishAll
    const publish = (envelopes: ReadonlyArray<Envelope>): Effect.Effect<ReadonlyArray<Sent>, SendFailed> =>
      envelopes.length === 0 ? Effect.succeed([]) : observed(envelopes)

    return fromPublish(publish)
  })

/** A publisher over the current transport. */
export const layer = (options: PublisherOptions = {}): Layer.Layer<Publisher, never, Transport> =>
  Layer.effect(Publisher, make(options))

/**
 * A publisher that writes to an outbox instead of the broker: `send` returns
 * once the message is stored (in the caller's transaction, for a SQL store)
 * and the relay publishes it. `Sent.attempts` is 0: nothing was published yet.
 */
export const makeOutbox = (
  store: OutboxStore,
  options: Pick<PublisherOptions, "interceptors" | "lossDetection"> = {}
): Effect.Effect<PublisherShape> =>
  Effect.gen(function* () {
    const interceptors = yield* interceptorsOf(options)
    const publish = (envelopes: ReadonlyArray<Envelope>): Effect.Effect<ReadonlyArray<Sent>, SendFailed> =>
      Effect.gen(function* () {
        const batch = yield* intercept(interceptors, envelopes)
        yield* store.add(batch, "pending").pipe(
          Effect.mapError(
            (error) =>
              new SendFailed({
                failures: batch.map((envelope) => ({
                  envelope,
                  attempts: 0,
                  error: new TransportUnavailable({ transport: `${store.name} outbox`, reason: error.message })
                })),
                confirmed: []
              })
          )
        )
        return batch.map((e) => ({ id: e.id, topic: e.topic, attempts: 0 }))
      })
    if (!(yield* Observability.Enabled)) return fromPublish(publish)
    const observed = observedPublish(`${store.name} outbox`, true)(publish)
    return fromPublish((envelopes) => (envelopes.length === 0 ? Effect.succeed([]) : observed(envelopes)))
  })

/** A publisher that writes to `store`; run an `OutboxRelay` to publish what it holds. */
export const layerOutbox = (
  store: OutboxStore,
  options: Pick<PublisherOptions, "interceptors" | "lossDetection"> = {}
): Layer.Layer<Publisher> => Layer.effect(Publisher, makeOutbox(store, options))

/** Sends one message with the current publisher; succeeds once the broker confirmed it. */
export const send = <A>(
  topic: Topic<A>,
  payload: A,
  options?: Message.SendOptions
): Effect.Effect<Sent, SchemaViolation | InvalidHeader | SendFailed, Publisher> =>
  Publisher.use((p) => p.send(topic, payload, options))

/** Sends a batch of one topic with the current publisher. */
export const sendBatch = <A>(
  topic: Topic<A>,
  messages: ReadonlyArray<Outgoing<A>>
): Effect.Effect<ReadonlyArray<Sent>, SchemaViolation | InvalidHeader | SendFailed, Publisher> =>
  Publisher.use((p) => p.sendBatch(topic, messages))
