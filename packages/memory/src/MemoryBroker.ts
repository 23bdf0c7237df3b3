/**
 * The in-process broker behind `MemoryTransport`: topics, groups, their
 * queues and dead letters, held in memory.
 *
 * It keeps the contract's semantics exactly, so it serves as the reference
 * every other transport is compared against: every group gets every message,
 * members of one group compete, at most `prefetch` deliveries are unsettled
 * per subscriber, unsettled deliveries go back to their place when a
 * subscriber leaves, `retryLater` redelivers after the delay with the attempt
 * raised, `deadLetter` moves the message with its reason. Time comes from the
 * Effect clock, so `TestClock` controls delays. Nothing survives the process.
 *
 * @since 0.1.0
 */
import {
  DeadLetter,
  type Delivery,
  Envelope,
  GroupNotFound,
  Headers,
  type InvalidName,
  MessageTooLarge,
  Names,
  SettlementFailed,
  TopicNotFound,
  type Transport,
  Unroutable
} from "@lossless/core"
import { Clock, Duration, Effect, Queue, Result, type Scope, Stream } from "effect"
import { type Entry, GroupQueue, type Subscriber } from "./internal/GroupQueue.ts"
import { Timers } from "./internal/Timers.ts"

export interface MemoryBrokerOptions {
  /**
   * Largest payload accepted, in bytes.
   * @default 16 MiB
   */
  readonly maxMessageBytes?: number | undefined
}

/** Counts for one group of one topic. */
export interface GroupStats {
  /** Waiting to be handed out. */
  readonly ready: number
  /** Handed out, not settled. */
  readonly inflight: number
  /** Waiting for a delay (retryLater or delayed delivery). */
  readonly delayed: number
  /** In the group's dead-letter destination, settled or not. */
  readonly deadLetters: number
}

interface GroupState {
  readonly main: GroupQueue
  readonly dead: GroupQueue
}

export class MemoryBroker {
  readonly maxMessageBytes: number
  private readonly topics = new Map<string, Map<string, GroupState>>()
  private readonly timers: Timers

  private constructor(timers: Timers, options: MemoryBrokerOptions) {
    this.timers = timers
    this.maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024
  }

  /** A new broker whose timer fiber lives in the current scope. */
  static make(options: MemoryBrokerOptions = {}): Effect.Effect<MemoryBroker, never, Scope.Scope> {
    return Effect.map(Timers.make, (timers) => new MemoryBroker(timers, options))
  }

  /** Declares topics and groups; declaring again changes nothing. */
  ensureTopology(topology: Transport.Topology): Effect.Effect<void, InvalidName> {
    const broker = this
    return Effect.gen(function* () {
      for (const topic of topology.topics) yield* Names.validate("topic", topic)
      for (const { topic, group } of topology.groups) {
        yield* Names.validate("topic", topic)
        yield* Names.validate("group", group)
      }
      for (const topic of topology.topics) broker.groupsOf(topic, true)
      for (const { topic, group } of topology.groups) {
        const groups = broker.groupsOf(topic, true) as Map<string, GroupState>
        if (!groups.has(group)) {
          const dead: GroupQueue = new GroupQueue(
            topic,
            group,
            broker.deliver(() => dead)
          )
          const main = new GroupQueue(
            topic,
            group,
            broker.deliver(() => dead)
          )
          groups.set(group, { main, dead })
        }
      }
    })
  }

  /** Stores each envelope in every group of its topic; one result per envelope. */
  publish(envelopes: ReadonlyArray<Envelope.Envelope>): Effect.Effect<ReadonlyArray<Transport.PublishResult>> {
    return Effect.map(Clock.currentTimeMillis, (now) => envelopes.map((envelope) => this.store(envelope, now)))
  }

  /** Deliveries of `topic` to `group` (or of its dead letters) as a scoped stream. */
  subscribe(
    topic: string,
    group: string,
    options: Transport.SubscribeOptions,
    source: "main" | "dead"
  ): Stream.Stream<Delivery.Delivery, TopicNotFound | GroupNotFound> {
    const broker = this
    return Stream.unwrap(
      Effect.gen(function* () {
        const groups = broker.groupsOf(topic, false)
        if (groups === undefined) return yield* new TopicNotFound({ topic })
        const state = groups.get(group)
        if (state === undefined) return yield* new GroupNotFound({ topic, group })
        const queue = source === "main" ? state.main : state.dead
        const deliveries = yield* Queue.unbounded<Delivery.Delivery>()
        const prefetch = Math.max(1, Math.floor(options.prefetch))
        const subscriber = queue.addSubscriber(prefetch, deliveries)
        yield* Effect.addFinalizer(() =>
          Effect.andThen(
            Effect.sync(() => queue.removeSubscriber(subscriber)),
            Queue.shutdown(deliveries)
          )
        )
        return Stream.fromQueue(deliveries)
      })
    )
  }

  /** Counts for a group, or `undefined` when it is not declared. */
  stats(topic: string, group: string): GroupStats | undefined {
    const state = this.topics.get(topic)?.get(group)
    if (state === undefined) return undefined
    return {
      ready: state.main.readyCount,
      inflight: state.main.inflightCount,
      delayed: state.main.delayed,
      deadLetters: state.dead.readyCount + state.dead.inflightCount + state.dead.delayed
    }
  }

  private groupsOf(topic: string, create: boolean): Map<string, GroupState> | undefined {
    let groups = this.topics.get(topic)
    if (groups === undefined && create) {
      groups = new Map()
      this.topics.set(topic, groups)
    }
    return groups
  }

  private store(envelope: Envelope.Envelope, now: number): Transport.PublishResult {
    const groups = this.topics.get(envelope.topic)
    if (groups === undefined) return Result.fail(new TopicNotFound({ topic: envelope.topic }))
    if (groups.size === 0) return Result.fail(new Unroutable({ topic: envelope.topic, messageId: envelope.id }))
    if (envelope.payload.byteLength > this.maxMessageBytes) {
      return Result.fail(
        new MessageTooLarge({
          topic: envelope.topic,
          messageId: envelope.id,
          size: envelope.payload.byteLength,
          limit: this.maxMessageBytes
        })
      )
    }
    // A broker keeps its own copy: later changes to the caller's buffer must not reach consumers.
    const stored: Envelope.Envelope = {
      ...envelope,
      payload: envelope.payload.slice(),
      headers: { ...envelope.headers }
    }
    for (const { main } of groups.values()) {
      if (stored.deliverAt !== undefined && stored.deliverAt > now) this.later(main, stored.deliverAt, stored, 1)
      else main.enqueue(stored, 1)
    }
    return Result.succeed(undefined)
  }

  private later(queue: GroupQueue, due: number, envelope: Envelope.Envelope, attempt: number): void {
    queue.delayed++
    this.timers.schedule(due, () => {
      queue.delayed--
      queue.enqueue(envelope, attempt)
    })
  }

  /** Builds the deliveries of a queue whose dead letters go to `deadQueue()`. */
  private deliver(deadQueue: () => GroupQueue) {
    return (queue: GroupQueue, subscriber: Subscriber, deliveryId: number, entry: Entry): Delivery.Delivery => {
      const broker = this
      // Each delivery gets bytes of its own, as from a socket: a consumer changing them in place
      // must not change what other groups or a redelivery receive.
      const stored = entry.attempt > 1 ? Envelope.withAttempt(entry.envelope, entry.attempt) : entry.envelope
      const envelope = { ...stored, payload: stored.payload.slice() }
      const take = (settlement: SettlementFailed["settlement"]): Effect.Effect<Entry, SettlementFailed> =>
        Effect.suspend(() => {
          const held = queue.release(subscriber, deliveryId)
          return typeof held === "string"
            ? Effect.fail(new SettlementFailed({ messageId: entry.envelope.id, settlement, reason: held }))
            : Effect.succeed(held)
        })
      return {
        envelope,
        group: queue.group,
        attempt: entry.attempt,
        redelivered: entry.returned,
        settleable: () => !subscriber.closed && subscriber.held.has(deliveryId),
        ack: Effect.map(take("ack"), () => queue.pump()),
        retryLater: (delay, options) =>
          Effect.gen(function* () {
            const now = yield* Clock.currentTimeMillis
            const held = yield* take("retryLater")
            const attempt = options?.countAttempt === false ? held.attempt : held.attempt + 1
            broker.later(queue, now + Duration.toMillis(delay), held.envelope, attempt)
            queue.pump()
          }),
        deadLetter: (reason) =>
          Effect.gen(function* () {
            const now = yield* Clock.currentTimeMillis
            const held = yield* take("deadLetter")
            const target = deadQueue()
            const dead =
              target === queue
                ? Envelope.withHeaders(held.envelope, {
                    [Headers.ErrorMessage]: reason,
                    [Headers.FailedAt]: new Date(now).toISOString()
                  })
                : DeadLetter.envelope(held.envelope, {
                    group: queue.group,
                    reason,
                    failedAt: now,
                    attempt: held.attempt
                  })
            target.enqueue(dead, 1)
            queue.pump()
          })
      }
    }
  }
}
