/**
 * A dedupe store in Redis, shared by every consumer process of a group.
 *
 * Each operation is one Lua script, so it is atomic and takes one round trip
 * (the batch forms `claimMany` and `completeMany`, which the consumer uses for
 * every chunk of deliveries, take one round trip for up to `maxBatch` keys):
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

// The batch forms take every key in one argument and answer in one string, a
// digit per key: a per-key argument or reply costs the client more than the
// script's whole work on that key. The keys arrive concatenated, with their
// byte lengths in a separate argument, so a key may hold any byte.
//
// ARGV: prefix, value (one token for the batch), expiry, lengths ("12,40,..."), keys.
const claimManyScript = `
local prefix, value, expiry, keys = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local answers, at = {}, 1
for length in string.gmatch(ARGV[4], "%d+") do
  local after = at + tonumber(length)
  local key = prefix .. string.sub(keys, at, after - 1)
  at = after
  local set
  if expiry == "0" then
    set = redis.call("SET", key, value, "NX")
  else
    set = redis.call("SET", key, value, "NX", "PX", expiry)
  end
  if set then
    answers[#answers + 1] = "1"
  elseif redis.call("GET", key) == "done" then
    answers[#answers + 1] = "2"
  else
    answers[#answers + 1] = "3"
  end
end
return table.concat(answers)
`

// ARGV: prefix, expiry, then for each run of keys claimed under one value: value, lengths, keys.
const completeManyScript = `
local prefix, expiry = ARGV[1], ARGV[2]
local answers = {}
for run = 3, #ARGV, 3 do
  local value, keys, at = ARGV[run], ARGV[run + 2], 1
  for length in string.gmatch(ARGV[run + 1], "%d+") do
    local after = at + tonumber(length)
    local key = prefix .. string.sub(keys, at, after - 1)
    at = after
    if redis.call("GET", key) ~= value then
      answers[#answers + 1] = "0"
    else
      if expiry == "0" then
        redis.call("SET", key, "done")
      else
        redis.call("SET", key, "done", "PX", expiry)
      end
      answers[#answers + 1] = "1"
    end
  end
end
return table.concat(answers)
`

/** The scripts as client methods: ioredis sends EVALSHA and loads a script on NOSCRIPT. */
interface Commands {
  losslessDedupeClaimV1(key: string, value: string, leaseMillis: string): Promise<unknown>
  losslessDedupeCompleteV1(key: string, value: string, ttlMillis: string): Promise<unknown>
  losslessDedupeReleaseV1(key: string, value: string): Promise<unknown>
  losslessDedupeClaimManyV2(
    prefix: string,
    value: string,
    leaseMillis: string,
    lengths: string,
    keys: string
  ): Promise<unknown>
  losslessDedupeCompleteManyV2(prefix: string, ttlMillis: string, ...runs: ReadonlyArray<string>): Promise<unknown>
}

const commands = (client: Redis | Redis<"resp3">): Commands => {
  // Defined once per client; the versioned names leave the client's own commands alone.
  if (!("losslessDedupeClaimV1" in client)) {
    client.defineCommand("losslessDedupeClaimV1", { numberOfKeys: 1, lua: claimScript })
    client.defineCommand("losslessDedupeCompleteV1", { numberOfKeys: 1, lua: completeScript })
    client.defineCommand("losslessDedupeReleaseV1", { numberOfKeys: 1, lua: releaseScript })
    // The keys travel in one argument (see the scripts), so the batch forms declare none.
    client.defineCommand("losslessDedupeClaimManyV2", { numberOfKeys: 0, lua: claimManyScript })
    client.defineCommand("losslessDedupeCompleteManyV2", { numberOfKeys: 0, lua: completeManyScript })
  }
  return client as unknown as Commands
}

/** Keys per script call: a long script blocks every other client of the server meanwhile. */
export const maxBatch = 512

/** Splits `items` into runs of at most `maxBatch`. */
const chunks = <A>(items: ReadonlyArray<A>): ReadonlyArray<ReadonlyArray<A>> => {
  if (items.length <= maxBatch) return [items]
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += maxBatch) out.push(items.slice(i, i + maxBatch))
  return out
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
            const claim = claimOf(reply, token)
            return claim === undefined ? Effect.fail(unexpected("claim", reply)) : Effect.succeed(claim)
          }
        )
      ),
    complete: (key, token, ttl) =>
      Effect.flatMap(
        run(() => redis.losslessDedupeCompleteV1(prefix + key, busy(token), millis(ttl))),
        (reply) => {
          const done = completedOf(reply)
          return done === undefined ? Effect.fail(unexpected("complete", reply)) : Effect.succeed(done)
        }
      ),
    release: (key, token) => Effect.asVoid(run(() => redis.losslessDedupeReleaseV1(prefix + key, busy(token)))),
    // One token for the batch: each key is claimed at most once in it, and a token proves a claim on its own key only.
    claimMany: (keys, lease) =>
      Effect.flatMap(MessageId.make, (token) => {
        const value = busy(token)
        const expiry = millis(lease)
        return Effect.map(
          Effect.forEach(
            chunks(keys),
            (batch) => {
              const packed = pack(batch)
              return Effect.flatMap(
                run(() => redis.losslessDedupeClaimManyV2(prefix, value, expiry, packed.lengths, packed.keys)),
                (reply) => answers(reply, batch.length, "claim", (code) => claimOf(code, token))
              )
            },
            { concurrency: "unbounded" }
          ),
          (replies) => replies.flat()
        )
      }),
    completeMany: (claims, ttl) => {
      const expiry = millis(ttl)
      return Effect.map(
        Effect.forEach(
          chunks(claims),
          (batch) => {
            const { args, order } = runsByToken(batch)
            return Effect.flatMap(
              run(() => redis.losslessDedupeCompleteManyV2(prefix, expiry, ...args)),
              (reply) =>
                Effect.map(
                  answers(reply, batch.length, "complete", completedOf),
                  // The script answers run by run; put the answers back in the caller's order.
                  (inRuns) => order.map((at) => inRuns[at] as boolean)
                )
            )
          },
          { concurrency: "unbounded" }
        ),
        (replies) => replies.flat()
      )
    }
  }
}

/** Keys as the batch scripts take them: their byte lengths, and the keys end to end. */
const pack = (keys: ReadonlyArray<string>): { readonly lengths: string; readonly keys: string } => {
  let lengths = ""
  for (let i = 0; i < keys.length; i++) {
    lengths += i === 0 ? "" : ","
    lengths += Buffer.byteLength(keys[i] as string)
  }
  return { lengths, keys: keys.join("") }
}

/**
 * The arguments of `completeMany`'s script: the claims grouped by token (a
 * batch claim gives many keys one token), each group as value, lengths,
 * keys. `order[i]` is where the i-th claim's answer is in the script's reply.
 */
const runsByToken = (
  claims: ReadonlyArray<Dedupe.Completion>
): { readonly args: ReadonlyArray<string>; readonly order: ReadonlyArray<number> } => {
  const groups = new Map<string, Array<string>>()
  const slots: Array<{ readonly keys: Array<string>; readonly index: number }> = []
  for (const claim of claims) {
    let keys = groups.get(claim.token)
    if (keys === undefined) {
      keys = []
      groups.set(claim.token, keys)
    }
    slots.push({ keys, index: keys.length })
    keys.push(claim.key)
  }
  const args: Array<string> = []
  const offsets = new Map<Array<string>, number>()
  let offset = 0
  for (const [token, keys] of groups) {
    const packed = pack(keys)
    args.push(busy(token), packed.lengths, packed.keys)
    offsets.set(keys, offset)
    offset += keys.length
  }
  return { args, order: slots.map((slot) => (offsets.get(slot.keys) as number) + slot.index) }
}

/** A complete's answer: 1 done, 0 no longer held. */
const completedOf = (code: unknown): boolean | undefined => (code === 1 || code === 0 ? code === 1 : undefined)

const claimOf = (code: unknown, token: string): Dedupe.Claim | undefined => {
  switch (code) {
    case 1:
      return { _tag: "Acquired", token }
    case 2:
      return { _tag: "Done" }
    case 3:
      return { _tag: "Busy" }
    default:
      return undefined
  }
}

/** Reads a batch script's reply: a string of `count` digits, each understood by `read` as the single forms' integer answers. */
const answers = <A>(
  reply: unknown,
  count: number,
  operation: string,
  read: (code: number) => A | undefined
): Effect.Effect<ReadonlyArray<A>, StoreUnavailable> => {
  const bad = () =>
    Effect.fail(
      new StoreUnavailable({ store: name, reason: `unexpected reply to ${operation}: ${JSON.stringify(reply)}` })
    )
  if (typeof reply !== "string" || reply.length !== count) return bad()
  const out: Array<A> = []
  for (let i = 0; i < count; i++) {
    const answer = read(reply.charCodeAt(i) - 48)
    if (answer === undefined) return bad()
    out.push(answer)
  }
  return Effect.succeed(out)
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
