/**
 * The Redis store against a real Redis: each answer of the claim protocol,
 * owner checks, expiry on Redis' own clock, and failure when Redis is gone.
 */
import { type AddressInfo, createServer } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { type Dedupe, StoreUnavailable } from "@lossless/core"
import { RedisClient, RedisDedupeStore } from "@lossless/redis"
import { DedupeStoreSuite, Harness, Services } from "@lossless/testkit"
import { ConfigProvider, Duration, Effect, Exit, Layer } from "effect"

const redis = await Services.require("redis")

const lease = Duration.seconds(30)
const ttl = Duration.minutes(1)

/** A client for this test and a store under a prefix no other test uses. */
const setup = Effect.gen(function* () {
  const client = yield* RedisClient.make(Services.url("redis"))
  const prefix = `lossless:test:${Harness.uniqueName("dedupe")}:`
  return { client, prefix, store: RedisDedupeStore.make(client, { prefix }) }
})

const acquired = (claim: Dedupe.Claim): string => {
  if (claim._tag !== "Acquired") throw new Error(`expected Acquired, got ${claim._tag}`)
  return claim.token
}

/** Fails the test unless `effect` fails with `StoreUnavailable` within `millis`. */
const unavailableWithin = <A>(millis: number, effect: Effect.Effect<A, StoreUnavailable>) =>
  Effect.gen(function* () {
    const start = Date.now()
    const exit = yield* Effect.exit(effect).pipe(
      Effect.timeoutOrElse({
        duration: Duration.seconds(5),
        orElse: () => Effect.die(new Error("hung on a dead Redis"))
      })
    )
    expect(Date.now() - start).toBeLessThan(millis)
    if (Exit.isSuccess(exit)) throw new Error("expected a failure")
    const error = exit.cause.reasons.find((r) => r._tag === "Fail")?.error
    expect(error).toBeInstanceOf(StoreUnavailable)
    return error as StoreUnavailable
  })

// The claim protocol itself: the suite every dedupe store runs.
if (redis.available) DedupeStoreSuite.run({ name: `redis (${redis.url})`, make: Effect.map(setup, (s) => s.store) })

describe.skipIf(!redis.available)(`RedisDedupeStore (${redis.url})`, () => {
  it.live("stores busy:<token> under the prefix with the lease as expiry, then done with the ttl", () =>
    Effect.gen(function* () {
      const { client, prefix, store } = yield* setup
      const token = acquired(yield* store.claim("m", Duration.seconds(10)))
      expect(yield* Effect.promise(() => client.get(`${prefix}m`))).toBe(`busy:${token}`)
      const leaseLeft = yield* Effect.promise(() => client.pttl(`${prefix}m`))
      expect(leaseLeft).toBeGreaterThan(9000)
      expect(leaseLeft).toBeLessThanOrEqual(10_000)
      yield* store.complete("m", token, Duration.minutes(2))
      expect(yield* Effect.promise(() => client.get(`${prefix}m`))).toBe("done")
      expect(yield* Effect.promise(() => client.pttl(`${prefix}m`))).toBeGreaterThan(110_000)
    })
  )

  it.live("uses lossless:dedupe: as the default prefix", () =>
    Effect.gen(function* () {
      const { client } = yield* setup
      const store = RedisDedupeStore.make(client)
      const key = Harness.uniqueName("default-prefix")
      const token = acquired(yield* store.claim(key, lease))
      expect(yield* Effect.promise(() => client.get(`lossless:dedupe:${key}`))).toBe(`busy:${token}`)
      yield* store.release(key, token)
      expect(yield* Effect.promise(() => client.exists(`lossless:dedupe:${key}`))).toBe(0)
    })
  )

  it.live("keeps a done key forever when the ttl is infinite", () =>
    Effect.gen(function* () {
      const { client, prefix, store } = yield* setup
      const token = acquired(yield* store.claim("m", lease))
      expect(yield* store.complete("m", token, Duration.infinity)).toBe(true)
      expect(yield* Effect.promise(() => client.pttl(`${prefix}m`))).toBe(-1)
      yield* Effect.promise(() => client.del(`${prefix}m`))
    })
  )

  it.live("of many concurrent claims on one key, from several clients, exactly one acquires", () =>
    Effect.gen(function* () {
      const { client, prefix } = yield* setup
      // Each client auto-pipelines its share: the claims issued in one tick share a write.
      const others = yield* Effect.forEach([1, 2, 3], () => RedisClient.make(Services.url("redis")))
      const stores = [client, ...others].map((c) => RedisDedupeStore.make(c, { prefix }))
      const claims = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => stores[i % stores.length] as Dedupe.DedupeStore),
        (store) => store.claim("m", lease),
        { concurrency: "unbounded" }
      )
      expect(claims.filter((c) => c._tag === "Acquired")).toHaveLength(1)
      expect(claims.filter((c) => c._tag === "Busy")).toHaveLength(199)
    })
  )

  it.live("a dead Redis fails every operation with StoreUnavailable quickly, naming the server", () =>
    Effect.gen(function* () {
      const client = yield* RedisClient.make("redis://127.0.0.1:1")
      const store = RedisDedupeStore.make(client)
      const error = yield* unavailableWithin(2000, store.claim("m", lease))
      expect(error.store).toBe("redis")
      expect(error.message).toContain("127.0.0.1:1")
      expect(error.message).toContain("ECONNREFUSED")
      // At most the command timeout (1 s) each, however long Redis has been down.
      yield* Effect.all(
        [
          unavailableWithin(1500, store.complete("m", "token", ttl)),
          unavailableWithin(1500, store.release("m", "token"))
        ],
        { concurrency: "unbounded" }
      )
    })
  )

  it.live("an unreachable Redis never shows its password in the error", () =>
    Effect.gen(function* () {
      const client = yield* RedisClient.make("redis://user:s3cret-pw@127.0.0.1:1/0")
      const error = yield* unavailableWithin(2000, RedisDedupeStore.make(client).claim("m", lease))
      expect(error.message).not.toContain("s3cret-pw")
      expect(JSON.stringify(error)).not.toContain("s3cret-pw")
    })
  )

  it.live("a Redis that accepts connections but never answers fails with StoreUnavailable", () =>
    Effect.gen(function* () {
      // A stalled server of our own, so the shared Redis is never paused.
      const silent = createServer((socket) => socket.on("data", () => {}))
      yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))),
        () => Effect.promise(() => new Promise<void>((resolve) => silent.close(() => resolve())))
      )
      const { port } = silent.address() as AddressInfo
      const client = yield* RedisClient.make(`redis://127.0.0.1:${port}`, { commandTimeout: 200 })
      yield* Effect.addFinalizer(() => Effect.sync(() => client.disconnect()))
      const error = yield* unavailableWithin(1000, RedisDedupeStore.make(client).claim("m", lease))
      expect(error.message).toContain("no reply within 200 ms")
    })
  )

  it.live("the layer reads LOSSLESS_REDIS_URL and provides a working store", () => {
    const prefix = `lossless:test:${Harness.uniqueName("layer")}:`
    const env = { LOSSLESS_REDIS_URL: Services.url("redis") }
    return Effect.gen(function* () {
      const store = yield* RedisDedupeStore.Store
      expect(store.name).toBe("redis")
      const token = acquired(yield* store.claim("m", lease))
      expect(yield* store.complete("m", token, ttl)).toBe(true)
      expect(yield* store.claim("m", lease)).toEqual({ _tag: "Done" })
    }).pipe(
      Effect.provide(
        RedisDedupeStore.layer({ prefix }).pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
      )
    )
  })
})

describe("RedisClient", () => {
  it.effect("rejects a URL that is not redis:// without showing its password", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(RedisClient.make("http://user:s3cret-pw@127.0.0.1:6379"))
      expect(error._tag).toBe("InvalidUrl")
      expect(error.message).toContain("redis://")
      expect(error.message).not.toContain("s3cret-pw")
    })
  )
})
