/**
 * The Promise API slice on a real RabbitMQ, through its `amqp://` plugin.
 * What the tests declare is deleted after the file, not when a client
 * closes: a test may leave messages for another client to pick up.
 */
import { Transport, type TransportUrl } from "@lossless/core"
import { RabbitTransport } from "@lossless/rabbitmq"
import { Services } from "@lossless/testkit"
import { Effect, Layer } from "effect"
import { afterAll, describe, it } from "vitest"
import * as Support from "../../rabbitmq/test/support.ts"
import { promiseApiCases } from "./promiseApiCases.ts"

const rabbit = await Services.require("rabbitmq")

const topics = new Set<string>()
const groups = new Map<string, { readonly topic: string; readonly group: string }>()

/** The real plugin, recording every topic and group declared through it. */
const recordingPlugin: TransportUrl.TransportPlugin = {
  ...RabbitTransport.plugin,
  layer: (url) =>
    Layer.effect(
      Transport.Transport,
      Effect.map(Transport.Transport, (transport) =>
        Transport.Transport.of({
          ...transport,
          ensureTopology: (topology) =>
            Effect.tap(transport.ensureTopology(topology), () =>
              Effect.sync(() => {
                for (const topic of topology.topics) topics.add(topic)
                for (const g of topology.groups) groups.set(`${g.topic}/${g.group}`, g)
              })
            )
        })
      )
    ).pipe(Layer.provide(RabbitTransport.plugin.layer(url)))
}

if (rabbit.available) {
  afterAll(await Support.exclusiveBroker())
  afterAll(() => Effect.runPromise(Support.deleteTopology(topics, groups.values())))
  const url = new URL(Support.url)
  // A small size limit keeps the oversized message small; retry queues expire soon after the file.
  url.searchParams.set("maxMessageBytes", String(64 * 1024))
  url.searchParams.set("retryQueueIdle", "60000")
  url.searchParams.set("connectionName", "lossless-client-test")
  promiseApiCases({ name: `rabbitmq (${rabbit.url})`, plugins: [recordingPlugin], url: () => url.href })
} else {
  describe("Promise API: rabbitmq", () => {
    it.skip(`RabbitMQ unavailable: ${rabbit.reason}`, () => {})
  })
}
