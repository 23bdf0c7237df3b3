/**
 * RabbitMQ three ways, on the broker at `LOSSLESS_RABBITMQ_URL` (default
 * `amqp://guest:guest@127.0.0.1:5672`):
 *
 * - `rabbitmq-raw`: amqplib itself, the baseline. One confirm channel per
 *   client; persistent, mandatory publishes whose batch completes at its last
 *   confirm; `consume` on a channel of its own with `basic.qos(prefetch)`,
 *   acking each message.
 * - `rabbitmq`: `@lossless/rabbitmq` through the Transport contract, driven
 *   like the memory transport (`transport.ts`).
 * - `rabbitmq-runtime`: core's `Publisher.sendBatch` and `Consumer.start` over
 *   that transport (`runtime.ts`, nothing switched on).
 *
 * Every round declares the topology Lossless declares for a topic and a group
 * (a durable topic exchange named after the topic, a durable classic queue
 * `<topic>__<group>` bound with `#`; Lossless adds the group's dead-letter
 * queue), so the raw client writes to the same kind of queue. `cleanup`
 * deletes all of it after the round, whatever it left in the queue.
 */
import { tmpdir } from "node:os"
import { join } from "node:path"
import { MessageId, Transport } from "@lossless/core"
import { RabbitTopology, RabbitTransport } from "@lossless/rabbitmq"
import { Services } from "@lossless/testkit"
import * as amqp from "amqplib"
import { Context, Effect, Layer, Redacted, type Scope } from "effect"
import * as LockFile from "../LockFile.ts"
import { type Feature, rabbitmq as names, rabbitmqRuntimeTarget } from "../Scenario.ts"
import { openRuntime } from "./runtime.ts"
import { type Availability, type BenchClient, BenchError, type Target } from "./Target.ts"
import { fromTransport, seqHeader } from "./transport.ts"

/** The broker every RabbitMQ target talks to. */
export const url = (): string => Services.url("rabbitmq")

/** The lock the project's RabbitMQ test suites take turns on the broker with (see `LockFile.ts`). */
export const lockFile = join(tmpdir(), "lossless-rabbitmq-suites.lock")

/** Holds the broker for a comparison, as a RabbitMQ test suite holds it for a file. */
export const exclusive = (say: (line: string) => void): Effect.Effect<void, never, Scope.Scope> =>
  LockFile.hold(lockFile, {
    // The suites' own rule: a lock older than ten minutes has been left behind.
    staleAfterMs: 10 * 60_000,
    pollMs: 100,
    onWait: (holder) => say(`  waiting for the RabbitMQ broker: process ${holder} holds ${lockFile}`)
  })

const noop = (): void => {}

const failed = (what: string) => (cause: unknown) =>
  new BenchError({ message: `rabbitmq: ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

/** Whether the broker answers. */
export const probe: Effect.Effect<Availability> = Effect.map(
  Effect.promise(() => Services.check("rabbitmq", 1000)),
  (check): Availability =>
    check.available ? { available: true } : { available: false, reason: `RabbitMQ at ${check.url}: ${check.reason}` }
)

/** An amqplib connection for the scope. */
const connect = (purpose: string): Effect.Effect<amqp.ChannelModel, BenchError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      // TCP_NODELAY as @lossless/rabbitmq sets it by default, so the comparison measures the
      // libraries' own work rather than two socket settings.
      try: () =>
        amqp.connect(url(), { noDelay: true, clientProperties: { connection_name: `lossless-bench ${purpose}` } }),
      catch: failed("could not connect")
    }).pipe(
      // An unhandled 'error' event would end the process; failures surface through the operations instead.
      Effect.tap((connection) => Effect.sync(() => connection.on("error", noop)))
    ),
    (connection) => Effect.promise(() => connection.close().catch(noop))
  )

/** The names Lossless gives a topic's exchange and a group's queues (no prefix). */
const topology = (topic: string, group: string) => ({
  exchange: RabbitTopology.exchange("", topic),
  queue: RabbitTopology.workQueue("", topic, group),
  deadLetters: RabbitTopology.deadLetterQueue("", topic, group)
})

/** The queues and exchanges a round declared. */
interface Declared {
  readonly queues: ReadonlyArray<string>
  readonly exchanges: ReadonlyArray<string>
}

const deleteOn = async (connection: amqp.ChannelModel, what: Declared): Promise<void> => {
  const channel = await connection.createChannel()
  channel.on("error", noop)
  try {
    for (const queue of what.queues) await channel.deleteQueue(queue)
    for (const exchange of what.exchanges) await channel.deleteExchange(exchange)
  } finally {
    await channel.close().catch(noop)
  }
}

/**
 * Deletes queues and exchanges on a channel of its own (an error closes only
 * that channel); if the connection is gone, on a new one, so a lost
 * connection does not leave the round's queues on the broker. Deleting what
 * does not exist is not an error on RabbitMQ.
 */
const remove = (connection: amqp.ChannelModel, what: Declared): Effect.Effect<void, BenchError> =>
  Effect.tryPromise({
    try: () =>
      deleteOn(connection, what).catch(async () => {
        const fresh = await amqp.connect(url(), { clientProperties: { connection_name: "lossless-bench cleanup" } })
        fresh.on("error", noop)
        try {
          await deleteOn(fresh, what)
        } finally {
          await fresh.close().catch(noop)
        }
      }),
    catch: failed("could not delete the round's queues and exchange")
  })

/** Cleanup for a Lossless client: the exchange, the work queue and the dead-letter queue it declared. */
const losslessCleanup =
  (admin: amqp.ChannelModel) =>
  (topic: string, group: string): Effect.Effect<void, BenchError> => {
    const t = topology(topic, group)
    return remove(admin, { queues: [t.queue, t.deadLetters], exchanges: [t.exchange] })
  }

/** The harness's number of a message, from its user header (a string; a Buffer if the broker passed bytes). */
const seqOf = (message: amqp.Message): number => {
  const value: unknown = message.properties.headers?.[seqHeader]
  return Number(Buffer.isBuffer(value) ? value.toString("utf8") : value)
}

/**
 * The properties of a raw publish: persistent and mandatory, the harness's
 * number in a header; with `wire`, also what Lossless puts on every message
 * (its id as the `message-id` property, whose UUIDv7 carries the time, so
 * no timestamp goes with it; see `Wire.properties`), so a scenario can tell what the wire
 * format costs the broker from what the library's code costs. Built with the
 * batch, before the timing, like everything the raw client sends.
 */
const publishOptions = (seq: number, wire: boolean): amqp.Options.Publish => {
  const headers: Record<string, string> = { [seqHeader]: String(seq) }
  if (!wire) return { persistent: true, mandatory: true, headers }
  // The UUIDv7 id carries the millisecond time, so Lossless sends no timestamp with it.
  return { persistent: true, mandatory: true, messageId: MessageId.fromMillis(Date.now()), headers }
}

const openRaw = (wire: boolean): Effect.Effect<BenchClient, BenchError, Scope.Scope> =>
  Effect.gen(function* () {
    const connection = yield* connect("amqplib")
    const channel = yield* Effect.tryPromise({
      try: () => connection.createConfirmChannel(),
      catch: failed("could not open a confirm channel")
    })
    channel.on("error", noop)
    // A mandatory message no queue takes comes back before its confirm: counted, and the batch fails, as in Lossless.
    let returned = 0
    channel.on("return", () => {
      returned++
    })

    return {
      prepare: (topic, group) => {
        const t = topology(topic, group)
        return Effect.tryPromise({
          try: async () => {
            await channel.assertExchange(t.exchange, RabbitTopology.exchangeType, { durable: true })
            await channel.assertQueue(t.queue, { durable: true, arguments: RabbitTopology.queueArguments("classic") })
            await channel.bindQueue(t.queue, t.exchange, RabbitTopology.bindingKey)
          },
          catch: failed("could not declare the round's exchange and queue")
        })
      },

      prepareBatch: (topic, firstSeq, count, payload) => {
        const exchange = RabbitTopology.exchange("", topic)
        const content = Buffer.from(payload)
        const options: Array<amqp.Options.Publish> = []
        for (let i = 0; i < count; i++) options.push(publishOptions(firstSeq + i, wire))
        // Published back to back; the batch completes at its last confirm. The window (the harness's
        // publishers times the batch size) bounds what amqplib buffers, so `publish` returning false
        // (socket buffer full) is not waited for.
        return Effect.callback<void, BenchError>((resume) => {
          let pending = count
          let done = false
          const finish = (outcome: Effect.Effect<void, BenchError>) => {
            if (done) return
            done = true
            resume(outcome)
          }
          const confirmed = (error: unknown) => {
            if (error !== null && error !== undefined)
              return finish(Effect.fail(failed("publish not confirmed")(error)))
            if (--pending > 0) return
            finish(
              returned === 0
                ? Effect.void
                : Effect.fail(new BenchError({ message: "rabbitmq: a message was returned unroutable" }))
            )
          }
          try {
            for (let i = 0; i < count; i++) channel.publish(exchange, topic, content, options[i], confirmed)
          } catch (error) {
            finish(Effect.fail(failed("publish failed")(error)))
          }
        })
      },

      consume: (topic, group, prefetch, sink) => {
        const { queue } = topology(topic, group)
        return Effect.acquireUseRelease(
          Effect.tryPromise({ try: () => connection.createChannel(), catch: failed("could not open a channel") }),
          (consumer) =>
            Effect.callback<void, BenchError>((resume) => {
              consumer.on("error", noop)
              let stopped = false
              consumer
                .prefetch(prefetch)
                .then(() =>
                  consumer.consume(
                    queue,
                    (message) => {
                      if (stopped) return
                      if (message === null) {
                        stopped = true
                        return resume(
                          Effect.fail(
                            new BenchError({ message: `rabbitmq: the broker cancelled the consumer of ${queue}` })
                          )
                        )
                      }
                      sink.onReceive(seqOf(message))
                      consumer.ack(message)
                      if (!sink.onSettled()) {
                        stopped = true
                        resume(Effect.void)
                      }
                    },
                    { noAck: false }
                  )
                )
                .catch((error: unknown) => {
                  stopped = true
                  resume(Effect.fail(failed("could not consume")(error)))
                })
            }),
          // Closing the channel hands whatever it holds unacked back to the queue.
          (consumer) => Effect.promise(() => consumer.close().catch(noop))
        )
      },

      cleanup: (topic, group) => {
        const t = topology(topic, group)
        return remove(connection, { queues: [t.queue], exchanges: [t.exchange] })
      }
    } satisfies BenchClient
  })

/** The adapter with the library's defaults (confirm window 1024, classic queues), connected for the scope. */
const transportLayer = () => RabbitTransport.layer({ url: Redacted.make(url()), connectionName: "lossless-bench" })

const buildTransport = Effect.flatMap(
  Layer.build(transportLayer()).pipe(Effect.mapError(failed("could not build the transport"))),
  (context) => Effect.sync(() => Context.get(context, Transport.Transport))
)

const openTransport: Effect.Effect<BenchClient, BenchError, Scope.Scope> = Effect.gen(function* () {
  const transport = yield* buildTransport
  const admin = yield* connect("admin")
  return { ...fromTransport(transport), cleanup: losslessCleanup(admin) }
})

const openRuntimeClient = (feature: Feature): Effect.Effect<BenchClient, BenchError, Scope.Scope> =>
  Effect.gen(function* () {
    const transport = yield* buildTransport
    const admin = yield* connect("admin")
    const client = yield* openRuntime(rabbitmqRuntimeTarget(feature), transport, feature)
    return { ...client, cleanup: losslessCleanup(admin) }
  })

export const rabbitmqRaw: Target = {
  name: names.raw,
  broker: "rabbitmq",
  kind: "raw",
  description: "amqplib confirm channel (persistent, mandatory) and consume with manual acks",
  probe,
  open: openRaw(false),
  exclusive
}

export const rabbitmqRawWire: Target = {
  name: names.rawWire,
  broker: "rabbitmq",
  kind: "raw",
  description: "amqplib as rabbitmq-raw, each message with the headers and properties Lossless adds",
  probe,
  open: openRaw(true),
  exclusive
}

export const rabbitmqTransport: Target = {
  name: names.transport,
  broker: "rabbitmq",
  kind: "lossless",
  description: "@lossless/rabbitmq, through the Transport contract",
  probe,
  open: openTransport,
  exclusive
}

export const rabbitmqRuntime: Target = {
  name: names.runtime,
  broker: "rabbitmq",
  kind: "runtime",
  description: "core Publisher.sendBatch + Consumer.start over @lossless/rabbitmq",
  probe,
  open: openRuntimeClient("plain"),
  exclusive
}

const featureDescriptions: Record<Exclude<Feature, "plain">, string> = {
  "loss-detection": "the runtime on RabbitMQ with sequence stamps and a LossDetector",
  "memory-dedupe": "the runtime on RabbitMQ with Dedupe.memoryStore()",
  "redis-dedupe": "the runtime on RabbitMQ with RedisDedupeStore (@lossless/redis, RedisClient defaults)"
}

/** Core's runtime on RabbitMQ with one feature switched on, as `runtime.ts` runs it on memory. */
export const rabbitmqRuntimeWith = (feature: Exclude<Feature, "plain">): Target => ({
  name: rabbitmqRuntimeTarget(feature),
  broker: "rabbitmq",
  kind: "runtime",
  description: featureDescriptions[feature],
  probe:
    feature === "redis-dedupe"
      ? Effect.flatMap(probe, (rabbit) =>
          rabbit.available
            ? Effect.map(
                Effect.promise(() => Services.check("redis", 1000)),
                (check): Availability =>
                  check.available
                    ? { available: true }
                    : { available: false, reason: `Redis at ${check.url}: ${check.reason}` }
              )
            : Effect.succeed(rabbit)
        )
      : probe,
  open: openRuntimeClient(feature),
  exclusive
})

/** The names Lossless gives a topic's exchange and a group's queues, for the peer targets. */
export const losslessTopology = topology

/** Over an amqplib connection for the scope: deletes the given queues and exchanges (the peers' rounds). */
export const rabbitRemover: Effect.Effect<
  (what: {
    readonly queues: ReadonlyArray<string>
    readonly exchanges: ReadonlyArray<string>
  }) => Effect.Effect<void, BenchError>,
  BenchError,
  Scope.Scope
> = Effect.map(connect("admin"), (connection) => (what) => remove(connection, what))

/** The RabbitMQ transport for the scope, for targets that build on it (the outbox's relay). */
export const rabbitTransport: Effect.Effect<Transport.TransportShape, BenchError, Scope.Scope> = buildTransport

/** Over an amqplib connection for the scope: deletes what a Lossless client declared for a round. */
export const rabbitAdmin: Effect.Effect<
  (topic: string, group: string) => Effect.Effect<void, BenchError>,
  BenchError,
  Scope.Scope
> = Effect.map(connect("admin"), losslessCleanup)
