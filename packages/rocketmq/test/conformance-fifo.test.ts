/**
 * The shared transport conformance suite with `fifo: true`: every envelope
 * carries its key as the message group, so the broker keeps one key's
 * messages in order across consumers (`ordering: "key"`), and delays are
 * core's, since FIFO messages carry no delivery time. The half-message cases
 * run in `conformance.test.ts`; FIFO does not change them.
 */
import { RocketConfig, RocketTransport } from "@lossless/rocketmq"
import { Conformance } from "@lossless/testkit"
import * as RocketEmulator from "@lossless/testkit/rocketmq"
import { Effect } from "effect"
import { afterAll } from "vitest"
import * as Support from "./support.ts"

const emulator = await RocketEmulator.start({ autoCreateTopics: false })
afterAll(() => emulator.close())

const options = Support.options(emulator, { fifo: true, createTopics: Support.createTopicsOn(emulator) })
const config = await Effect.runPromise(RocketConfig.make(options))

Conformance.run({
  name: `rocketmq emulator, FIFO topics (${emulator.endpoint})`,
  layer: RocketTransport.layer(options),
  capabilities: RocketTransport.capabilitiesFor(config)
})
