/**
 * A subscription: one consumer on its own channel, kept alive across
 * connection losses, as a scoped stream of deliveries.
 *
 * - Bounded: `basic.qos` limits the unacked deliveries of the consumer to the
 *   prefetch (capped by `maxPrefetch`); acks are manual.
 * - Transparent recovery: when the channel or connection drops, the stream
 *   waits for the connection to come back and consumes again. Deliveries of
 *   the old channel can no longer be settled (their delivery tags mean nothing
 *   on another channel); the broker redelivers them.
 * - Never a silent stall: a consumer the broker cancels (its queue was
 *   deleted) fails the stream with `GroupNotFound`, or `ConnectionLost` when
 *   the queue still exists, which the consumer runtime resubscribes after.
 * - Ending the stream cancels the consumer and closes the channel, so the
 *   broker requeues whatever was not settled.
 *
 * Settlements follow the contract: at most one succeeds. `retryLater` and
 * `deadLetter` publish a copy through the confirm channel and ack the
 * original only once the copy is confirmed; if the copy fails, the original
 * stays with the broker and the settlement fails.
 */
import {
  DeadLetter,
  type Delivery,
  Envelope,
  GroupNotFound,
  Headers,
  MessageId,
  Names,
  type PublishError,
  SettlementFailed,
  type SubscribeError,
  TopicNotFound,
  type Transport
} from "@lossless/core"
import type * as amqp from "amqplib"
import { Clock, Data, Deferred, Duration, Effect, Queue, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as RabbitError from "../RabbitError.ts"
import * as RabbitTopology from "../RabbitTopology.ts"
import type { Confirms, Target } from "./confirms.ts"
import type { ChannelHandle, Connection, ConnectionManager } from "./connection.ts"
import type { Declarer } from "./topology.ts"
import * as Wire from "./wire.ts"

/** The channel of a subscription closed while its connection stayed up: consume again on a new one. */
class ChannelLost extends Data.TaggedError("ChannelLost")<{ readonly reason: string }> {}

export interface Source {
  readonly topic: string
  readonly group: string
  /** The group's work queue, or its dead letters. */
  readonly kind: "main" | "dead"
}

interface Incoming {
  readonly handle: ChannelHandle
  readonly message: amqp.ConsumeMessage
}

export interface Dependencies {
  readonly manager: ConnectionManager
  readonly declarer: Declarer
  readonly confirms: Confirms
}

type Settlement = SettlementFailed["settlement"]

const noop = (): void => {}

export const subscribe = (
  { manager, declarer, confirms }: Dependencies,
  source: Source,
  options: Transport.SubscribeOptions
): Stream.Stream<Delivery.Delivery, SubscribeError> => {
  const { config } = manager
  const { topic, group, kind } = source
  const exchange = RabbitTopology.exchange(config.prefix, topic)
  const queueName =
    kind === "main"
      ? RabbitTopology.workQueue(config.prefix, topic, group)
      : RabbitTopology.deadLetterQueue(config.prefix, topic, group)
  const deadLetterQueue = RabbitTopology.deadLetterQueue(config.prefix, topic, group)
  // Dead letters carry the dead-letter destination as their topic, as `DeadLetter.envelope` names it.
  const envelopeTopic = kind === "main" ? topic : Names.deadLetter(topic, group)
  const prefetch = Math.min(Math.max(1, Math.floor(options.prefetch)), config.maxPrefetch)
  const names = { topic, group, exchange }

  /** Why a consumer the broker cancelled is gone: its queue (or topic) was deleted, or something else. */
  const whyCancelled = Effect.gen(function* () {
    const queueThere = yield* declarer.queueExists(queueName)
    if (queueThere) {
      return RabbitError.connectionLost(`the broker cancelled the consumer of ${queueName}`)
    }
    return new GroupNotFound({ topic, group })
  }).pipe(Effect.catch((error) => Effect.succeed(error)))

  const incoming = Stream.callback<Incoming, SubscribeError>((queue) =>
    Effect.gen(function* () {
      if (!Names.isValid(topic)) return yield* new TopicNotFound({ topic })
      if (!Names.isValid(group)) return yield* new GroupNotFound({ topic, group })
      let stopping = false
      let active: { readonly handle: ChannelHandle; consumerTag: string | undefined } | undefined

      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          stopping = true
          const current = active
          if (current === undefined || !current.handle.open) return Effect.void
          // Settlements of this subscription fail from here on; the broker requeues what is unsettled.
          current.handle.open = false
          const channel = current.handle.channel
          const tag = current.consumerTag
          return Effect.promise(async () => {
            if (tag !== undefined) await channel.cancel(tag).catch(noop)
            await channel.close().catch(noop)
          }).pipe(Effect.timeoutOption("2 seconds"), Effect.asVoid)
        })
      )

      /** Consumes on one channel until it ends; returns when the connection went away. */
      const session = (connection: Connection) =>
        Effect.gen(function* () {
          if (stopping) return yield* Effect.interrupt
          const opened = yield* Effect.result(manager.openChannel(connection, "plain"))
          if (opened._tag === "Failure") {
            if (!connection.open) return
            return yield* new ChannelLost({ reason: opened.failure.reason })
          }
          const handle = opened.success
          const current: { readonly handle: ChannelHandle; consumerTag: string | undefined } = {
            handle,
            consumerTag: undefined
          }
          active = current
          const cancelled = Deferred.makeUnsafe<void>()
          const started = yield* Effect.tryPromise({
            try: async () => {
              await handle.channel.prefetch(prefetch)
              return handle.channel.consume(
                queueName,
                (message) => {
                  if (message === null) Deferred.doneUnsafe(cancelled, Effect.void)
                  else Queue.offerUnsafe(queue, { handle, message })
                },
                { noAck: false }
              )
            },
            catch: (error) => error
          }).pipe(Effect.result)
          if (started._tag === "Failure") {
            const error = started.failure
            if (RabbitError.replyCode(error) === 404) {
              const topicThere = yield* declarer.exchangeExists(exchange).pipe(Effect.orElseSucceed(() => true))
              return yield* topicThere ? new GroupNotFound({ topic, group }) : new TopicNotFound({ topic })
            }
            yield* manager.closeChannel(handle)
            if (!connection.open) return
            const failure = RabbitError.subscribeFailure(error, names, manager.scrub)
            if (failure._tag === "ConnectionLost") return yield* new ChannelLost({ reason: failure.reason })
            return yield* failure
          }
          current.consumerTag = started.success.consumerTag
          const ended = yield* Effect.raceFirst(
            Effect.as(Deferred.await(handle.closed), "closed" as const),
            Effect.as(Deferred.await(cancelled), "cancelled" as const)
          )
          if (ended === "cancelled") {
            yield* manager.closeChannel(handle)
            return yield* yield* whyCancelled
          }
          if (stopping) return yield* Effect.interrupt
          // Channels close before their connection reports closing: let that report land first.
          yield* Effect.yieldNow
          if (!connection.open) return
          const why = handle.error === undefined ? "closed" : manager.scrub(RabbitError.describe(handle.error))
          return yield* new ChannelLost({ reason: `the channel of ${queueName} closed: ${why}` })
        })

      // A channel lost on a live connection is reopened on the reconnect schedule, started afresh per connection.
      const onConnection = (connection: Connection) =>
        session(connection).pipe(
          Effect.retry({
            schedule: config.reconnectSchedule,
            while: (error) => error._tag === "ChannelLost"
          }),
          Effect.catchTag("ChannelLost", (error) => Effect.fail(RabbitError.connectionLost(error.reason)))
        )

      return yield* Effect.forever(Effect.flatMap(manager.awaitConnection, onConnection))
    })
  )

  // Chunk by chunk, as the broker's deliveries arrive together: consumers downstream
  // (dedupe claims a whole chunk in one store call) see them together too.
  return incoming.pipe(
    Stream.mapArrayEffect(toDeliveries),
    Stream.filter((delivery): delivery is Delivery.Delivery => delivery !== undefined)
  )

  // Without a generator: this runs once per chunk of deliveries. A malformed message becomes `undefined`.
  function toDeliveries(
    batch: NonEmptyReadonlyArray<Incoming>
  ): Effect.Effect<NonEmptyReadonlyArray<Delivery.Delivery | undefined>> {
    return Effect.clockWith((clock) => {
      const now = clock.currentTimeMillisUnsafe()
      const out: Array<Delivery.Delivery | undefined> = []
      let malformed: Array<Effect.Effect<void>> | undefined
      for (const { handle, message } of batch) {
        const decoded = Envelope.decodeWire({
          topic: envelopeTopic,
          payload: message.content,
          headers: Wire.headers(message, now)
        })
        if (decoded._tag === "Success") {
          out.push(makeDelivery(handle, message, decoded.success))
        } else {
          out.push(undefined)
          if (malformed === undefined) malformed = []
          malformed.push(quarantine(handle, message, decoded.failure.message))
        }
      }
      const deliveries = out as unknown as NonEmptyReadonlyArray<Delivery.Delivery | undefined>
      return malformed === undefined
        ? Effect.succeed(deliveries)
        : Effect.as(
            Effect.forEach(malformed, (move) => move, { discard: true }),
            deliveries
          )
    })
  }

  /**
   * A message without a Lossless id (not from a Lossless producer) cannot be
   * handed to a consumer: dedupe would have no key. It goes to the group's
   * dead letters under a new id with the reason, then is acked; if that
   * fails, it stays unacked with the broker.
   */
  function quarantine(handle: ChannelHandle, message: amqp.ConsumeMessage, reason: string): Effect.Effect<void> {
    return Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const id = yield* MessageId.make
      const envelope = Envelope.make({
        id,
        topic: envelopeTopic,
        payload: message.content,
        timestamp: now,
        headers: {
          ...Wire.headers(message, now),
          [Headers.OriginalTopic]: topic,
          [Headers.OriginalGroup]: group,
          [Headers.ErrorMessage]: `MalformedEnvelope: ${reason}`,
          [Headers.FailedAt]: new Date(now).toISOString()
        }
      })
      const outcome = yield* publishCopy(envelope, deadLetterQueue, message.content)
      if (outcome !== undefined) {
        return yield* Effect.logError(`lossless: cannot move a malformed message off ${queueName}: ${outcome.message}`)
      }
      try {
        if (handle.open) handle.channel.ack(message)
      } catch {
        // The channel closed meanwhile: the broker redelivers it, and it is quarantined again.
      }
      yield* Effect.logWarning(`lossless: moved a malformed message from ${queueName} to ${deadLetterQueue}: ${reason}`)
    })
  }

  /** Publishes a copy straight to a queue; `undefined` once confirmed, else why not. */
  function publishCopy(
    envelope: Envelope.Envelope,
    queue: string,
    content: Buffer
  ): Effect.Effect<PublishError | undefined> {
    const target: Target = {
      exchange: "",
      routingKey: queue,
      content,
      properties: Wire.properties(envelope),
      topic: envelope.topic,
      messageId: envelope.id
    }
    return Effect.suspend(() => {
      const outcome = Deferred.makeUnsafe<PublishError | undefined>()
      return Effect.andThen(
        confirms.send(target, (error) => Deferred.doneUnsafe(outcome, Effect.succeed(error))),
        Deferred.await(outcome)
      )
    })
  }

  function makeDelivery(handle: ChannelHandle, message: amqp.ConsumeMessage, envelope: Envelope.Envelope) {
    let state: "open" | "settling" | "settled" = "open"
    const attempt = Envelope.attempt(envelope)
    const refuse = (settlement: Settlement, reason: string) =>
      Effect.fail(new SettlementFailed({ messageId: envelope.id, settlement, reason }))
    const stale = () =>
      handle.connection.open
        ? "its channel is closed (the subscription ended or the channel failed); the broker will redeliver the message"
        : `the connection was lost (${handle.connection.closeReason}); the broker will redeliver the message`

    const begin = (settlement: Settlement): Effect.Effect<void, SettlementFailed> =>
      Effect.suspend(() => {
        if (state === "settled") return refuse(settlement, "the delivery was already settled")
        if (state === "settling") return refuse(settlement, "another settlement of this delivery is in progress")
        if (!handle.open) return refuse(settlement, stale())
        state = "settling"
        return Effect.void
      })

    // Acks go only to the channel the delivery came on: its delivery tag means nothing elsewhere.
    const ackOriginal = (settlement: Settlement, after: string): Effect.Effect<void, SettlementFailed> =>
      Effect.suspend(() => {
        state = "settled"
        if (!handle.open) return refuse(settlement, `${after}${stale()}`)
        try {
          handle.channel.ack(message)
        } catch (error) {
          return refuse(settlement, `${after}the ack could not be sent: ${RabbitError.describe(error)}`)
        }
        return Effect.void
      })

    /** Stores a copy (confirmed), then acks the original; a failed copy leaves the delivery unsettled. */
    const viaCopy = (
      settlement: Settlement,
      copy: Effect.Effect<{ readonly envelope: Envelope.Envelope; readonly queue: string }, SettlementFailed>
    ): Effect.Effect<void, SettlementFailed> =>
      Effect.andThen(
        begin(settlement),
        Effect.gen(function* () {
          const { envelope: out, queue } = yield* copy
          const failed = yield* publishCopy(out, queue, message.content)
          if (failed !== undefined) {
            if (failed._tag === "Unroutable") declarer.forgetRetryQueue(queue)
            return yield* refuse(
              settlement,
              `the copy for ${queue} was not confirmed (${failed.message}); the message stays with the broker`
            )
          }
          return yield* ackOriginal(settlement, `the copy is stored in ${queue} but `)
        }).pipe(
          // This settlement owns the delivery until it ends: one that stored nothing leaves it unsettled.
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (exit._tag === "Failure" && state === "settling") state = "open"
            })
          )
        )
      )

    const delivery: Delivery.Delivery = {
      envelope,
      group,
      attempt,
      redelivered: message.fields.redelivered,
      settleable: () => state === "open" && handle.open,
      ack: Effect.andThen(begin("ack"), ackOriginal("ack", "")),
      retryLater: (delay, options) =>
        viaCopy(
          "retryLater",
          Effect.suspend(() => {
            const requested = Duration.toMillis(Duration.fromInputUnsafe(delay))
            const millis = RabbitTopology.bucket(config.retryDelays, Number.isNaN(requested) ? 0 : Math.ceil(requested))
            return declarer.retryQueue(queueName, millis).pipe(
              Effect.mapError(
                (error) =>
                  new SettlementFailed({
                    messageId: envelope.id,
                    settlement: "retryLater",
                    reason: `cannot declare the retry queue: ${error.message}`
                  })
              ),
              Effect.map((queue) => ({
                envelope: Envelope.withAttempt(envelope, options?.countAttempt === false ? attempt : attempt + 1),
                queue
              }))
            )
          })
        ),
      deadLetter: (reason) =>
        viaCopy(
          "deadLetter",
          Effect.map(Clock.currentTimeMillis, (now) => ({
            envelope:
              kind === "main"
                ? DeadLetter.envelope(envelope, { group, reason, failedAt: now, attempt })
                : // A dead letter dead-lettered again stays in the same queue with the new reason.
                  Envelope.withHeaders(envelope, {
                    [Headers.ErrorMessage]: reason,
                    [Headers.FailedAt]: new Date(now).toISOString()
                  }),
            queue: deadLetterQueue
          }))
        )
    }
    return delivery
  }
}
