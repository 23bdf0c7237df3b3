/**
 * Other libraries for reliable messaging on RabbitMQ, each set up for the
 * strongest guarantees it offers, on the broker the RabbitMQ targets use:
 *
 * - `rabbitmq-client`: a `Publisher` with `confirm: true` and a retry
 *   (`maxAttempts: 2`), persistent (`durable`) and mandatory messages, returns
 *   counted through `onReturn`; a `Consumer` with `qos.prefetchCount` equal to
 *   the scenario's prefetch and the scenario's handler concurrency, acking
 *   each message when its handler returned, requeueing when it throws.
 * - `amqp-connection-manager`: a `ChannelWrapper` over a confirm channel,
 *   persistent and mandatory publishes whose promise settles at the confirm,
 *   returns counted from the channel's `return` event; consuming on a wrapper
 *   of its own with the scenario's prefetch, `ack` after the handler.
 * - `rascal`: a broker per round declaring its own topology from
 *   configuration, a publication with `confirm: true`, persistent and
 *   mandatory (`return` events counted), a subscription with the scenario's
 *   prefetch and an in-memory redelivery counter (limit 10), `ackOrNack()`
 *   after the handler. Its publish holds a pooled confirm channel per message
 *   until the confirm, so at most `confirmPool.max` messages (its default, 5)
 *   await confirms whatever the harness's window: its own way, left as it is.
 *   (Consume rounds are therefore filled through amqplib, see `prepareFill`.)
 *
 * Every round declares what Lossless declares for a topic and a group: a
 * durable topic exchange and a durable classic queue bound with `#`, with
 * the same names, and deletes them afterwards. A batch is published the way
 * each library publishes many messages (every message sent, then all
 * confirms awaited); the harness's publishers keep the same window as for
 * amqplib. A returned (unroutable) message fails its batch, as it does for
 * amqplib and Lossless. A consumer's message counts as settled when its
 * handler returns: the libraries send the ack right after and expose no hook
 * for it.
 */
import { RabbitTopology } from "@lossless/rabbitmq"
import { type ChannelWrapper, connect as connectManager } from "amqp-connection-manager"
import type { ConfirmChannel, ConsumeMessage } from "amqplib"
import { Effect, type Scope } from "effect"
import { Connection, type Envelope } from "rabbitmq-client"
import rascal, { type BrokerAsPromised, type PublicationSession } from "rascal"
import { peers } from "../Scenario.ts"
import { exclusive, losslessTopology, probe, rabbitmqRaw, rabbitRemover, url } from "./rabbitmq.ts"
import { type BenchClient, BenchError, type Sink, type Target } from "./Target.ts"
import { seqHeader } from "./transport.ts"

const noop = (): void => {}

const failed = (name: string, what: string) => (cause: unknown) =>
  new BenchError({ message: `${name}: ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

/** The harness's number of a message, from a header that may arrive as a string or as bytes. */
const seqFrom = (headers: Record<string, unknown> | undefined): number => {
  const value = headers?.[seqHeader]
  return Number(Buffer.isBuffer(value) ? value.toString("utf8") : value)
}

const queueArguments = RabbitTopology.queueArguments("classic")

/** A returned message fails its batch: a mandatory publish no queue took is a loss the caller must hear of. */
const unroutable = (name: string) => new BenchError({ message: `${name}: a message was returned unroutable` })

/**
 * Runs a callback-style consumer until the sink says stop: `start` begins
 * consuming and reports each message through `deliver`; the returned stop
 * function ends it, also when the effect is interrupted.
 */
const consumeUntilDone = (
  name: string,
  sink: Sink,
  start: (deliver: (seq: number) => boolean, fail: (cause: unknown) => void) => Promise<() => Promise<void>>
): Effect.Effect<void, BenchError> =>
  Effect.acquireUseRelease(
    Effect.sync(() => ({ stop: undefined as (() => Promise<void>) | undefined })),
    (handle) =>
      Effect.callback<void, BenchError>((resume) => {
        let done = false
        const finish = (outcome: Effect.Effect<void, BenchError>) => {
          if (done) return
          done = true
          resume(outcome)
        }
        const deliver = (seq: number): boolean => {
          sink.onReceive(seq)
          const more = sink.onSettled()
          if (!more) finish(Effect.void)
          return more
        }
        start(deliver, (cause) => finish(Effect.fail(failed(name, "consumer failed")(cause)))).then(
          (stop) => {
            handle.stop = stop
          },
          (cause: unknown) => finish(Effect.fail(failed(name, "could not consume")(cause)))
        )
      }),
    // Stopping hands whatever the consumer holds unacked back to the queue.
    (handle) => Effect.promise(() => (handle.stop?.() ?? Promise.resolve()).catch(noop))
  )

const connectionName = (name: string) => `lossless-bench ${name}`

// ---------------------------------------------------------------------------
// rabbitmq-client

const openRabbitmqClient: Effect.Effect<BenchClient, BenchError, Scope.Scope> = Effect.gen(function* () {
  const name = "rabbitmq-client"
  const remove = yield* rabbitRemover
  const rabbit = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const connection = new Connection({ url: url(), connectionName: connectionName(name) })
        connection.on("error", noop)
        await connection.onConnect(5000)
        return connection
      },
      catch: failed(name, "could not connect")
    }),
    (connection) => Effect.promise(() => connection.close().catch(noop))
  )
  let returned = 0
  const publisher = yield* Effect.acquireRelease(
    Effect.sync(() =>
      rabbit.createPublisher({
        confirm: true,
        // Its retry: a failed publish is tried once more (from memory) before the promise rejects.
        maxAttempts: 2,
        onReturn: () => {
          returned++
        }
      })
    ),
    (p) => Effect.promise(() => p.close().catch(noop))
  )

  return {
    prepare: (topic, group) => {
      const t = losslessTopology(topic, group)
      return Effect.tryPromise({
        try: async () => {
          await rabbit.exchangeDeclare({ exchange: t.exchange, type: RabbitTopology.exchangeType, durable: true })
          await rabbit.queueDeclare({ queue: t.queue, durable: true, arguments: queueArguments })
          await rabbit.queueBind({ queue: t.queue, exchange: t.exchange, routingKey: RabbitTopology.bindingKey })
        },
        catch: failed(name, "could not declare the round's exchange and queue")
      })
    },

    prepareBatch: (topic, firstSeq, count, payload) => {
      const exchange = RabbitTopology.exchange("", topic)
      const body = Buffer.from(payload)
      const envelopes: Array<Envelope> = []
      for (let i = 0; i < count; i++) {
        envelopes.push({
          exchange,
          routingKey: topic,
          durable: true,
          mandatory: true,
          headers: { [seqHeader]: String(firstSeq + i) }
        })
      }
      return Effect.tryPromise({
        try: () => Promise.all(envelopes.map((envelope) => publisher.send(envelope, body))),
        catch: failed(name, "publish not confirmed")
      }).pipe(Effect.flatMap(() => (returned === 0 ? Effect.void : Effect.fail(unroutable(name)))))
    },

    consume: (topic, group, prefetch, sink, options) => {
      const { queue } = losslessTopology(topic, group)
      return consumeUntilDone(name, sink, async (deliver, fail) => {
        let stopped = false
        const consumer = rabbit.createConsumer(
          {
            queue,
            // It declares the queue it consumes: the same declaration, or the broker refuses it.
            queueOptions: { durable: true, arguments: queueArguments },
            qos: { prefetchCount: prefetch },
            concurrency: options?.concurrency ?? prefetch,
            requeue: true
          },
          (message) => {
            if (stopped) return
            if (!deliver(seqFrom(message.headers))) stopped = true
          }
        )
        consumer.on("error", fail)
        return () => consumer.close()
      })
    },

    cleanup: (topic, group) => {
      const t = losslessTopology(topic, group)
      return remove({ queues: [t.queue], exchanges: [t.exchange] })
    }
  } satisfies BenchClient
})

// ---------------------------------------------------------------------------
// amqp-connection-manager

const openConnectionManager: Effect.Effect<BenchClient, BenchError, Scope.Scope> = Effect.gen(function* () {
  const name = "amqp-connection-manager"
  const remove = yield* rabbitRemover
  const manager = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const m = connectManager([url()], {
        connectionOptions: { clientProperties: { connection_name: connectionName(name) } }
      })
      m.on("connectFailed", noop)
      return m
    }),
    (m) => Effect.promise(() => m.close().catch(noop))
  )
  let returned = 0
  const channel = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const wrapper = manager.createChannel({
          confirm: true,
          json: false,
          // Run again on every new channel after a reconnect.
          setup: async (raw: ConfirmChannel) => {
            raw.on("return", () => {
              returned++
            })
          }
        })
        wrapper.on("error", noop)
        await wrapper.waitForConnect()
        return wrapper
      },
      catch: failed(name, "could not open a channel")
    }),
    (wrapper) => Effect.promise(() => wrapper.close().catch(noop))
  )

  return {
    prepare: (topic, group) => {
      const t = losslessTopology(topic, group)
      return Effect.tryPromise({
        try: async () => {
          await channel.assertExchange(t.exchange, RabbitTopology.exchangeType, { durable: true })
          await channel.assertQueue(t.queue, { durable: true, arguments: queueArguments })
          await channel.bindQueue(t.queue, t.exchange, RabbitTopology.bindingKey)
        },
        catch: failed(name, "could not declare the round's exchange and queue")
      })
    },

    prepareBatch: (topic, firstSeq, count, payload) => {
      const exchange = RabbitTopology.exchange("", topic)
      const content = Buffer.from(payload)
      const options = Array.from({ length: count }, (_, i) => ({
        persistent: true,
        mandatory: true,
        headers: { [seqHeader]: String(firstSeq + i) }
      }))
      return Effect.tryPromise({
        try: () => Promise.all(options.map((o) => channel.publish(exchange, topic, content, o))),
        catch: failed(name, "publish not confirmed")
      }).pipe(Effect.flatMap(() => (returned === 0 ? Effect.void : Effect.fail(unroutable(name)))))
    },

    consume: (topic, group, prefetch, sink) => {
      const { queue } = losslessTopology(topic, group)
      return consumeUntilDone(name, sink, async (deliver, fail) => {
        // A wrapper of its own, as the raw client consumes on a channel of its own.
        const consumer: ChannelWrapper = manager.createChannel({ confirm: false, json: false })
        consumer.on("error", fail)
        let stopped = false
        await consumer.consume(
          queue,
          (message: ConsumeMessage) => {
            if (stopped) return
            const more = deliver(seqFrom(message.properties.headers))
            consumer.ack(message)
            if (!more) stopped = true
          },
          { prefetch, noAck: false }
        )
        return () => consumer.close()
      })
    },

    cleanup: (topic, group) => {
      const t = losslessTopology(topic, group)
      return remove({ queues: [t.queue], exchanges: [t.exchange] })
    }
  } satisfies BenchClient
})

// ---------------------------------------------------------------------------
// rascal

/** Rascal's configuration for one round: its topology, one publication and one subscription. */
const rascalConfig = (topic: string, group: string) => {
  const t = losslessTopology(topic, group)
  return rascal.withDefaultConfig({
    vhosts: {
      "/": {
        connection: { url: url(), options: { clientProperties: { connection_name: connectionName("rascal") } } },
        exchanges: { [t.exchange]: { type: RabbitTopology.exchangeType, options: { durable: true } } },
        queues: { [t.queue]: { options: { durable: true, arguments: queueArguments } } },
        bindings: {
          work: {
            source: t.exchange,
            destination: t.queue,
            destinationType: "queue",
            bindingKey: RabbitTopology.bindingKey
          }
        },
        publications: {
          send: {
            exchange: t.exchange,
            routingKey: topic,
            confirm: true,
            options: { persistent: true, mandatory: true }
          }
        },
        subscriptions: {
          receive: { queue: t.queue, prefetch: 100, redeliveries: { limit: 10, counter: "memory" } }
        }
      }
    },
    redeliveries: { counters: { memory: { type: "inMemory", size: 10_000 } } }
  })
}

/** Publishes through a rascal publication and settles at the confirm; a return fails it. */
const rascalPublish = (broker: BrokerAsPromised, content: Buffer, seq: number): Promise<void> =>
  broker.publish("send", content, { options: { headers: { [seqHeader]: String(seq) } } }).then(
    (session: PublicationSession) =>
      new Promise<void>((resolve, reject) => {
        let returned = false
        session.on("return", () => {
          returned = true
          reject(new Error("returned unroutable"))
        })
        session.on("error", (error) => reject(error))
        // Rascal emits `success` at the confirm, before a return of the same message.
        session.on("success", () => setImmediate(() => (returned ? undefined : resolve())))
      })
  )

const openRascal: Effect.Effect<BenchClient, BenchError, Scope.Scope> = Effect.gen(function* () {
  const name = "rascal"
  const remove = yield* rabbitRemover
  // Fills consume rounds: rascal's own publish, a pooled channel per message until its confirm, would
  // take several times longer than the consuming. Same messages on the wire, without rascal's headers.
  const filler = yield* rabbitmqRaw.open
  // One broker per round: rascal declares topology, publications and subscriptions from configuration.
  const brokers = new Map<string, BrokerAsPromised>()
  const key = (topic: string, group: string) => `${topic}\u0000${group}`
  const shutdownAll = Effect.promise(() =>
    Promise.all([...brokers.values()].map((b) => b.shutdown().catch(noop))).then(() => brokers.clear())
  )
  yield* Effect.addFinalizer(() => shutdownAll)
  const brokerFor = (topic: string): Effect.Effect<BrokerAsPromised, BenchError> =>
    Effect.suspend(() => {
      for (const [k, b] of brokers) if (k.startsWith(`${topic}\u0000`)) return Effect.succeed(b)
      return Effect.fail(new BenchError({ message: `${name}: no broker for ${topic}` }))
    })

  return {
    prepare: (topic, group) =>
      Effect.tryPromise({
        try: async () => {
          const broker = await rascal.BrokerAsPromised.create(rascalConfig(topic, group))
          broker.on("error", noop)
          brokers.set(key(topic, group), broker)
        },
        catch: failed(name, "could not create the broker")
      }),

    prepareFill: filler.prepareBatch,

    prepareBatch: (topic, firstSeq, count, payload) => {
      const content = Buffer.from(payload)
      return Effect.flatMap(brokerFor(topic), (broker) =>
        Effect.tryPromise({
          try: () => Promise.all(Array.from({ length: count }, (_, i) => rascalPublish(broker, content, firstSeq + i))),
          catch: failed(name, "publish not confirmed")
        })
      ).pipe(Effect.asVoid)
    },

    consume: (topic, _group, prefetch, sink) =>
      Effect.flatMap(brokerFor(topic), (broker) =>
        consumeUntilDone(name, sink, async (deliver, fail) => {
          const subscription = await broker.subscribe("receive", { prefetch })
          let stopped = false
          subscription.on("message", (message, _content, ackOrNack) => {
            if (stopped) return
            const more = deliver(seqFrom(message.properties.headers))
            ackOrNack()
            if (!more) stopped = true
          })
          subscription.on("error", fail)
          return () => subscription.cancel()
        })
      ),

    cleanup: (topic, group) => {
      const t = losslessTopology(topic, group)
      const k = key(topic, group)
      return Effect.promise(async () => {
        const broker = brokers.get(k)
        brokers.delete(k)
        await broker?.shutdown().catch(noop)
      }).pipe(Effect.andThen(remove({ queues: [t.queue], exchanges: [t.exchange] })))
    }
  } satisfies BenchClient
})

// ---------------------------------------------------------------------------

const [rabbitmqClientName, connectionManagerName, rascalName] = peers.map((p) => p.target) as [string, string, string]

export const rabbitmqClientPeer: Target = {
  name: rabbitmqClientName,
  broker: "rabbitmq",
  kind: "peer",
  description:
    "rabbitmq-client Publisher (confirm, mandatory, durable, maxAttempts 2) and Consumer (qos, ack after handler)",
  note:
    "retries a failed publish from memory only (maxAttempts); an unroutable message reaches an onReturn callback " +
    "but its send still succeeds; no dead-letter policy of its own (a throwing handler requeues forever unless the " +
    "queue has one); no dedupe, outbox or loss detection.",
  probe,
  open: openRabbitmqClient,
  exclusive
}

export const connectionManagerPeer: Target = {
  name: connectionManagerName,
  broker: "rabbitmq",
  kind: "peer",
  description:
    "amqp-connection-manager ChannelWrapper on a confirm channel (persistent, mandatory) and consume with ack",
  note:
    "buffers publishes in memory while disconnected and replays them on reconnect (lost if the process stops); " +
    "returns show only as the raw channel's event, the publish still resolves; no retry schedule, no dead-letter " +
    "policy, no dedupe, outbox or loss detection.",
  probe,
  open: openConnectionManager,
  exclusive
}

export const rascalPeer: Target = {
  name: rascalName,
  broker: "rabbitmq",
  kind: "peer",
  description:
    "rascal publication (confirm, persistent, mandatory) and subscription (prefetch, in-memory redelivery limit)",
  note:
    "the closest: confirms, returns as events, a redelivery limit and recovery strategies (republish, forward to a " +
    "dead-letter exchange) you configure; but redelivery counts live in memory (lost on restart), a return does not " +
    "fail the publish, at most 5 publishes await confirms by default (one pooled channel each), and there is no " +
    "dedupe store, outbox or loss detection.",
  probe,
  open: openRascal,
  exclusive
}

export const peerTargets: ReadonlyArray<Target> = [rabbitmqClientPeer, connectionManagerPeer, rascalPeer]
