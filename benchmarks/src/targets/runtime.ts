/**
 * The core runtime over the memory transport: `Publisher.sendBatch` on the
 * producing side, `Consumer.start` with a no-op handler on the consuming side.
 * One target per core feature, so a comparison can set each beside the plain
 * runtime and read off what the feature costs:
 *
 * - `runtime`: neither loss detection nor dedupe;
 * - `runtime+loss-detection`: the publisher stamps sequences, the consumer feeds a `LossDetector`;
 * - `runtime+memory-dedupe`: the consumer claims and completes every message in `Dedupe.memoryStore()`;
 * - `runtime+redis-dedupe`: the same in `RedisDedupeStore` on the Redis at `LOSSLESS_REDIS_URL`
 *   (default `redis://127.0.0.1:6379`), skipped when it does not answer.
 *
 * Everything else is the library's defaults, except what `consumerSettings`
 * lists. Payloads are bytes passed through as they are (no JSON), so the
 * figures are the runtime's own work, not a codec's.
 */
import { type Codec, Consumer, Dedupe, type Delivery, LossDetector, Publisher, Topic, Transport } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { RedisClient, RedisDedupeStore } from "@lossless/redis"
import { Services } from "@lossless/testkit"
import { Context, Deferred, Duration, Effect, Layer, Schema, type Scope, Stream } from "effect"
import { type Feature, runtimeTarget } from "../Scenario.ts"
import { type Availability, type BenchClient, BenchError, type Sink, type Target } from "./Target.ts"
import { seqHeader } from "./transport.ts"

/** The ioredis client `RedisClient.make` opens. */
type Redis = Effect.Success<ReturnType<typeof RedisClient.make>>

/**
 * The consumer options the runtime targets set. Concurrency is the library's
 * default (a scenario may set another); ordering `"none"` because the harness's messages have no key (with
 * `"key"` they would be spread round-robin over one lane per worker). The
 * prefetch is the scenario's, like the transport targets'.
 */
export const consumerSettings = { concurrency: 16, ordering: "none" } as const

/** Payload bytes as they are: the runtime's cost without a codec's. */
const bytesCodec: Codec.Codec<Uint8Array> = {
  contentType: "application/octet-stream",
  encode: (value) => (value instanceof Uint8Array ? Effect.succeed(value) : Effect.fail("payload is not bytes")),
  decode: (bytes) => Effect.succeed(bytes)
}

export const bytesTopic = (name: string): Topic.Topic<Uint8Array> =>
  Topic.make(name, Schema.Uint8Array, { codec: () => bytesCodec })

/**
 * The transport with every ack reported to the sink after the broker took it,
 * so a round ends at the last ack as it does for the transport targets. The
 * harness's extra work per message is one object copy and one `Effect.map`.
 */
const reportingAcks = (
  transport: Transport.TransportShape,
  sink: Sink,
  stop: Deferred.Deferred<void>
): Transport.TransportShape => {
  const settled = () => {
    if (!sink.onSettled()) Deferred.doneUnsafe(stop, Effect.void)
  }
  return {
    ...transport,
    subscribe: (topic, group, options) =>
      Stream.map(
        transport.subscribe(topic, group, options),
        (delivery): Delivery.Delivery => ({ ...delivery, ack: Effect.map(delivery.ack, settled) })
      )
  }
}

/** Deletes the keys matching `pattern` (SCAN then UNLINK, in chunks). */
const deleteKeys = (client: Redis, pattern: string): Promise<number> => {
  const loop = async (cursor: string, deleted: number): Promise<number> => {
    const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 10_000)
    if (keys.length > 0) await client.unlink(...keys)
    return next === "0" ? deleted + keys.length : loop(next, deleted + keys.length)
  }
  return loop("0", 0)
}

/** The capacity of `Dedupe.memoryStore()` (its default). */
const memoryStoreCapacity = 100_000

/**
 * Records `count` handled keys (of a group no round uses), so the store is
 * full from the first round on, as in a consumer that has been running a while,
 * instead of filling up (and getting slower) during the measured rounds.
 */
const fill = (store: Dedupe.DedupeStore, count: number): Effect.Effect<void> => {
  const lease = Duration.minutes(5)
  const ttl = Duration.hours(24)
  return Effect.orDie(
    Effect.forEach(
      Array.from({ length: count }, (_, i) => `bench-fill:${i}`),
      (key) =>
        Effect.flatMap(store.claim(key, lease), (claim) =>
          claim._tag === "Acquired" ? store.complete(key, claim.token, ttl) : Effect.void
        ),
      { discard: true }
    )
  )
}

/** A store for the feature, open for the scope; `prepare` runs before each round (outside its timing). */
interface DedupeSetup {
  readonly store: Dedupe.DedupeStore
  readonly prepare: Effect.Effect<void, BenchError>
  /** The store server's CPU seconds so far, when it has a server. */
  readonly serverCpuSeconds?: Effect.Effect<number, BenchError> | undefined
}

/** Redis' own CPU time (user + system, from `INFO cpu`), seconds. */
const redisCpuSeconds = (client: Redis): Effect.Effect<number, BenchError> =>
  Effect.tryPromise({
    try: async () => {
      const info = await client.info("cpu")
      let seconds = 0
      for (const line of info.split("\n")) {
        const match = /^used_cpu_(?:user|sys):([\d.]+)/.exec(line.trim())
        if (match !== null) seconds += Number(match[1])
      }
      return seconds
    },
    catch: (cause) => new BenchError({ message: `redis: INFO cpu failed: ${String(cause)}`, cause })
  })

const redisDedupe: Effect.Effect<DedupeSetup, BenchError, Scope.Scope> = Effect.gen(function* () {
  const url = Services.url("redis")
  // The package's recommended client: `RedisClient.make` applies `RedisClient.defaults`.
  const client = yield* RedisClient.make(url).pipe(
    Effect.mapError((cause) => new BenchError({ message: `redis: ${cause.message}`, cause }))
  )
  yield* Effect.tryPromise({
    try: () => client.ping(),
    catch: (cause) => new BenchError({ message: `redis: no answer to PING: ${String(cause)}`, cause })
  })
  // Unique per opened client, so runs (and runs of other processes) never share keys.
  const prefix = `lossless-bench:${process.pid}:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 8)}:`
  const cleanup = Effect.tryPromise({
    try: () => deleteKeys(client, `${prefix}*`),
    catch: (cause) =>
      new BenchError({ message: `redis: could not delete the benchmark's keys: ${String(cause)}`, cause })
  })
  // Registered after the client, so it runs before the client is closed.
  yield* Effect.addFinalizer(() => Effect.ignore(cleanup))
  return {
    store: RedisDedupeStore.make(client, { prefix }),
    // The previous rounds' keys go before the next round, so Redis holds one round's at most.
    prepare: Effect.asVoid(cleanup),
    serverCpuSeconds: redisCpuSeconds(client)
  }
})

const dedupeSetup = (feature: Feature): Effect.Effect<DedupeSetup | undefined, BenchError, Scope.Scope> => {
  switch (feature) {
    case "memory-dedupe":
      return Effect.map(Dedupe.memoryStore(), (store) => ({ store, prepare: Effect.void })).pipe(
        Effect.tap(({ store }) => fill(store, memoryStoreCapacity))
      )
    case "redis-dedupe":
      return redisDedupe
    default:
      return Effect.succeed(undefined)
  }
}

/**
 * A client over core's runtime on `transport` with `feature` switched on, open
 * for the scope: what every runtime target runs, whatever its broker. `name`
 * prefixes its errors.
 */
export const openRuntime = (
  name: string,
  transport: Transport.TransportShape,
  feature: Feature
): Effect.Effect<BenchClient, BenchError, Scope.Scope> =>
  Effect.gen(function* () {
    const publisher = yield* Publisher.make({ lossDetection: feature === "loss-detection" }).pipe(
      Effect.provideService(Transport.Transport, transport)
    )
    const lossDetector = feature === "loss-detection" ? yield* LossDetector.make() : undefined
    const dedupe = yield* dedupeSetup(feature)
    const topics = new Map<string, Topic.Topic<Uint8Array>>()
    const topicOf = (name: string): Topic.Topic<Uint8Array> => {
      let topic = topics.get(name)
      if (topic === undefined) {
        topic = bytesTopic(name)
        topics.set(name, topic)
      }
      return topic
    }

    return {
      serverCpuSeconds: dedupe?.serverCpuSeconds,
      prepare: (topic, group) =>
        Effect.andThen(
          dedupe?.prepare ?? Effect.void,
          transport
            .ensureTopology({ topics: [topic], groups: [{ topic, group }] })
            .pipe(Effect.mapError((cause) => new BenchError({ message: `${name}: ensureTopology failed`, cause })))
        ),

      prepareBatch: (topic, firstSeq, count, payload) => {
        if (count === 1) {
          // One message: `send`, as an application sends one.
          const t = topicOf(topic)
          const options = { headers: { [seqHeader]: String(firstSeq) } }
          return Effect.suspend(() => publisher.send(t, payload, options)).pipe(
            Effect.asVoid,
            Effect.mapError((cause) => new BenchError({ message: `${name}: send failed: ${cause.message}`, cause }))
          )
        }
        const messages: Array<Publisher.Outgoing<Uint8Array>> = []
        for (let i = 0; i < count; i++) messages.push({ payload, headers: { [seqHeader]: String(firstSeq + i) } })
        const t = topicOf(topic)
        // Each run encodes the batch afresh: new message ids (dedupe must see new messages), new stamps.
        return Effect.suspend(() => publisher.sendBatch(t, messages)).pipe(
          Effect.asVoid,
          Effect.mapError((cause) => new BenchError({ message: `${name}: send failed: ${cause.message}`, cause }))
        )
      },

      consume: (topic, group, prefetch, sink, options) =>
        Effect.scoped(
          Effect.gen(function* () {
            const stop = Deferred.makeUnsafe<void>()
            const running = yield* Consumer.start({
              topic: topicOf(topic),
              group,
              ...consumerSettings,
              concurrency: options?.concurrency ?? consumerSettings.concurrency,
              prefetch,
              lossDetector,
              dedupe: dedupe === undefined ? undefined : { store: dedupe.store },
              handler: (message) => {
                sink.onReceive(Number(message.headers[seqHeader]))
                return Effect.void
              }
            }).pipe(Effect.provideService(Transport.Transport, reportingAcks(transport, sink, stop)))
            yield* Effect.raceFirst(Deferred.await(stop), running.done)
          })
        ).pipe(
          Effect.mapError((cause) => new BenchError({ message: `${name}: consumer failed: ${cause.message}`, cause }))
        )
    } satisfies BenchClient
  })

/** The runtime with `feature` over a memory broker of its own. */
const open = (feature: Feature): Effect.Effect<BenchClient, BenchError, Scope.Scope> =>
  Effect.flatMap(Layer.build(MemoryTransport.layer()), (context) =>
    openRuntime(runtimeTarget(feature), Context.get(context, Transport.Transport), feature)
  )

const descriptions: Record<Feature, string> = {
  plain: "core Publisher.sendBatch + Consumer.start over @lossless/memory",
  "loss-detection": "the runtime with sequence stamps and a LossDetector",
  "memory-dedupe": "the runtime with Dedupe.memoryStore()",
  "redis-dedupe": "the runtime with RedisDedupeStore (@lossless/redis, RedisClient defaults)"
}

const probe = (feature: Feature): Effect.Effect<Availability> =>
  feature !== "redis-dedupe"
    ? Effect.succeed({ available: true })
    : Effect.map(
        Effect.promise(() => Services.check("redis", 1000)),
        (check): Availability =>
          check.available ? { available: true } : { available: false, reason: `Redis at ${check.url}: ${check.reason}` }
      )

/** The runtime target with `feature`. */
export const runtime = (feature: Feature): Target => ({
  name: runtimeTarget(feature),
  broker: "memory",
  kind: "runtime",
  description: descriptions[feature],
  probe: probe(feature),
  open: open(feature)
})
