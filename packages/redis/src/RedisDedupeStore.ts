/**
 * A dedupe store in Redis, shared by every consumer process of a group.
 *
 * Each operation is one Lua script, so it is atomic and takes one round trip:
 * - `claim` sets `busy:<token>` with the lease as expiry unless the key
 *   exists, and otherwise says whether it is `done` or `busy`.
 * - `complete` turns the key into `done` (kept for `ttl`) only while it still
 *   holds the caller's `busy:<token>`.
 * - `release` deletes the key only while it still holds `busy:<token>`.
 *
 * Expiry is Redis' own, so a crashed consumer's claim lapses after its lease
 * and the redelivered message runs again (at-least-once, duplicates
 * suppressed). A claim whose lease ran out mid-handler may be taken by another
 * consumer; the late `complete` then reports `false` instead of overwriting it.
 *
 * Any failure (Redis down, a command timeout, an error reply) is a
 * `StoreUnavailable`; the consumer's `onStoreUnavailable` decides what follows
 * (by default the message goes back to the broker, unacked).
 *
 * ```ts
 * const program = Effect.gen(function* () {
 *   const store = yield* RedisDedupeStore.Store
 *   yield* Consumer.start({ topic, group, handler, dedupe: { store } })
 * }).pipe(Effect.provide(RedisDedupeStore.layer()))
 * ```
 *
 * @since 0.1.0
 */
import { type Dedupe, MessageId, StoreUnavailable } from "@lossless/core"
import { Context, Duration, Effect, Layer } from "effect"
import type { Redis } from "ioredis"
import { attempt } from "./internal/failure.ts"
import * as RedisClient from "./RedisClient.ts"

/** The store's name in `StoreUnavailable` errors and logs. */
export const name = "redis"

/** The prefix of every key the store writes, unless another is given. */
export const defaultPrefix = "lossless:dedupe:"

export interface RedisDedupeStoreOptions {
  /**
   * Put before every key, so the store's keys are easy to find and cannot
   * collide with the application's.
   * @default "lossless:dedupe:"
   */
  readonly prefix?: string | undefined
}

// Expiry arguments are milliseconds; "0" means none (an infinite Duration).
const claimScript = `
local set
if ARGV[2] == "0" then
  set = redis.call("SET", KEYS[1], ARGV[1], "NX")
else
  set = redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2])
end
if set then return 1 end
if redis.call("GET", KEYS[1]) == "done" then return 2 end
return 3
`

const completeScript = `
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == "0" then
  redis.call("SET", KEYS[1], "done")
else
  redis.call("SET", KEYS[1], "done", "PX", ARGV[2])
end
return 1
`

const releaseScript = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("DEL", KEYS[1])
  return 1
end
return 0
`

/** The scripts as client methods: ioredis sends EVALSHA and loads a script on NOSCRIPT. */
interface Commands {
  losslessDedupeClaimV1(key: string, value: string, leaseMillis: string): Promise<unknown>
  losslessDedupeCompleteV1(key: string, value: string, ttlMillis: string): Promise<unknown>
  losslessDedupeReleaseV1(key: string, value: string): Promise<unknown>
}

const commands = (client: Redis | Redis<"resp3">): Commands => {
  // Defined once per client; the versioned names leave the client's own commands alone.
  if (!("losslessDedupeClaimV1" in client)) {
    client.defineCommand("losslessDedupeClaimV1", { numberOfKeys: 1, lua: claimScript })
    client.defineCommand("losslessDedupeCompleteV1", { numberOfKeys: 1, lua: completeScript })
    client.defineCommand("losslessDedupeReleaseV1", { numberOfKeys: 1, lua: releaseScript })
  }
  return client as unknown as Commands
}

/** Whole milliseconds, at least 1 (PX rejects 0); "0" for an infinite duration. */
const millis = (duration: Duration.Duration): string => {
  const ms = Duration.toMillis(duration)
  return Number.isFinite(ms) ? String(Math.max(1, Math.ceil(ms))) : "0"
}

const busy = (token: string): string => `busy:${token}`

/**
 * The store over `client`, which it does not close. For a client built
 * elsewhere, spread `RedisClient.defaults` into its options: with ioredis'
 * own defaults a command waits through twenty reconnect attempts before
 * failing.
 */
export const make = (client: Redis | Redis<"resp3">, options: RedisDedupeStoreOptions = {}): Dedupe.DedupeStore => {
  const prefix = options.prefix ?? defaultPrefix
  const redis = commands(client)
  const run = <A>(command: () => Promise<A>) => attempt(client, name, command)
  const unexpected = (operation: string, reply: unknown) =>
    new StoreUnavailable({ store: name, reason: `unexpected reply to ${operation}: ${JSON.stringify(reply)}` })
  return {
    name,
    claim: (key, lease) =>
      Effect.flatMap(MessageId.make, (token) =>
        Effect.flatMap(
          run(() => redis.losslessDedupeClaimV1(prefix + key, busy(token), millis(lease))),
          (reply): Effect.Effect<Dedupe.Claim, StoreUnavailable> => {
            switch (reply) {
              case 1:
                return Effect.succeed({ _tag: "Acquired", token })
              case 2:
                return Effect.succeed({ _tag: "Done" })
              case 3:
                return Effect.succeed({ _tag: "Busy" })
              default:
                return Effect.fail(unexpected("claim", reply))
            }
          }
        )
      ),
    complete: (key, token, ttl) =>
      Effect.flatMap(
        run(() => redis.losslessDedupeCompleteV1(prefix + key, busy(token), millis(ttl))),
        (reply) =>
          reply === 1 || reply === 0 ? Effect.succeed(reply === 1) : Effect.fail(unexpected("complete", reply))
      ),
    release: (key, token) => Effect.asVoid(run(() => redis.losslessDedupeReleaseV1(prefix + key, busy(token))))
  }
}

/** The Redis dedupe store, to pass as `dedupe: { store }` to a consumer. */
export class Store extends Context.Service<Store, Dedupe.DedupeStore>()("@lossless/redis/RedisDedupeStore") {}

/** The store over the `RedisClient` in context, e.g. a client of your own. */
export const layerStore = (options: RedisDedupeStoreOptions = {}): Layer.Layer<Store, never, RedisClient.RedisClient> =>
  Layer.effect(
    Store,
    Effect.map(RedisClient.RedisClient, (client) => make(client, options))
  )

/**
 * The store with a client of its own, from `options.url` or
 * `LOSSLESS_REDIS_URL`; the client is closed when the layer is released.
 */
export const layer = (
  options: RedisDedupeStoreOptions & RedisClient.RedisClientOptions = {}
): Layer.Layer<Store | RedisClient.RedisClient, RedisClient.LayerError> =>
  layerStore(options).pipe(Layer.provideMerge(RedisClient.layer(options)))
