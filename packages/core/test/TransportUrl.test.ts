import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Redacted, Result, Stream } from "effect"
import { Capabilities, InvalidUrl, Transport, TransportUrl, UnknownScheme } from "../src/index.ts"

const secret = "s3cr3t-Pa55"

/** A transport that does nothing, named so a test can tell which plugin built it. */
const fakeTransport = (name: string): Transport.TransportShape => ({
  name,
  capabilities: Capabilities.make({
    durable: false,
    delayedDelivery: false,
    nativeDeadLetter: false,
    halfMessages: false,
    ordering: "none",
    redeliveryFlag: false,
    maxMessageBytes: undefined
  }),
  ensureTopology: () => Effect.void,
  publish: (envelopes) => Effect.succeed(envelopes.map(() => Result.succeed(undefined))),
  subscribe: () => Stream.empty,
  subscribeDeadLetters: () => Stream.empty
})

/** A plugin that records the URLs it was asked to build a transport for. */
const fakePlugin = (name: string, schemes: ReadonlyArray<string>) => {
  const urls: Array<string> = []
  const plugin: TransportUrl.TransportPlugin = {
    name,
    schemes,
    layer: (url) => {
      urls.push(Redacted.value(url).href)
      return Layer.succeed(Transport.Transport, fakeTransport(name))
    }
  }
  return { plugin, urls }
}

const transportName = Transport.Transport.use((t) => Effect.succeed(t.name))

describe("TransportUrl.parse", () => {
  it.effect("fails with InvalidUrl for an empty URL", () =>
    Effect.gen(function* () {
      for (const raw of ["", "   ", Redacted.make("")]) {
        const error = yield* Effect.flip(TransportUrl.parse(raw))
        expect(error).toBeInstanceOf(InvalidUrl)
        expect(error.url).toBe("")
        expect(error.reason).toMatch(/empty/)
      }
    })
  )

  it.effect("fails with InvalidUrl for a URL without a scheme, masking the password", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(TransportUrl.parse(`//guest:${secret}@broker:5672/vhost`))
      expect(error._tag).toBe("InvalidUrl")
      expect(error.reason).toMatch(/no scheme/)
      expect(error.url).not.toContain(secret)
      expect(error.message).not.toContain(secret)
      expect(error.url).toContain("broker:5672")
    })
  )

  it.effect("fails with InvalidUrl for a URL that cannot be parsed, masking the password", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(TransportUrl.parse(`amqp://guest:${secret}@broker:99999`))
      expect(error._tag).toBe("InvalidUrl")
      expect(error.reason).toMatch(/cannot be parsed/)
      expect(error.url).not.toContain(secret)
      expect(error.message).not.toContain(secret)
      expect(error.url).toContain("amqp://guest:")
    })
  )

  it.effect("never puts any part of a password containing '@' into InvalidUrl", () =>
    Effect.gen(function* () {
      // WHATWG URLs split credentials from the host at the last '@' of the authority.
      const password = "pa@ss-w0rd"
      const raw = `amqp://guest:${password}@broker:99999`
      const error = yield* Effect.flip(TransportUrl.parse(Redacted.make(raw)))
      expect(error._tag).toBe("InvalidUrl")
      expect(error.url).not.toContain("ss-w0rd")
      expect(error.url).not.toContain("pa@")
    })
  )

  it.effect("parses a valid URL into a redacted URL that hides its password when printed", () =>
    Effect.gen(function* () {
      const url = yield* TransportUrl.parse(`  amqps://guest:${secret}@broker:5671/vhost  `)
      expect(Redacted.value(url).password).toBe(secret)
      expect(Redacted.value(url).hostname).toBe("broker")
      expect(TransportUrl.scheme(url)).toBe("amqps")
      expect(String(url)).not.toContain(secret)
      expect(JSON.stringify(url)).not.toContain(secret)
    })
  )

  it.effect("accepts a redacted string", () =>
    Effect.gen(function* () {
      const url = yield* TransportUrl.parse(Redacted.make("kafka://broker-1:9092"))
      expect(TransportUrl.scheme(url)).toBe("kafka")
    })
  )
})

describe("TransportUrl.display", () => {
  it("masks the password of a URL object and of a URL string", () => {
    expect(TransportUrl.display(new URL(`amqp://guest:${secret}@broker:5672/vhost`))).toBe(
      "amqp://guest:***@broker:5672/vhost"
    )
    expect(TransportUrl.display(`amqp://guest:${secret}@broker:5672/vhost`)).toBe("amqp://guest:***@broker:5672/vhost")
  })

  it("leaves a URL without a password unchanged", () => {
    expect(TransportUrl.display(new URL("kafka://broker:9092"))).toBe("kafka://broker:9092")
    expect(TransportUrl.display("memory://")).toBe("memory://")
    expect(TransportUrl.display("amqp://guest@broker")).toBe("amqp://guest@broker")
  })
})

describe("TransportUrl.resolve", () => {
  const rabbit = fakePlugin("rabbit", ["amqp", "amqps"])
  const kafka = fakePlugin("kafka", ["kafka"])

  it.effect("chooses the plugin that serves the URL's scheme", () =>
    Effect.gen(function* () {
      const plugins = [rabbit.plugin, kafka.plugin]
      expect((yield* TransportUrl.resolve(plugins, "amqps://broker")).plugin.name).toBe("rabbit")
      expect((yield* TransportUrl.resolve(plugins, "kafka://broker:9092")).plugin.name).toBe("kafka")
      expect((yield* TransportUrl.resolve(plugins, "amqp://broker")).plugin.name).toBe("rabbit")
    })
  )

  it.effect("fails with UnknownScheme listing every supported scheme", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        TransportUrl.resolve([rabbit.plugin, kafka.plugin], `nats://guest:${secret}@broker`)
      )
      expect(error).toBeInstanceOf(UnknownScheme)
      expect(error).toMatchObject({ scheme: "nats", supported: ["amqp", "amqps", "kafka"] })
      expect(error.message).toContain("amqp, amqps, kafka")
      expect(error.message).toContain("nats")
      expect(error.message).not.toContain(secret)
    })
  )

  it.effect("says none are registered when no plugin is given", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(TransportUrl.resolve([], "memory://"))
      expect(error._tag).toBe("UnknownScheme")
      expect(error.message).toContain("none registered")
    })
  )
})

describe("TransportUrl.layer", () => {
  it.effect("builds the transport with the plugin chosen by scheme, handing it the URL", () =>
    Effect.gen(function* () {
      const rabbit = fakePlugin("rabbit", ["amqp"])
      const kafka = fakePlugin("kafka", ["kafka"])
      const plugins = [rabbit.plugin, kafka.plugin]
      expect(yield* transportName.pipe(Effect.provide(TransportUrl.layer(plugins, "kafka://k1:9092")))).toBe("kafka")
      expect(yield* transportName.pipe(Effect.provide(TransportUrl.layer(plugins, "amqp://r1/vh")))).toBe("rabbit")
      expect(kafka.urls).toEqual(["kafka://k1:9092"])
      expect(rabbit.urls).toEqual(["amqp://r1/vh"])
    })
  )

  it.effect("fails to build with UnknownScheme for a scheme no plugin serves", () =>
    Effect.gen(function* () {
      const rabbit = fakePlugin("rabbit", ["amqp"])
      const error = yield* Effect.flip(
        transportName.pipe(Effect.provide(TransportUrl.layer([rabbit.plugin], "kafka://k1:9092")))
      )
      expect(error._tag).toBe("UnknownScheme")
      expect(error).toMatchObject({ scheme: "kafka", supported: ["amqp"] })
      expect(rabbit.urls).toEqual([])
    })
  )

  it.effect("fails to build with InvalidUrl for a malformed URL", () =>
    Effect.gen(function* () {
      const rabbit = fakePlugin("rabbit", ["amqp"])
      const error = yield* Effect.flip(transportName.pipe(Effect.provide(TransportUrl.layer([rabbit.plugin], ""))))
      expect(error._tag).toBe("InvalidUrl")
    })
  )
})

describe("TransportUrl.layerConfig", () => {
  const withEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env }))

  it.effect("reads LOSSLESS_URL to choose the transport", () =>
    Effect.gen(function* () {
      const memory = fakePlugin("memory", ["memory"])
      const rabbit = fakePlugin("rabbit", ["amqp"])
      const layer = TransportUrl.layerConfig([memory.plugin, rabbit.plugin]).pipe(
        Layer.provide(withEnv({ LOSSLESS_URL: `amqp://guest:${secret}@rabbit:5672` }))
      )
      expect(yield* transportName.pipe(Effect.provide(layer))).toBe("rabbit")
      expect(rabbit.urls).toEqual([`amqp://guest:${secret}@rabbit:5672`])
      expect(memory.urls).toEqual([])
    })
  )

  it.effect("uses memory:// when LOSSLESS_URL is not set", () =>
    Effect.gen(function* () {
      expect(TransportUrl.envVar).toBe("LOSSLESS_URL")
      expect(TransportUrl.defaultUrl).toBe("memory://")
      const memory = fakePlugin("memory", ["memory"])
      const rabbit = fakePlugin("rabbit", ["amqp"])
      const layer = TransportUrl.layerConfig([rabbit.plugin, memory.plugin]).pipe(
        Layer.provide(withEnv({ OTHER_URL: "amqp://rabbit" }))
      )
      expect(yield* transportName.pipe(Effect.provide(layer))).toBe("memory")
      expect(memory.urls).toEqual(["memory://"])
      expect(rabbit.urls).toEqual([])
    })
  )

  it.effect("fails with UnknownScheme when LOSSLESS_URL names a transport that is not registered", () =>
    Effect.gen(function* () {
      const memory = fakePlugin("memory", ["memory"])
      const layer = TransportUrl.layerConfig([memory.plugin]).pipe(
        Layer.provide(withEnv({ LOSSLESS_URL: "rocketmq://proxy:8081" }))
      )
      const error = yield* Effect.flip(transportName.pipe(Effect.provide(layer)))
      expect(error).toMatchObject({ _tag: "UnknownScheme", scheme: "rocketmq", supported: ["memory"] })
    })
  )
})
