/**
 * Settings from options and URLs: defaults, query-string options, the
 * retry buckets' rounding bound, and URLs that never show their password.
 */
import { describe, expect, it } from "@effect/vitest"
import { InvalidUrl } from "@lossless/core"
import { RabbitConfig, RabbitTopology } from "@lossless/rabbitmq"
import { Duration, Effect, Exit, Redacted } from "effect"

describe("RabbitConfig", () => {
  it.effect("defaults: classic queues, bounded prefetch and confirms, 16 MiB messages", () =>
    Effect.gen(function* () {
      const config = yield* RabbitConfig.make({ url: "amqp://127.0.0.1" })
      expect(config.queueType).toBe("classic")
      expect(config.maxPrefetch).toBe(1000)
      expect(config.confirmWindow).toBe(1024)
      expect(config.maxMessageBytes).toBe(16 * 1024 * 1024)
      expect(config.prefix).toBe("")
      expect(Duration.toMillis(config.heartbeat)).toBe(10_000)
      expect(config.retryDelays[0]).toBe(10)
    })
  )

  it.effect("reads options from the URL's query string; options in code win", () =>
    Effect.gen(function* () {
      const url =
        "amqp://app:pw@rabbit:5673/prod?queueType=quorum&confirmWindow=64&maxPrefetch=50&heartbeat=3&prefix=app.&frameMax=8192"
      const fromUrl = yield* RabbitConfig.make({ url })
      expect(fromUrl.queueType).toBe("quorum")
      expect(fromUrl.confirmWindow).toBe(64)
      expect(fromUrl.maxPrefetch).toBe(50)
      expect(Duration.toMillis(fromUrl.heartbeat)).toBe(3000)
      expect(fromUrl.prefix).toBe("app.")
      expect(fromUrl.tuning).toEqual({ frameMax: "8192" })
      const overridden = yield* RabbitConfig.make({ url, confirmWindow: 8, queueType: "classic" })
      expect(overridden.confirmWindow).toBe(8)
      expect(overridden.queueType).toBe("classic")
    })
  )

  it.effect("a bad URL or query option fails with InvalidUrl that masks the password", () =>
    Effect.gen(function* () {
      for (const url of [
        "http://app:s3cret-pw@rabbit",
        "amqp://app:s3cret-pw@rabbit?queueType=stream",
        "amqp://app:s3cret-pw@rabbit?confirmWindow=lots",
        "amqp:///no-host"
      ]) {
        const error = yield* Effect.flip(RabbitConfig.make({ url: Redacted.make(url) }))
        expect(error).toBeInstanceOf(InvalidUrl)
        expect(error.message).not.toContain("s3cret-pw")
        expect(JSON.stringify(error)).not.toContain("s3cret-pw")
      }
    })
  )

  it.effect("an invalid option given in code is a defect at startup", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(RabbitConfig.make({ url: "amqp://h", confirmWindow: 0 }))
      expect(Exit.isFailure(exit) && exit.cause.reasons.some((r) => r._tag === "Die")).toBe(true)
    })
  )

  it.effect("the URL stays redacted in the settings; display masks the password", () =>
    Effect.gen(function* () {
      const config = yield* RabbitConfig.make({ url: "amqp://app:s3cret-pw@rabbit:5672" })
      expect(String(config.url)).not.toContain("s3cret-pw")
      expect(RabbitConfig.display(config)).toBe("amqp://app:***@rabbit:5672")
      expect(RabbitConfig.password(config)).toBe("s3cret-pw")
    })
  )
})

describe("retry delay buckets", () => {
  it("geometric buckets round a delay up by at most 25% (or to the 10 ms minimum), never down", () => {
    const delays = RabbitConfig.geometricDelays()
    expect(delays[0]).toBe(10)
    expect(delays.at(-1)).toBe(7 * 24 * 3600 * 1000)
    for (let i = 1; i < delays.length; i++) {
      expect(delays[i]! / delays[i - 1]!).toBeLessThanOrEqual(1.25 + 1e-9)
      expect(delays[i]!).toBeGreaterThan(delays[i - 1]!)
    }
    for (const requested of [0, 1, 9, 10, 11, 99, 400, 1234, 2000, 59_999, 3_600_000, 86_400_000]) {
      const chosen = RabbitTopology.bucket(delays, requested)
      expect(chosen).toBeGreaterThanOrEqual(requested)
      expect(chosen).toBeLessThanOrEqual(Math.max(10, requested * 1.25))
    }
    // Longer than the longest bucket: the longest.
    expect(RabbitTopology.bucket(delays, 30 * 24 * 3600 * 1000)).toBe(delays.at(-1))
  })

  it.effect("an explicit list of delays is used as given, sorted", () =>
    Effect.gen(function* () {
      const config = yield* RabbitConfig.make({ url: "amqp://h", retryDelays: ["1 minute", "1 second", 100] })
      expect(config.retryDelays).toEqual([100, 1000, 60_000])
      expect(RabbitTopology.bucket(config.retryDelays, 101)).toBe(1000)
    })
  )
})

describe("RabbitTopology names", () => {
  it("derives queue names from the topic, group and prefix with the reserved separator", () => {
    expect(RabbitTopology.exchange("", "orders")).toBe("orders")
    expect(RabbitTopology.workQueue("", "orders", "billing")).toBe("orders__billing")
    expect(RabbitTopology.deadLetterQueue("app.", "orders", "billing")).toBe("app.orders__billing__dlq")
    expect(RabbitTopology.retryQueue("orders__billing", 1250)).toBe("orders__billing__retry__1250")
    const args = RabbitTopology.retryQueueArguments({
      queueType: "classic",
      delayMillis: 1250,
      idleMillis: 60_000,
      returnTo: "orders__billing"
    })
    expect(args).toMatchObject({
      "x-message-ttl": 1250,
      "x-expires": 61_250,
      "x-dead-letter-exchange": "",
      "x-dead-letter-routing-key": "orders__billing"
    })
  })
})
