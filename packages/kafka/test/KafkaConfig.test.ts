/**
 * Settings from options and URLs: defaults, several brokers, query-string
 * options, and URLs that never show their password.
 */
import { describe, expect, it } from "@effect/vitest"
import { InvalidUrl } from "@lossless/core"
import { KafkaConfig, KafkaTopology } from "@lossless/kafka"
import { Duration, Effect, Exit, Redacted } from "effect"

describe("KafkaConfig", () => {
  it.effect("defaults: port 9092, 3 partitions, broker-default replication, 1 MB messages", () =>
    Effect.gen(function* () {
      const config = yield* KafkaConfig.make({ url: "kafka://broker-1" })
      expect(config.brokers).toEqual(["broker-1:9092"])
      expect(config.partitions).toBe(3)
      expect(config.replicationFactor).toBeUndefined()
      expect(config.minInsyncReplicas).toBeUndefined()
      expect(config.maxMessageBytes).toBe(1_000_000)
      expect(config.sendRetries).toBe(3)
      expect(Duration.toMillis(config.sessionTimeout)).toBe(30_000)
      expect(config.ssl).toBe(false)
      expect(config.sasl).toBeUndefined()
    })
  )

  it.effect("lists several brokers in the authority or in ?brokers=", () =>
    Effect.gen(function* () {
      const listed = yield* KafkaConfig.make({ url: "kafka://a:9092,b:9093,c/?partitions=6" })
      expect(listed.brokers).toEqual(["a:9092", "b:9093", "c:9092"])
      expect(listed.partitions).toBe(6)
      const viaQuery = yield* KafkaConfig.make({ url: "kafka://a:9092?brokers=b:9093,c:9094" })
      expect(viaQuery.brokers).toEqual(["a:9092", "b:9093", "c:9094"])
    })
  )

  it.effect("reads options from the query string; options in code win", () =>
    Effect.gen(function* () {
      const url =
        "kafkas://app:pw@kafka:9093?replicationFactor=3&minInsyncReplicas=2&maxMessageBytes=2000000&sessionTimeout=10000&sasl=scram-sha-512"
      const fromUrl = yield* KafkaConfig.make({ url })
      expect(fromUrl.replicationFactor).toBe(3)
      expect(fromUrl.minInsyncReplicas).toBe(2)
      expect(fromUrl.maxMessageBytes).toBe(2_000_000)
      expect(Duration.toMillis(fromUrl.sessionTimeout)).toBe(10_000)
      expect(fromUrl.ssl).toBe(true)
      expect(fromUrl.sasl?.mechanism).toBe("scram-sha-512")
      expect(fromUrl.sasl?.username).toBe("app")
      expect(Redacted.value(fromUrl.sasl!.password)).toBe("pw")
      const overridden = yield* KafkaConfig.make({ url, replicationFactor: 5, minInsyncReplicas: 3 })
      expect(overridden.replicationFactor).toBe(5)
      expect(overridden.minInsyncReplicas).toBe(3)
    })
  )

  it.effect("a bad URL or query option fails with InvalidUrl that masks the password", () =>
    Effect.gen(function* () {
      for (const url of [
        "amqp://app:s3cret-pw@kafka",
        "kafka://app:s3cret-pw@kafka?partitions=many",
        "kafka://app:s3cret-pw@kafka?ssl=maybe",
        "kafka://app:s3cret-pw@kafka:99999"
      ]) {
        const error = yield* Effect.flip(KafkaConfig.make({ url: Redacted.make(url) }))
        expect(error).toBeInstanceOf(InvalidUrl)
        expect(error.message).not.toContain("s3cret-pw")
        expect(JSON.stringify(error)).not.toContain("s3cret-pw")
      }
    })
  )

  it.effect("an invalid option given in code is a defect at startup", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        KafkaConfig.make({ url: "kafka://h", replicationFactor: 2, minInsyncReplicas: 3 })
      )
      expect(Exit.isFailure(exit) && exit.cause.reasons.some((r) => r._tag === "Die")).toBe(true)
    })
  )

  it.effect("the URL stays redacted in the settings; display masks the password", () =>
    Effect.gen(function* () {
      const config = yield* KafkaConfig.make({ url: "kafka://app:s3cret-pw@kafka:9092" })
      expect(String(config.url)).not.toContain("s3cret-pw")
      expect(String(config.sasl?.password)).not.toContain("s3cret-pw")
      expect(KafkaConfig.display(config)).toBe("kafka://app:***@kafka:9092")
    })
  )
})

describe("KafkaTopology names", () => {
  it("derives group, retry and dead-letter names with the reserved separator", () => {
    expect(KafkaTopology.consumerGroup("orders", "billing")).toBe("orders__billing")
    expect(KafkaTopology.retryTopic("orders", "billing")).toBe("orders__billing__retry")
    expect(KafkaTopology.deadLetterTopic("orders", "billing")).toBe("orders__billing__dlq")
    expect(KafkaTopology.deadLetterGroup("orders", "billing")).toBe("orders__billing__dlq")
  })
})
