/**
 * The shared transport conformance suite against the in-process RocketMQ 5
 * emulator, over gRPC with the real client: the transport cases, the core
 * runtime cases, and the half-message cases both through the outbox and
 * through RocketMQ's native transactional messages.
 */
import { RocketHalfMessages, RocketTransport } from "@lossless/rocketmq"
import { Conformance } from "@lossless/testkit"
import * as RocketEmulator from "@lossless/testkit/rocketmq"
import { afterAll } from "vitest"
import * as Support from "./support.ts"

const maxChecks = 3
// As a real proxy: topics exist only once created, which `ensureTopology` does through `createTopics`.
const emulator = await RocketEmulator.start({
  autoCreateTopics: false,
  maxTransactionChecks: maxChecks,
  transactionCheckIntervalMs: 300
})
afterAll(() => emulator.close())

const options = Support.options(emulator, { createTopics: Support.createTopicsOn(emulator) })

Conformance.run({
  name: `rocketmq emulator (${emulator.endpoint})`,
  layer: RocketTransport.layer(options),
  capabilities: RocketTransport.capabilities,
  halfMessages: {
    layer: (checkBacks) => RocketHalfMessages.layer({ ...options, checkBacks }),
    crashingAfterLocal: Support.crashingAfterLocal(options),
    maxChecks
  }
})
