/**
 * RocketMQ two ways, each on an in-process RocketMQ 5 emulator
 * (`@lossless/testkit/rocketmq`) of its own, over gRPC with the real client:
 *
 * - `rocketmq-raw`: rocketmq-client-nodejs itself, the baseline. A Producer
 *   sending each message of a batch synchronously, all at once, the batch
 *   complete when every send answered OK; a SimpleConsumer receiving batches
 *   of up to `prefetch` (at most 32) with a 30 s invisible duration and
 *   acking each message.
 * - `rocketmq`: `@lossless/rocketmq` through the Transport contract, driven
 *   like the memory transport (`transport.ts`).
 *
 * Both consume as the RocketMQ consumer group Lossless uses for a topic and
 * a group (`<topic>__<group>`), registered in `prepare` so that it receives
 * what the round publishes. The emulator stores in memory: the figures
 * compare the two clients' costs, not a broker's.
 */
import { RocketTopology, RocketTransport } from "@lossless/rocketmq"
import * as RocketEmulator from "@lossless/testkit/rocketmq"
import { Effect, Scope } from "effect"
import { Producer, SimpleConsumer } from "rocketmq-client-nodejs"
import { openRuntime } from "./runtime.ts"
import { type BenchClient, BenchError, type Target } from "./Target.ts"
import { buildTransport, fromLayer, seqHeader } from "./transport.ts"

const failed = (what: string) => (cause: unknown) =>
  new BenchError({ message: `rocketmq: ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })

/** The client's logger, silent: its default writes a log file in the home directory. */
const quiet = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {}, close: () => {} }

const emulator = RocketEmulator.scoped()

const started = <C extends { startup(): Promise<void>; shutdown(): Promise<void> }>(
  what: string,
  make: () => C
): Effect.Effect<C, BenchError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const client = make()
        await client.startup()
        return client
      },
      catch: failed(`could not start the ${what}`)
    }),
    (client) => Effect.promise(() => client.shutdown().catch(() => {}))
  )

const invisibleMillis = 30_000

const openRaw: Effect.Effect<BenchClient, BenchError, Scope.Scope> = Effect.gen(function* () {
  const { endpoint } = yield* emulator
  const base = { endpoints: endpoint, namespace: "", logger: quiet }
  const producer = yield* started("producer", () => new Producer({ ...base, maxAttempts: 1 }))
  const scope = yield* Effect.scope
  const consumers = new Map<string, SimpleConsumer>()
  const consumerOf = (topic: string, group: string) =>
    Effect.suspend(() => {
      const consumerGroup = RocketTopology.consumerGroup(topic, group)
      const known = consumers.get(consumerGroup)
      if (known !== undefined) return Effect.succeed(known)
      return started(
        "consumer",
        () =>
          new SimpleConsumer({
            ...base,
            consumerGroup,
            subscriptions: new Map([[topic, "*"]]),
            awaitDuration: 5_000
          })
      ).pipe(
        Effect.provideService(Scope.Scope, scope),
        Effect.tap((consumer) => Effect.sync(() => consumers.set(consumerGroup, consumer)))
      )
    })

  return {
    prepare: (topic, group) => Effect.asVoid(consumerOf(topic, group)),

    prepareBatch: (topic, firstSeq, count, payload) => {
      const body = Buffer.from(payload)
      const messages = Array.from({ length: count }, (_, i) => ({
        topic,
        body,
        properties: new Map([[seqHeader, String(firstSeq + i)]])
      }))
      return Effect.tryPromise({
        try: () => Promise.all(messages.map((message) => producer.send(message))),
        catch: failed("send not confirmed")
      }).pipe(Effect.asVoid)
    },

    consume: (topic, group, prefetch, sink) =>
      Effect.flatMap(consumerOf(topic, group), (consumer) =>
        Effect.tryPromise({
          try: async () => {
            for (;;) {
              const views = await consumer.receive(Math.min(32, Math.max(1, prefetch)), invisibleMillis)
              for (const view of views) {
                sink.onReceive(Number(view.properties.get(seqHeader)))
                await consumer.ack(view)
                if (!sink.onSettled()) return
              }
            }
          },
          catch: failed("consume failed")
        })
      )
  } satisfies BenchClient
})

const openTransport: Effect.Effect<BenchClient, BenchError, Scope.Scope> = Effect.flatMap(emulator, ({ endpoint }) =>
  fromLayer(RocketTransport.layer({ url: `rocketmq://${endpoint}` }))
)

/** Core's Publisher and Consumer over the adapter, as the RabbitMQ runtime target runs them. */
const openRuntimeClient: Effect.Effect<BenchClient, BenchError, Scope.Scope> = Effect.flatMap(
  emulator,
  ({ endpoint }) =>
    Effect.flatMap(buildTransport(RocketTransport.layer({ url: `rocketmq://${endpoint}` })), (transport) =>
      openRuntime("rocketmq-runtime", transport, "plain")
    )
)

const probe = Effect.succeed({ available: true } as const)

export const rocketmqRaw: Target = {
  name: "rocketmq-raw",
  broker: "rocketmq",
  kind: "raw",
  description:
    "rocketmq-client-nodejs Producer (synchronous sends) and SimpleConsumer with per-message acks, on the emulator",
  probe,
  open: openRaw
}

export const rocketmqTransport: Target = {
  name: "rocketmq",
  broker: "rocketmq",
  kind: "lossless",
  description: "@lossless/rocketmq, through the Transport contract, on the emulator",
  probe,
  open: openTransport
}

export const rocketmqRuntime: Target = {
  name: "rocketmq-runtime",
  broker: "rocketmq",
  kind: "runtime",
  description: "core Publisher.sendBatch + Consumer.start over @lossless/rocketmq, on the emulator",
  probe,
  open: openRuntimeClient
}
