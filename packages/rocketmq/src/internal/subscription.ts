/**
 * A subscription: one simple consumer per (topic, group), receiving with an
 * invisible duration and settling each message by its latest receipt handle.
 *
 * - Bounded: a receive asks for at most `prefetch` minus the unsettled
 *   deliveries, so no more than `prefetch` are ever held.
 * - Kept invisible while in hand: one shared timer extends, with
 *   ChangeInvisibleDuration, every unsettled delivery whose invisibility is
 *   about to end, and keeps the new receipt handle. A handler that takes
 *   longer than the invisible duration is not handed to another consumer.
 * - Settlements: `ack` acks by the latest receipt handle; `retryLater` makes
 *   the message invisible for the delay (the broker redelivers it then, with
 *   its delivery attempt raised); `deadLetter` stores a copy with the reason
 *   in the group's dead-letter topic, then acks.
 * - Ending the stream hands every unsettled delivery back at once (invisible
 *   duration 0) and shuts the consumer down; a receive still in flight hands
 *   back what it brings.
 *
 * The attempt count is the broker's delivery attempt, less the hand-backs
 * this process made that were not failed attempts (an interrupted
 * subscription, `retryLater` with `countAttempt: false`). The broker cannot
 * be told not to count a redelivery, so across a process crash those are
 * counted: an attempt count is never too low, at worst a message reaches its
 * dead letters a retry early.
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
import { Clock, Deferred, Duration, Effect, Queue, Schedule, Semaphore, Stream } from "effect"
import type { MessageView } from "rocketmq-client-nodejs"
import type * as RocketConfig from "../RocketConfig.ts"
import * as RocketError from "../RocketError.ts"
import * as RocketTopology from "../RocketTopology.ts"
import * as Clients from "./clients.ts"
import * as Wire from "./wire.ts"

export interface Source {
  readonly topic: string
  readonly group: string
  /** The group's deliveries of the topic, or its dead letters. */
  readonly kind: "main" | "dead"
}

/**
 * Redeliveries that were not failed attempts, per (consumer group, message
 * id), so the next delivery's attempt can leave them out. Bounded: the oldest
 * entries go first.
 */
export class Ledger {
  readonly #entries = new Map<string, number>()
  readonly #max: number
  constructor(max = 100_000) {
    this.#max = max
  }
  uncount(key: string): void {
    const n = this.#entries.get(key) ?? 0
    this.#entries.delete(key)
    this.#entries.set(key, n + 1)
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#entries.delete(oldest.value)
    }
  }
  uncounted(key: string): number {
    return this.#entries.get(key) ?? 0
  }
  forget(key: string): void {
    this.#entries.delete(key)
  }
}

export interface Dependencies {
  readonly config: RocketConfig.RocketConfig
  /** Stores a copy on `topic` (strictly confirmed), for dead letters. */
  readonly sendCopy: (envelope: Envelope.Envelope, topic: string) => Effect.Effect<void, PublishError>
  readonly ledger: Ledger
}

type Settlement = SettlementFailed["settlement"]

interface Tracked {
  readonly view: MessageView
  /** When the current invisibility ends, epoch milliseconds. */
  deadline: number
  state: "open" | "settling" | "settled" | "closed"
  /** Serialises extensions and settlements: both replace the receipt handle. */
  readonly lock: Semaphore.Semaphore
}

/** How long a receive waits for more free slots before asking for fewer messages. */
const gatherWindow = Duration.millis(20)

const millis = (d: Duration.Duration): number => Math.max(0, Math.ceil(Duration.toMillis(d)))

export const subscribe = (
  { config, sendCopy, ledger }: Dependencies,
  source: Source,
  options: Transport.SubscribeOptions
): Stream.Stream<Delivery.Delivery, SubscribeError> => {
  const { topic, group, kind } = source
  const rocketTopic = kind === "main" ? topic : RocketTopology.deadLetterTopic(topic, group)
  const consumerGroup =
    kind === "main" ? RocketTopology.consumerGroup(topic, group) : RocketTopology.deadLetterGroup(topic, group)
  const deadLetterTopic = RocketTopology.deadLetterTopic(topic, group)
  const envelopeTopic = kind === "main" ? topic : Names.deadLetter(topic, group)
  const prefetch = Math.min(Math.max(1, Math.floor(options.prefetch)), config.maxPrefetch)
  const invisibleMillis = millis(config.invisibleDuration)
  const maxInvisibleMillis = millis(config.maxInvisibleDuration)
  // Extend when less than half the invisible duration is left; look three times per duration.
  const renewEvery = Duration.millis(Math.max(50, Math.floor(invisibleMillis / 3)))
  const names = { topic: rocketTopic, group, consumerGroup }

  return Stream.callback<Delivery.Delivery, SubscribeError>((queue) =>
    Effect.gen(function* () {
      if (!Names.isValid(topic)) return yield* new TopicNotFound({ topic })
      if (!Names.isValid(group)) return yield* new GroupNotFound({ topic, group })
      const consumer = yield* Clients.consumer(config, names)
      const tracked = new Set<Tracked>()
      let unsettled = 0
      let closed = false
      let wake: Deferred.Deferred<void> | undefined

      const handBack = (view: MessageView): Promise<void> =>
        consumer.changeInvisibleDuration(view, 0).then(
          () => {},
          () => {}
        )

      const release = (t: Tracked, state: "settled" | "open") => {
        if (state === "open") {
          t.state = "open"
          return
        }
        t.state = "settled"
        if (tracked.delete(t)) unsettled--
        const waiting = wake
        wake = undefined
        if (waiting !== undefined) Deferred.doneUnsafe(waiting, Effect.void)
      }

      // Runs before the consumer shuts down: unsettled deliveries go back to the broker now, not after their invisibility.
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          closed = true
          // A settlement under way finishes on its own; only idle deliveries are handed back.
          const open = [...tracked].filter((t) => t.state === "open")
          for (const t of open) {
            t.state = "closed"
            // An interruption is not a failed attempt.
            ledger.uncount(ledgerKey(t.view))
          }
          tracked.clear()
          return Effect.promise(() => Promise.all(open.map((t) => handBack(t.view)))).pipe(
            Effect.timeoutOption("3 seconds"),
            Effect.asVoid
          )
        })
      )

      const ledgerKey = (view: MessageView): string =>
        `${consumerGroup}/${view.properties.get(Headers.MessageId) ?? view.messageId}`

      // One timer for every delivery in hand, not one per message.
      const renew = Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const due = [...tracked].filter((t) => t.state === "open" && t.deadline - now < invisibleMillis / 2)
        yield* Effect.forEach(
          due,
          (t) =>
            t.lock.withPermit(
              Effect.suspend(() => {
                if (t.state !== "open") return Effect.void
                return Effect.tryPromise(() => consumer.changeInvisibleDuration(t.view, invisibleMillis)).pipe(
                  Effect.flatMap(() =>
                    Effect.map(Clock.currentTimeMillis, (at) => {
                      t.deadline = at + invisibleMillis
                    })
                  ),
                  Effect.catch((error) =>
                    Effect.logWarning(
                      `lossless: cannot extend the invisibility of ${t.view.messageId} on ${rocketTopic}: ${RocketError.describe(error)}; it may be redelivered`
                    )
                  )
                )
              })
            ),
          { concurrency: 16, discard: true }
        )
      })
      yield* Effect.forkScoped(Effect.repeat(renew, Schedule.spaced(renewEvery)))

      /** Receives; a receive cut short by the end of the stream hands back whatever it brings later. */
      const receiveOnce = (n: number) =>
        Effect.callback<ReadonlyArray<MessageView>, unknown>((resume) => {
          let abandoned = false
          consumer.receive(n, invisibleMillis).then(
            (views) => {
              if (abandoned || closed) {
                for (const view of views) {
                  ledger.uncount(ledgerKey(view))
                  void handBack(view)
                }
              } else resume(Effect.succeed(views))
            },
            (error: unknown) => {
              if (!abandoned) resume(Effect.fail(error))
            }
          )
          return Effect.sync(() => {
            abandoned = true
          })
        }).pipe(Effect.mapError((error) => RocketError.subscribeFailure(error, { topic: rocketTopic, group })))

      const receive = (n: number) =>
        receiveOnce(n).pipe(
          Effect.retry({ schedule: config.reconnectSchedule, while: (error) => error._tag === "ConnectionLost" }),
          Effect.mapError((error) =>
            error._tag === "TopicNotFound" && kind === "main"
              ? new TopicNotFound({ topic })
              : error._tag === "GroupNotFound"
                ? new GroupNotFound({ topic, group })
                : error
          )
        )

      const track = (view: MessageView): Effect.Effect<Delivery.Delivery | undefined> =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const t: Tracked = {
            view,
            deadline: now + invisibleMillis,
            state: "open",
            lock: Semaphore.makeUnsafe(1)
          }
          tracked.add(t)
          unsettled++
          const decoded = yield* Effect.result(
            Envelope.fromWire({ topic: envelopeTopic, payload: view.body, headers: Wire.headers(view) })
          )
          if (decoded._tag === "Success") return makeDelivery(t, decoded.success)
          yield* quarantine(t, decoded.failure.message)
          return undefined
        })

      /**
       * A message without a Lossless id cannot be handed to a consumer (dedupe
       * would have no key): it is stored in the group's dead letters under a
       * new id with the reason, then acked. If that fails it stays with the
       * broker, which redelivers it.
       */
      const quarantine = (t: Tracked, reason: string) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const id = yield* MessageId.make
          const copy = Envelope.make({
            id,
            topic: deadLetterTopic,
            payload: t.view.body,
            timestamp: now,
            headers: {
              ...Object.fromEntries([...t.view.properties].filter(([name]) => !Headers.isReserved(name))),
              [Headers.OriginalTopic]: topic,
              [Headers.OriginalGroup]: group,
              [Headers.ErrorMessage]: `MalformedEnvelope: ${reason}`,
              [Headers.FailedAt]: new Date(now).toISOString()
            }
          })
          const stored = yield* Effect.result(sendCopy(copy, deadLetterTopic))
          if (stored._tag === "Failure") {
            release(t, "settled")
            return yield* Effect.logError(
              `lossless: cannot move a malformed message off ${rocketTopic}: ${stored.failure.message}`
            )
          }
          yield* Effect.tryPromise(() => consumer.ack(t.view)).pipe(Effect.ignore)
          release(t, "settled")
          yield* Effect.logWarning(
            `lossless: moved a malformed message from ${rocketTopic} to ${deadLetterTopic}: ${reason}`
          )
        })

      const makeDelivery = (t: Tracked, envelope: Envelope.Envelope): Delivery.Delivery => {
        const key = ledgerKey(t.view)
        const brokerAttempt = Math.max(1, t.view.deliveryAttempt ?? 1)
        const attempt = Math.max(1, brokerAttempt - ledger.uncounted(key))
        const refuse = (settlement: Settlement, reason: string) =>
          Effect.fail(new SettlementFailed({ messageId: envelope.id, settlement, reason }))

        /** Runs a settlement holding the delivery; one that fails leaves it unsettled. */
        const settle = (
          settlement: Settlement,
          run: Effect.Effect<void, SettlementFailed>
        ): Effect.Effect<void, SettlementFailed> =>
          Effect.suspend(() => {
            if (t.state === "settled") return refuse(settlement, "the delivery was already settled")
            if (t.state === "settling") return refuse(settlement, "another settlement of this delivery is in progress")
            if (t.state === "closed" || closed) {
              return refuse(settlement, "its subscription ended; the broker will redeliver the message")
            }
            t.state = "settling"
            return t.lock.withPermit(run).pipe(
              Effect.onExit((exit) =>
                Effect.sync(() => {
                  if (t.state !== "settling") return
                  release(t, exit._tag === "Success" ? "settled" : "open")
                })
              )
            )
          })

        const call = (settlement: Settlement, what: string, promise: () => Promise<unknown>) =>
          Effect.tryPromise({ try: promise, catch: (error) => error }).pipe(
            Effect.asVoid,
            Effect.catch((error) =>
              refuse(
                settlement,
                `${what} failed (${RocketError.describe(error)}); the broker redelivers the message when its invisibility ends`
              )
            )
          )

        return {
          envelope,
          group,
          attempt,
          redelivered: brokerAttempt > 1,
          settleable: () => t.state === "open" && !closed,
          ack: settle(
            "ack",
            Effect.tap(
              call("ack", "the ack", () => consumer.ack(t.view)),
              () => Effect.sync(() => ledger.forget(key))
            )
          ),
          retryLater: (delay, retryOptions) =>
            settle(
              "retryLater",
              Effect.suspend(() => {
                const requested = Duration.toMillis(Duration.fromInputUnsafe(delay))
                const ms = Math.min(maxInvisibleMillis, Number.isNaN(requested) ? 0 : Math.max(0, Math.ceil(requested)))
                return Effect.tap(
                  call("retryLater", "changing the invisible duration", () =>
                    consumer.changeInvisibleDuration(t.view, ms)
                  ),
                  () =>
                    Effect.sync(() => {
                      if (retryOptions?.countAttempt === false) ledger.uncount(key)
                    })
                )
              })
            ),
          deadLetter: (reason) =>
            settle(
              "deadLetter",
              Effect.gen(function* () {
                const now = yield* Clock.currentTimeMillis
                const copy =
                  kind === "main"
                    ? DeadLetter.envelope(envelope, { group, reason, failedAt: now, attempt })
                    : // A dead letter dead-lettered again stays in the same topic with the new reason.
                      Envelope.withHeaders(envelope, {
                        [Headers.ErrorMessage]: reason,
                        [Headers.FailedAt]: new Date(now).toISOString()
                      })
                const stored = yield* Effect.result(sendCopy(copy, deadLetterTopic))
                if (stored._tag === "Failure") {
                  return yield* refuse(
                    "deadLetter",
                    `the copy for ${deadLetterTopic} was not confirmed (${stored.failure.message}); the message stays with the broker`
                  )
                }
                yield* call("deadLetter", `the copy is stored in ${deadLetterTopic} but the ack`, () =>
                  consumer.ack(t.view)
                )
                ledger.forget(key)
              })
            )
        }
      }

      // A receive is a round trip: with only a slot or two free, wait a moment for more settlements
      // to ask for a fuller batch, but never so long that a free slot goes unused.
      const fullBatch = Math.min(config.receiveBatch, Math.ceil(prefetch / 2))
      const awaitSettlement = (within: Duration.Duration | undefined) => {
        const waiting = Deferred.makeUnsafe<void>()
        wake = waiting
        return within === undefined
          ? Deferred.await(waiting)
          : Effect.asVoid(Effect.timeoutOption(Deferred.await(waiting), within))
      }
      while (true) {
        while (unsettled >= prefetch) yield* awaitSettlement(undefined)
        if (prefetch - unsettled < fullBatch && unsettled > 0) yield* awaitSettlement(gatherWindow)
        const views = yield* receive(Math.min(prefetch - unsettled, config.receiveBatch))
        for (const view of views) {
          const delivery = yield* track(view)
          if (delivery !== undefined) yield* Queue.offer(queue, delivery)
        }
      }
    })
  )
}
