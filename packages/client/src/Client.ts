/**
 * The client: Lossless behind plain promises, for Node code that does not
 * write Effect.
 *
 * ```ts
 * const client = await createClient({ url: "amqp://guest:guest@127.0.0.1:5672" }) // loads @lossless/rabbitmq
 * await client.consume("orders", "billing", async (message) => { await bill(message.payload) })
 * await client.send("orders", { id: "o-1", total: 42 })
 * await client.close()
 * ```
 *
 * Everything here is core, run on one Effect runtime the client owns: the
 * same confirmed sends, retry policy, dead letters, dedupe, half messages and
 * graceful shutdown as in Effect code, with nothing re-implemented. A promise
 * rejects with core's error itself (`err instanceof SendFailed`), never a
 * wrapper.
 *
 * @since 0.1.0
 */
import {
  type Capabilities,
  Consumer as CoreConsumer,
  DeadLetter as CoreDeadLetter,
  Dedupe,
  type Envelope,
  HalfMessage,
  LossDetector,
  type Message,
  Outbox,
  OutboxRelay,
  Publisher,
  RetryPolicy,
  Transport,
  TransportUrl
} from "@lossless/core"
import {
  Cause,
  Context,
  Deferred,
  type Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  ManagedRuntime,
  Option,
  Redacted,
  Schedule,
  Stream
} from "effect"
import * as Adapters from "./Adapters.ts"
import { ClientClosed } from "./ClientError.ts"
import { resolve, type TopicLike } from "./Topics.ts"

/** A duration: milliseconds, or a string such as `"5 seconds"`. */
export type DurationInput = Duration.Input

/** A decoded message: `{ id, topic, key, payload, headers, timestamp, deliverAt }`. */
export type ReceivedMessage<A> = Message.Message<A>

/** Per-send options: `key`, `headers`, `id` (a business key), `deliverAt`, `delay`. */
export type SendOptions = Message.SendOptions

/** A message of a batch: its payload and its own send options. */
export interface Outgoing<A> extends SendOptions {
  readonly payload: A
}

/** A confirmed send: the message id, its topic, and the publish attempts it took. */
export type Sent = Publisher.Sent

/** What a check-back answers about a message whose local transaction's outcome is unknown. */
export type Decision = HalfMessage.Decision

/** A topic's check-back, registered with `createClient` (see `checkBack`). */
export interface CheckBack {
  readonly topic: string
  /** Core's form of the check-back. */
  readonly core: HalfMessage.CheckBack
}

/**
 * How to decide a transactional message of `topic` that a crash left
 * undecided: look its local transaction up (by a business key in the
 * payload) and answer `"commit"`, `"rollback"`, or `"unknown"` to be asked
 * again later. A check-back that throws answers `"unknown"`.
 */
export const checkBack = <A>(
  topic: TopicLike<A>,
  check: (message: ReceivedMessage<A>) => Decision | PromiseLike<Decision>
): CheckBack => {
  const resolved = resolve(topic)
  const core = Effect.runSync(
    HalfMessage.checkBack(resolved, (message) => Effect.tryPromise(async () => check(message)))
  )
  return { topic: resolved.name, core }
}

export interface SendSettings {
  /**
   * Deadline of one publish attempt; a missed one counts as a retryable `PublishTimeout`.
   * @default 30 seconds
   */
  readonly attemptTimeout?: DurationInput | undefined
  /**
   * Delays between retries of a send whose failure is retryable; when they run
   * out, the send rejects with `SendFailed`.
   * @default 100 ms doubling up to 5 s, jittered, 8 retries
   */
  readonly retryDelays?: ReadonlyArray<DurationInput> | undefined
  /**
   * Most messages outstanding at once; further sends wait.
   * @default 4096
   */
  readonly maxInFlight?: number | undefined
  /** Stamp producer id and sequence numbers, so consumers with `lossDetection` can report gaps. */
  readonly lossDetection?: boolean | undefined
}

export interface TransactionalSettings {
  /**
   * Where transactional messages wait between prepare and publish. The
   * default keeps them in this process: a crash loses them. Pass a durable
   * store (`@lossless/sql`'s SQL outbox store) for messages that must survive one.
   * @default an in-process outbox
   */
  readonly outbox?: Outbox.OutboxStore | undefined
  /** Check-backs by topic, for messages a crash left between prepare and commit. */
  readonly checkBacks?: ReadonlyArray<CheckBack> | undefined
  /** Settings of the relay that publishes committed messages (batch size, sweep interval, check interval ...). */
  readonly relay?: Omit<OutboxRelay.RelayOptions, "store" | "checkBacks" | "onPark"> | undefined
  /**
   * Called when the relay gives up on a message (its retries ran out, the
   * failure is permanent, or its check-back stayed undecided); the message
   * stays in the outbox, parked, for an operator to re-drive.
   */
  readonly onPark?:
    | ((parked: { readonly id: string; readonly topic: string; readonly error: string }) => void)
    | undefined
  /**
   * The transport's native half messages (RocketMQ), used instead of the
   * outbox; receives the registered check-backs.
   */
  readonly native?:
    | ((
        checkBacks: ReadonlyArray<HalfMessage.CheckBack>
      ) => Layer.Layer<HalfMessage.HalfMessages, unknown, Transport.Transport>)
    | undefined
}

export interface ClientOptions {
  /**
   * The transport's URL (`amqp://user:pass@host`, `memory://` ...).
   * @default `LOSSLESS_URL`, or `memory://` when it is unset
   */
  readonly url?: string | undefined
  /**
   * The adapters this program ships with; the URL's scheme picks one, e.g.
   * `[MemoryTransport.plugin, RabbitTransport.plugin]`. Without it, the
   * scheme's package is loaded (`amqp://` → `@lossless/rabbitmq`, ...), and a
   * missing one rejects with `AdapterMissing`.
   */
  readonly plugins?: ReadonlyArray<TransportUrl.TransportPlugin> | undefined
  readonly send?: SendSettings | undefined
  readonly transactional?: TransactionalSettings | undefined
  /**
   * How long `close()` waits for running handlers (per consumer, unless the
   * consumer sets its own) and for the outbox to publish what it holds.
   * @default 30 seconds
   */
  readonly shutdownTimeout?: DurationInput | undefined
}

/** What a handler knows about the delivery besides the message. */
export interface HandlerContext extends CoreConsumer.Context {
  /** Aborted when shutdown gives up waiting for the handler; the message is then redelivered. */
  readonly signal: AbortSignal
}

/**
 * Handles one message. When it returns (or its promise resolves) the message
 * is acked; when it throws or rejects, the retry policy decides. Await all the
 * work: anything still running after it returns is not covered by the ack.
 */
export type Handler<A> = (message: ReceivedMessage<A>, context: HandlerContext) => void | PromiseLike<unknown>

export interface RetrySettings {
  /**
   * Re-runs of the handler within one delivery before a delayed retry.
   * @default 2
   */
  readonly immediate?: number | undefined
  /**
   * Delays of the delayed retries, one per retry; when they run out the
   * message is dead-lettered.
   * @default 1 s doubling up to 5 min, jittered, 8 retries
   */
  readonly delays?: ReadonlyArray<DurationInput> | undefined
  /**
   * Errors no retry can fix: dead-lettered at once. A thrown `PermanentFailure` always is.
   */
  readonly isPermanent?: ((error: unknown) => boolean) | undefined
}

export interface DedupeSettings {
  /**
   * Where handled keys are kept: `"memory"` (this process only), a shared
   * store (Redis), or a SQL inbox (`@lossless/sql`), which records the key
   * only when the handler succeeds, in a transaction of its own database.
   * @default "memory"
   */
  readonly store?: "memory" | Dedupe.DedupeStore | Dedupe.Inbox | undefined
  /** The dedupe key; the message id by default. A business key also catches a re-send under a new id. */
  readonly key?: ((message: ReceivedMessage<unknown>) => string) | undefined
  /** @default 5 minutes */
  readonly lease?: DurationInput | undefined
  /** @default 24 hours */
  readonly ttl?: DurationInput | undefined
  /** @default 1 second */
  readonly busyDelay?: DurationInput | undefined
  /** @default "retry" */
  readonly onStoreUnavailable?: "retry" | "process" | undefined
}

export interface LossDetectionSettings {
  /** How long a gap may stay open before it counts as lost. @default 30 seconds */
  readonly graceWindow?: DurationInput | undefined
  /** Called for each gap found lost. */
  readonly onLoss?: ((gap: LossDetector.Gap) => void) | undefined
}

export interface ConsumeOptions {
  /** Handlers running at once. @default 16 */
  readonly concurrency?: number | undefined
  /** Deliveries the broker may hand out ahead of the handlers. @default 2 × concurrency */
  readonly prefetch?: number | undefined
  /** `"key"`: one message per key at a time, in order. `"none"`: any order. @default "key" */
  readonly ordering?: "key" | "none" | undefined
  /** What happens when the handler fails; `"none"` dead-letters on the first failure. */
  readonly retry?: RetrySettings | "none" | undefined
  /** Handle each message once despite redeliveries; `true` keeps keys in memory. */
  readonly dedupe?: boolean | DedupeSettings | undefined
  /** Track sequence stamps (send with `lossDetection`) to report lost and duplicated messages. */
  readonly lossDetection?: boolean | LossDetectionSettings | undefined
  /** How long `stop()` waits for running handlers before aborting them. @default the client's `shutdownTimeout` */
  readonly shutdownTimeout?: DurationInput | undefined
}

/** A running consumer. */
export interface Consumer {
  readonly topic: string
  readonly group: string
  /**
   * Stops taking messages, waits for running handlers (up to the shutdown
   * timeout), settles what they finished and returns the rest to the broker.
   */
  readonly stop: () => Promise<void>
  /** Resolves when the consumer stops; rejects when its subscription failed for good. */
  readonly done: Promise<void>
  /** Lost and duplicated messages seen so far, when `lossDetection` is on. */
  readonly lossReport: () => Promise<LossDetector.Report | undefined>
}

/** A message in a group's dead letters, with why it got there. */
export interface DeadLetter<A> {
  readonly id: string
  readonly key: string | undefined
  /** The decoded payload; `undefined` when it does not decode (which may be why it is here). */
  readonly payload: A | undefined
  readonly headers: Readonly<Record<string, string>>
  /** Original topic and group, the error, when, and after how many attempts. */
  readonly reason: CoreDeadLetter.Reason | undefined
}

export interface Client {
  /** The transport's name ("memory", "rabbitmq" ...). */
  readonly transport: string
  /** What the transport does natively. */
  readonly capabilities: Capabilities.Capabilities
  /**
   * Declares a topic and groups consuming it (`consume` does this itself).
   * A message sent to a topic no group consumes is `Unroutable` on brokers
   * that route; declare the groups first when sending before consuming.
   */
  readonly declare: <A>(topic: TopicLike<A>, groups?: ReadonlyArray<string>) => Promise<void>
  /**
   * Sends one message; resolves once the broker confirmed it stored it.
   * Rejects with `SchemaViolation` or `InvalidHeader` before anything is sent,
   * or `SendFailed` (with each failed message and its error) after retries.
   */
  readonly send: <A>(topic: TopicLike<A>, payload: A, options?: SendOptions) => Promise<Sent>
  /** Sends messages of one topic as one batch; all are validated before any is sent. */
  readonly sendBatch: <A>(topic: TopicLike<A>, messages: ReadonlyArray<Outgoing<A>>) => Promise<ReadonlyArray<Sent>>
  /**
   * Sends `payload` if and only if `localTransaction` resolves: the message
   * is prepared, the transaction runs, then the message is committed (and
   * published by the relay) or rolled back. Resolves with what the
   * transaction returned once the message is committed — before it is
   * published; rejects with the transaction's own error, and nothing is sent.
   */
  readonly sendTransactional: <A, T>(
    topic: TopicLike<A>,
    payload: A,
    localTransaction: () => PromiseLike<T> | T,
    options?: SendOptions
  ) => Promise<T>
  /** Starts a consumer of `topic` for `group`; resolves once it is subscribed. */
  readonly consume: <A>(
    topic: TopicLike<A>,
    group: string,
    handler: Handler<A>,
    options?: ConsumeOptions
  ) => Promise<Consumer>
  /**
   * Reads (without removing) up to `limit` messages of `group`'s dead letters
   * for `topic`, waiting up to `wait` for each next one.
   */
  readonly deadLetters: <A>(
    topic: TopicLike<A>,
    group: string,
    options?: { readonly limit?: number | undefined; readonly wait?: DurationInput | undefined }
  ) => Promise<ReadonlyArray<DeadLetter<A>>>
  /**
   * Shuts down gracefully: consumers stop (running handlers finish), sends
   * under way complete, the outbox publishes what it holds (up to the
   * shutdown timeout), then the connection closes. Idempotent.
   */
  readonly close: () => Promise<void>
}

/**
 * The outbox behind transactional sends. Only an in-process one is flushed
 * at close: a durable store keeps its rows for the next start.
 */
class OutboxInUse extends Context.Service<OutboxInUse, { readonly flush: Outbox.OutboxStore | undefined }>()(
  "@lossless/client/OutboxInUse"
) {}

type Services = Transport.Transport | Publisher.Publisher | HalfMessage.HalfMessages | OutboxInUse

/** A schedule of exactly these delays, in order, then done. */
const delaysSchedule = (delays: ReadonlyArray<DurationInput>): Schedule.Schedule<unknown, unknown> =>
  Schedule.recurs(delays.length).pipe(Schedule.modifyDelay(({ attempt }) => Effect.succeed(delays[attempt - 1] ?? 0)))

const retryPolicy = (settings: RetrySettings | "none" | undefined): Partial<RetryPolicy.RetryPolicy> | undefined => {
  if (settings === undefined) return undefined
  if (settings === "none") return RetryPolicy.none
  const isPermanent = settings.isPermanent
  return {
    ...(settings.immediate !== undefined ? { immediate: Math.max(0, Math.floor(settings.immediate)) } : {}),
    ...(settings.delays !== undefined ? { delayed: delaysSchedule(settings.delays) } : {}),
    ...(isPermanent !== undefined
      ? { isPermanent: (error: unknown) => RetryPolicy.defaultIsPermanent(error) || isPermanent(error) }
      : {})
  }
}

const transactionalLayer = (
  settings: TransactionalSettings,
  send: SendSettings
): Layer.Layer<HalfMessage.HalfMessages | OutboxInUse, unknown, Transport.Transport> => {
  const checkBacks = (settings.checkBacks ?? []).map((c) => c.core)
  if (settings.native !== undefined) {
    return Layer.merge(settings.native(checkBacks), Layer.succeed(OutboxInUse, { flush: undefined }))
  }
  return Layer.effectContext(
    Effect.gen(function* () {
      const store = settings.outbox ?? (yield* Outbox.memoryStore)
      const interceptors = yield* Publisher.interceptorsOf({ lossDetection: send.lossDetection })
      const onPark = settings.onPark
      yield* Effect.forkScoped(
        OutboxRelay.run({
          ...settings.relay,
          store,
          checkBacks,
          ...(onPark !== undefined
            ? {
                onPark: (row: Outbox.Claimed, error: string) =>
                  Effect.sync(() => onPark({ id: row.envelope.id, topic: row.envelope.topic, error }))
              }
            : {})
        })
      )
      return Context.make(HalfMessage.HalfMessages, HalfMessage.outbox(store, { interceptors })).pipe(
        Context.add(OutboxInUse, { flush: settings.outbox === undefined ? store : undefined })
      )
    })
  )
}

/** A started consumer and its loss detector. */
interface Started {
  readonly running: CoreConsumer.Running
  readonly detector: LossDetector.LossDetector | undefined
}

const noop = () => {}

/**
 * Connects to the transport named by `url` (or `LOSSLESS_URL`, or the
 * in-process broker) through the given plugins, or the scheme's package.
 * Rejects with `AdapterMissing`, `InvalidUrl`,
 * `UnknownScheme` or `TransportUnavailable` when it cannot.
 */
export const createClient = async (options: ClientOptions): Promise<Client> => {
  const sendSettings = options.send ?? {}
  const shutdownTimeout = options.shutdownTimeout ?? "30 seconds"
  // Read at each call, as Promise code expects of the environment (Effect's provider would cache it).
  const fromEnv = process.env[TransportUrl.envVar]
  const url = options.url ?? (fromEnv === undefined || fromEnv === "" ? TransportUrl.defaultUrl : fromEnv)
  const plugins = options.plugins ?? [
    await Effect.runPromiseExit(Adapters.forUrl(url)).then((exit) => {
      if (Exit.isSuccess(exit)) return exit.value
      throw Cause.squash(exit.cause)
    })
  ]
  const transportLayer = TransportUrl.layer(plugins, Redacted.make(url))
  const publisherLayer = Publisher.layer({
    attemptTimeout: sendSettings.attemptTimeout,
    maxInFlight: sendSettings.maxInFlight,
    lossDetection: sendSettings.lossDetection,
    ...(sendSettings.retryDelays !== undefined ? { retry: delaysSchedule(sendSettings.retryDelays) } : {})
  })
  const live = Layer.mergeAll(publisherLayer, transactionalLayer(options.transactional ?? {}, sendSettings)).pipe(
    Layer.provideMerge(transportLayer)
  )
  const runtime = ManagedRuntime.make(live as Layer.Layer<Services, unknown>)

  const run = <A, E>(effect: Effect.Effect<A, E, Services>): Promise<A> =>
    runtime.runPromiseExit(effect).then((exit) => {
      if (Exit.isSuccess(exit)) return exit.value
      // The error itself, not a wrapper: what a Promise user can `instanceof`.
      throw Cause.squash(exit.cause)
    })

  const transport = await run(Transport.Transport.use(Effect.succeed)).catch(async (error: unknown) => {
    await runtime.dispose()
    throw error
  })

  // `closing`: no new consumers or transactions; `sealed`: no new sends either (consumers have stopped).
  let closing = false
  let sealed = false
  let closed: Promise<void> | undefined
  const consumers = new Set<Consumer>()
  const inFlight = new Set<Promise<unknown>>()

  const track = <A>(operation: string, start: () => Promise<A>): Promise<A> => {
    if (sealed) return Promise.reject(new ClientClosed({ operation }))
    const promise = start()
    inFlight.add(promise)
    const forget = () => inFlight.delete(promise)
    promise.then(forget, forget)
    return promise
  }

  let memoryDedupe: Promise<Dedupe.DedupeStore> | undefined
  const dedupeOptions = async (
    settings: boolean | DedupeSettings | undefined
  ): Promise<Dedupe.DedupeOptions | undefined> => {
    if (settings === undefined || settings === false) return undefined
    const { store, ...rest } = settings === true ? {} : settings
    if (store !== undefined && store !== "memory") return { ...rest, store }
    // One memory store per client, so consumers of one group in this process share their keys.
    memoryDedupe ??= run(Dedupe.memoryStore())
    return { ...rest, store: await memoryDedupe }
  }

  const consume = async <A>(
    topicLike: TopicLike<A>,
    group: string,
    handler: Handler<A>,
    consumeOptions: ConsumeOptions = {}
  ): Promise<Consumer> => {
    if (closing) throw new ClientClosed({ operation: "consume" })
    const topic = resolve(topicLike)
    const dedupe = await dedupeOptions(consumeOptions.dedupe)
    const loss = consumeOptions.lossDetection
    // The consumer's fibers are children of this long-lived one: a run that returned would take them with it.
    const ready = await run(Deferred.make<Started, unknown>())
    const fiber = runtime.runFork(
      Effect.scoped(
        Effect.gen(function* () {
          const detector =
            loss === undefined || loss === false
              ? undefined
              : yield* LossDetector.make(
                  loss === true
                    ? {}
                    : {
                        graceWindow: loss.graceWindow,
                        ...(loss.onLoss !== undefined
                          ? { onLoss: (gap: LossDetector.Gap) => Effect.sync(() => loss.onLoss?.(gap)) }
                          : {})
                      }
                )
          const running = yield* CoreConsumer.start({
            topic,
            group,
            handler: (message, context) =>
              Effect.tryPromise({
                try: async (signal) => {
                  await handler(message, { ...context, signal })
                },
                catch: (error) => error
              }),
            concurrency: consumeOptions.concurrency,
            prefetch: consumeOptions.prefetch,
            ordering: consumeOptions.ordering,
            lossDetector: detector,
            dedupe,
            retry: retryPolicy(consumeOptions.retry),
            shutdownTimeout: consumeOptions.shutdownTimeout ?? shutdownTimeout
          })
          yield* Deferred.succeed(ready, { running, detector })
          yield* running.done
        })
      ).pipe(Effect.onError((cause) => Deferred.failCause(ready, cause)))
    )
    const started = await run(Deferred.await(ready))
    const done = run(Fiber.join(fiber))
    // Observed here so an unobserved `done` never becomes an unhandled rejection.
    done.catch(() => {})

    let stopped: Promise<void> | undefined
    const consumer: Consumer = {
      topic: topic.name,
      group,
      stop: () => {
        stopped ??= run(started.running.stop)
          .then(() => done.then(noop, noop))
          .finally(() => consumers.delete(consumer))
        return stopped
      },
      done,
      lossReport: () => (started.detector === undefined ? Promise.resolve(undefined) : run(started.detector.report))
    }
    consumers.add(consumer)
    // `close()` began while this one was starting and did not see it.
    if (closing) {
      await consumer.stop()
      throw new ClientClosed({ operation: "consume" })
    }
    return consumer
  }

  /** Waits for the in-process outbox to publish what it holds: it does not outlive the client. */
  const flushOutbox = Effect.gen(function* () {
    const { flush: store } = yield* OutboxInUse
    if (store === undefined) return
    const unsent = Effect.map(store.stats, (s) => s.pending + s.failed)
    const drained = yield* unsent.pipe(
      Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (n) => n === 0 }),
      Effect.timeoutOption(shutdownTimeout),
      Effect.orElseSucceed(() => Option.none<number>())
    )
    if (Option.isNone(drained)) {
      const left = yield* Effect.orElseSucceed(unsent, () => Number.NaN)
      yield* Effect.logWarning(`lossless: closing with ${left} unpublished transactional message(s) in memory`)
    }
  })

  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true
      // Handlers may still send while they finish, so sends stay open until the consumers have stopped.
      await Promise.allSettled([...consumers].map((c) => c.stop()))
      sealed = true
      await Promise.allSettled([...inFlight])
      await run(flushOutbox).catch(() => {})
      await runtime.dispose()
    })()
    return closed
  }

  return {
    transport: transport.name,
    capabilities: transport.capabilities,
    declare: (topicLike, groups = []) => {
      if (closing) return Promise.reject(new ClientClosed({ operation: "declare" }))
      const name = resolve(topicLike).name
      return run(transport.ensureTopology({ topics: [name], groups: groups.map((group) => ({ topic: name, group })) }))
    },
    send: (topicLike, payload, sendOptions) =>
      track("send", () => run(Publisher.send(resolve(topicLike), payload, sendOptions))),
    sendBatch: (topicLike, messages) => track("send", () => run(Publisher.sendBatch(resolve(topicLike), messages))),
    sendTransactional: (topicLike, payload, localTransaction, sendOptions) => {
      if (closing) return Promise.reject(new ClientClosed({ operation: "send transactionally" }))
      return track("send transactionally", () =>
        run(
          HalfMessage.sendTransactional(
            resolve(topicLike),
            payload,
            // The transaction's own rejection comes out unchanged.
            Effect.tryPromise({ try: async () => localTransaction(), catch: (error) => error }),
            sendOptions
          )
        )
      )
    },
    consume,
    deadLetters: (topicLike, group, readOptions = {}) => {
      if (closing) return Promise.reject(new ClientClosed({ operation: "read dead letters" }))
      const topic = resolve(topicLike)
      const limit = Math.max(1, Math.floor(readOptions.limit ?? 100))
      return run(
        Effect.gen(function* () {
          // Read without settling: ending the subscription hands every one back to the broker.
          const deliveries = yield* transport
            .subscribeDeadLetters(topic.name, group, { prefetch: limit })
            .pipe(Stream.take(limit), Stream.timeout(readOptions.wait ?? "1 second"), Stream.runCollect)
          return yield* Effect.forEach(deliveries, ({ envelope }) =>
            Effect.map(Effect.option(topic.decode(envelope)), (payload) => toDeadLetter(envelope, payload))
          )
        })
      )
    },
    close
  }
}

const toDeadLetter = <A>(envelope: Envelope.Envelope, payload: Option.Option<A>): DeadLetter<A> => ({
  id: envelope.id,
  key: envelope.key,
  payload: Option.getOrUndefined(payload),
  headers: envelope.headers,
  reason: CoreDeadLetter.reason(envelope)
})
