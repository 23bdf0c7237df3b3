/**
 * Settings from options and URLs: defaults, query-string options, strict
 * and FIFO modes, credentials, and URLs that never show their secret.
 */
import { describe, expect, it } from "@effect/vitest"
import { InvalidUrl, TransportUrl } from "@lossless/core"
import { RocketConfig, RocketTransport } from "@lossless/rocketmq"
import { Duration, Effect, Exit, Redacted } from "effect"

describe("RocketConfig", () => {
  it.effect("defaults: strict sends, normal topics, 30 s invisibility, 4 MiB messages", () =>
    Effect.gen(function* () {
      const config = yield* RocketConfig.make({ url: "rocketmq://proxy" })
      expect(config.endpoints).toBe("proxy:8081")
      expect(config.strict).toBe(true)
      expect(config.fifo).toBe(false)
      expect(config.namespace).toBe("")
      expect(Duration.toMillis(config.invisibleDuration)).toBe(30_000)
      expect(Duration.toMillis(config.requestTimeout)).toBe(3_000)
      expect(config.receiveBatch).toBe(32)
      expect(config.maxMessageBytes).toBe(4 * 1024 * 1024)
      expect(RocketConfig.credentials(config)).toBeUndefined()
    })
  )

  it.effect("reads options from the URL's query string; options in code win", () =>
    Effect.gen(function* () {
      const url =
        "rocketmq://proxy:9876?strict=false&fifo=true&namespace=prod&invisibleDuration=12000&receiveBatch=8&publishConcurrency=4"
      const fromUrl = yield* RocketConfig.make({ url })
      expect(fromUrl.endpoints).toBe("proxy:9876")
      expect(fromUrl.strict).toBe(false)
      expect(fromUrl.fifo).toBe(true)
      expect(fromUrl.namespace).toBe("prod")
      expect(Duration.toMillis(fromUrl.invisibleDuration)).toBe(12_000)
      expect(fromUrl.receiveBatch).toBe(8)
      expect(fromUrl.publishConcurrency).toBe(4)
      const overridden = yield* RocketConfig.make({ url, strict: true, receiveBatch: 2 })
      expect(overridden.strict).toBe(true)
      expect(overridden.receiveBatch).toBe(2)
      expect(overridden.fifo).toBe(true)
    })
  )

  it.effect(
    "FIFO topics order by key and leave delays to core; normal topics delay natively and promise no order",
    () =>
      Effect.gen(function* () {
        const normal = RocketTransport.capabilitiesFor(yield* RocketConfig.make({ url: "rocketmq://p" }))
        expect(normal).toMatchObject({ ordering: "none", delayedDelivery: true, halfMessages: true, durable: true })
        const fifo = RocketTransport.capabilitiesFor(yield* RocketConfig.make({ url: "rocketmq://p?fifo=true" }))
        expect(fifo).toMatchObject({ ordering: "key", delayedDelivery: false, halfMessages: true })
        expect(RocketTransport.capabilities.redeliveryFlag).toBe(true)
        expect(RocketTransport.capabilities.maxMessageBytes).toBe(4 * 1024 * 1024)
      })
  )

  it.effect("credentials ride in the URL and stay redacted; display masks the secret", () =>
    Effect.gen(function* () {
      const config = yield* RocketConfig.make({ url: "rocketmq://AK%2F1:s3cret-sk@proxy:8081" })
      expect(RocketConfig.credentials(config)).toEqual({ accessKey: "AK/1", accessSecret: "s3cret-sk" })
      expect(String(config.url)).not.toContain("s3cret-sk")
      expect(RocketConfig.display(config)).toBe("rocketmq://AK%2F1:***@proxy:8081")
    })
  )

  it.effect("a bad URL or query option fails with InvalidUrl that masks the secret", () =>
    Effect.gen(function* () {
      for (const url of [
        "amqp://ak:s3cret-sk@proxy",
        "rocketmq://ak:s3cret-sk@proxy?strict=maybe",
        "rocketmq://ak:s3cret-sk@proxy?receiveBatch=64",
        "rocketmq://ak:s3cret-sk@proxy?requestTimeout=10",
        "rocketmq://ak:s3cret-sk@proxy?invisibleDuration=soon"
      ]) {
        const error = yield* Effect.flip(RocketConfig.make({ url: Redacted.make(url) }))
        expect(error).toBeInstanceOf(InvalidUrl)
        expect(error.message).not.toContain("s3cret-sk")
        expect(JSON.stringify(error)).not.toContain("s3cret-sk")
      }
    })
  )

  it.effect("an invalid option given in code is a defect at startup", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(RocketConfig.make({ url: "rocketmq://p", publishConcurrency: 0 }))
      expect(Exit.isFailure(exit) && exit.cause.reasons.some((r) => r._tag === "Die")).toBe(true)
    })
  )

  it.effect("the plugin serves rocketmq:// URLs", () =>
    Effect.gen(function* () {
      const { plugin } = yield* TransportUrl.resolve([RocketTransport.plugin], "rocketmq://proxy:8081")
      expect(plugin.name).toBe("rocketmq")
    })
  )
})
