/**
 * The shared transport conformance suite against a real RabbitMQ, including
 * the core runtime cases (reliable send, retries, dead letters, shutdown,
 * dedupe, loss detection).
 */
import { RabbitTransport } from "@lossless/rabbitmq"
import { Conformance, Services } from "@lossless/testkit"
import { afterAll, describe, it } from "vitest"
import * as Support from "./support.ts"

const rabbit = await Services.require("rabbitmq")

if (rabbit.available) {
  afterAll(await Support.exclusiveBroker())
  Conformance.run({
    name: `rabbitmq (${rabbit.url})`,
    layer: Support.tidy(RabbitTransport.layer(Support.options())),
    capabilities: RabbitTransport.capabilities
  })
} else {
  describe("transport conformance: rabbitmq", () => {
    it.skip(`RabbitMQ unavailable: ${rabbit.reason}`, () => {})
  })
}
