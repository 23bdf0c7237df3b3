/**
 * Shared setup of the Kafka suites: an in-process Kafka emulator per test
 * file, and transport options suited to tests (fast heartbeats and fetches,
 * so rebalances and resumed partitions take milliseconds, not seconds).
 */
import type { Transport } from "@lossless/core"
import { type KafkaConfig, KafkaTransport } from "@lossless/kafka"
import { type KafkaEmulator, start } from "@lossless/testkit/kafka"
import type { Layer } from "effect"
import { afterAll } from "vitest"

/** Starts an emulator for this file and closes it after the file's tests. */
export const emulator = async (options: Parameters<typeof start>[0] = {}): Promise<KafkaEmulator> => {
  const started = await start({ autoCreateTopics: false, ...options })
  afterAll(() => started.close())
  return started
}

/** The emulator's URL. */
export const url = (kafka: KafkaEmulator): string => `kafka://${kafka.brokers.join(",")}`

/** Options for a test transport. */
export const options = (
  kafka: KafkaEmulator,
  extra: Partial<KafkaConfig.KafkaOptions> = {}
): KafkaConfig.KafkaOptions => ({
  url: url(kafka),
  clientId: "lossless-test",
  heartbeatInterval: "200 millis",
  sessionTimeout: "6 seconds",
  maxWaitTime: "100 millis",
  requestTimeout: "5 seconds",
  logLevel: "nothing",
  ...extra
})

/** The transport layer on the emulator. */
export const layer = (
  kafka: KafkaEmulator,
  extra: Partial<KafkaConfig.KafkaOptions> = {}
): Layer.Layer<Transport.Transport, KafkaTransport.LayerError> => KafkaTransport.layer(options(kafka, extra))
