/**
 * The shared transport conformance suite over kafkajs against the in-process
 * Kafka emulator, including the core runtime cases (reliable send, retries,
 * dead letters, shutdown, dedupe, loss detection).
 */
import { KafkaTransport } from "@lossless/kafka"
import { Conformance } from "@lossless/testkit"
import * as Support from "./support.ts"

const kafka = await Support.emulator()

Conformance.run({
  name: `kafka (emulator ${kafka.brokers.join(",")})`,
  layer: Support.layer(kafka),
  capabilities: KafkaTransport.capabilities
})
