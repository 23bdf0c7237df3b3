/**
 * Declares exchanges and queues, remembers what was declared so it can be
 * declared again on a new connection (a broker that lost its definitions),
 * and answers "does this exchange exist?" for publishes to topics this
 * process never declared.
 *
 * Declarations run one at a time on a dedicated channel: a refused one (406,
 * arguments differ) closes that channel, and must not take other callers'
 * declarations down with it. Existence checks are passive declarations on a
 * throwaway channel, because a miss (404) closes the channel it runs on.
 */
import { Names, type TopologyError, type Transport } from "@lossless/core"
import type * as amqp from "amqplib"
import { Clock, Deferred, Duration, Effect, Exit, Semaphore } from "effect"
import * as RabbitError from "../RabbitError.ts"
import * as RabbitTopology from "../RabbitTopology.ts"
import type { ChannelHandle, Connection, ConnectionManager } from "./connection.ts"
import * as Slot from "./slot.ts"

type Unavailable = RabbitError.RabbitFailure

export interface Declarer {
  /** Declares topics and groups (idempotent) and remembers them for re-declaration. */
  readonly ensure: (topology: Transport.Topology) => Effect.Effect<void, TopologyError>
  /** Whether the exchange exists: known ones from memory, others asked of the broker once they exist. */
  readonly exchangeExists: (exchange: string) => Effect.Effect<boolean, Unavailable>
  /** Whether the exchange is known to exist, without asking the broker. */
  readonly isKnownExchange: (exchange: string) => boolean
  /** Whether the queue exists (asked of the broker every time). */
  readonly queueExists: (queue: string) => Effect.Effect<boolean, Unavailable>
  /** The retry queue of `queue` for a delay bucket, declared if it is not known to exist. */
  readonly retryQueue: (queue: string, delayMillis: number) => Effect.Effect<string, Unavailable>
  /** Forgets an exchange found missing (deleted behind our back). */
  readonly forgetExchange: (exchange: string) => void
  /** Forgets a retry queue found missing, so the next use declares it again. */
  readonly forgetRetryQueue: (queue: string) => void
}

export const make = (manager: ConnectionManager): Effect.Effect<Declarer> =>
  Effect.gen(function* () {
    const { config } = manager
    const prefix = config.prefix
    const topics = new Set<string>()
    const groups = new Map<string, { readonly topic: string; readonly group: string }>()
    const knownExchanges = new Set<string>()
    const exchangeChecks = new Map<string, Deferred.Deferred<boolean, Unavailable>>()
    const retryQueues = new Map<string, number>()
    const lock = yield* Semaphore.make(1)
    const idleMillis = Duration.toMillis(config.retryQueueIdle)

    const channel = Slot.make<ChannelHandle, Unavailable>(
      Effect.flatMap(manager.connection, (connection) => manager.openChannel(connection, "plain")),
      (handle) => handle.open
    )

    const rpc = <A>(run: () => Promise<A>) =>
      Effect.tryPromise({ try: run, catch: (error) => error }).pipe(
        Effect.mapError((error) => RabbitError.topologyFailure(error, manager.scrub))
      )

    const declareTopic = (ch: amqp.Channel, topic: string) =>
      rpc(() =>
        ch.assertExchange(RabbitTopology.exchange(prefix, topic), RabbitTopology.exchangeType, { durable: true })
      )

    /** Declares a group's queues; its topic's exchange must be declared first. */
    const declareGroup = (ch: amqp.Channel, topic: string, group: string) =>
      Effect.gen(function* () {
        const exchange = RabbitTopology.exchange(prefix, topic)
        const work = RabbitTopology.workQueue(prefix, topic, group)
        const args = RabbitTopology.queueArguments(config.queueType)
        yield* rpc(() => ch.assertQueue(work, { durable: true, arguments: args }))
        yield* rpc(() => ch.bindQueue(work, exchange, RabbitTopology.bindingKey))
        yield* rpc(() =>
          ch.assertQueue(RabbitTopology.deadLetterQueue(prefix, topic, group), { durable: true, arguments: args })
        )
      })

    /** Runs declarations on the shared channel, one caller at a time. */
    const declaring = <A>(use: (ch: amqp.Channel) => Effect.Effect<A, Unavailable>) =>
      lock.withPermit(Effect.flatMap(channel.get, (handle) => use(handle.channel)))

    const ensure = (topology: Transport.Topology): Effect.Effect<void, TopologyError> =>
      Effect.gen(function* () {
        for (const topic of topology.topics) yield* Names.validate("topic", topic)
        for (const { topic, group } of topology.groups) {
          yield* Names.validate("topic", topic)
          yield* Names.validate("group", group)
        }
        const declared = new Set([...topology.topics, ...topology.groups.map((g) => g.topic)])
        yield* declaring((ch) =>
          Effect.gen(function* () {
            for (const topic of declared) yield* declareTopic(ch, topic)
            for (const { topic, group } of topology.groups) yield* declareGroup(ch, topic, group)
          })
        )
        for (const topic of declared) {
          topics.add(topic)
          knownExchanges.add(RabbitTopology.exchange(prefix, topic))
        }
        for (const { topic, group } of topology.groups)
          groups.set(`${topic}${Names.separator}${group}`, { topic, group })
      })

    /** A passive declaration on a channel of its own: `false` on NOT_FOUND. */
    const passive = (check: (ch: amqp.Channel) => Promise<unknown>): Effect.Effect<boolean, Unavailable> =>
      Effect.flatMap(manager.connection, (connection) =>
        Effect.acquireUseRelease(
          manager.openChannel(connection, "plain"),
          (handle) =>
            Effect.tryPromise({ try: () => check(handle.channel), catch: (error) => error }).pipe(
              Effect.as(true),
              Effect.catch((error) =>
                RabbitError.replyCode(error) === 404
                  ? Effect.succeed(false)
                  : Effect.fail(RabbitError.topologyFailure(error, manager.scrub))
              )
            ),
          manager.closeChannel
        )
      )

    const exchangeExists = (exchange: string): Effect.Effect<boolean, Unavailable> =>
      Effect.suspend(() => {
        if (knownExchanges.has(exchange)) return Effect.succeed(true)
        const inFlight = exchangeChecks.get(exchange)
        if (inFlight !== undefined) return Deferred.await(inFlight)
        // Concurrent publishes to one unknown topic share one check.
        const deferred = Deferred.makeUnsafe<boolean, Unavailable>()
        exchangeChecks.set(exchange, deferred)
        // Uninterruptible: other publishes wait on this check, so it must finish whoever started it.
        return passive((ch) => ch.checkExchange(exchange)).pipe(
          Effect.uninterruptible,
          Effect.onExit((exit) =>
            Effect.sync(() => {
              exchangeChecks.delete(exchange)
              if (Exit.isSuccess(exit) && exit.value) knownExchanges.add(exchange)
              Deferred.doneUnsafe(deferred, exit)
            })
          )
        )
      })

    const queueExists = (queue: string) => passive((ch) => ch.checkQueue(queue))

    const retryQueue = (queue: string, delayMillis: number): Effect.Effect<string, Unavailable> =>
      Effect.gen(function* () {
        const name = RabbitTopology.retryQueue(queue, delayMillis)
        const now = yield* Clock.currentTimeMillis
        const declaredAt = retryQueues.get(name)
        // x-expires counts from the last declaration, not the last publish: declare again well before it runs out.
        if (declaredAt !== undefined && now - declaredAt < idleMillis / 2) return name
        const declare = declaring((ch) =>
          Effect.tryPromise({
            try: () =>
              ch.assertQueue(name, {
                durable: true,
                arguments: RabbitTopology.retryQueueArguments({
                  queueType: config.queueType,
                  delayMillis,
                  idleMillis,
                  returnTo: queue
                })
              }),
            catch: (error) => error
          }).pipe(Effect.result)
        )
        let outcome = yield* declare
        if (outcome._tag === "Failure" && RabbitError.replyCode(outcome.failure) === 406) {
          // Declared earlier with other settings (another idle time or queue type). Replace it when it is
          // empty (nothing can be lost); otherwise use it as it is: its name fixes what matters, the delay
          // and where messages return. A later retry replaces it once it has drained.
          const replaced = yield* declaring((ch) =>
            Effect.tryPromise({ try: () => ch.deleteQueue(name, { ifEmpty: true }), catch: (error) => error }).pipe(
              Effect.result
            )
          )
          if (replaced._tag === "Failure" && (yield* queueExists(name))) return name
          outcome = yield* declare
        }
        if (outcome._tag === "Failure") return yield* RabbitError.topologyFailure(outcome.failure, manager.scrub)
        retryQueues.set(name, now)
        return name
      })

    // On a new connection, before anyone may use it: declare again everything declared so far.
    manager.onReconnect((connection: Connection) =>
      Effect.acquireUseRelease(
        manager.openChannel(connection, "plain"),
        (handle) =>
          Effect.gen(function* () {
            for (const topic of topics) yield* declareTopic(handle.channel, topic)
            for (const { topic, group } of groups.values()) yield* declareGroup(handle.channel, topic, group)
            retryQueues.clear()
          }),
        manager.closeChannel
      )
    )

    return {
      ensure,
      exchangeExists,
      isKnownExchange: (exchange) => knownExchanges.has(exchange),
      queueExists,
      retryQueue,
      forgetExchange: (exchange) => {
        knownExchanges.delete(exchange)
      },
      forgetRetryQueue: (queue) => {
        retryQueues.delete(queue)
      }
    }
  })
