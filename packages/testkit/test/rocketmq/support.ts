/**
 * Helpers for the emulator's tests: an emulator per test, real clients that
 * are shut down before it, unique names, and polling assertions.
 */
import { randomUUID } from "node:crypto"
import {
  type MessageView,
  Producer,
  type ProducerOptions,
  PushConsumer,
  type PushConsumerOptions,
  SimpleConsumer,
  type SimpleConsumerOptions
} from "rocketmq-client-nodejs"
import { onTestFinished } from "vitest"
import { type RocketEmulator, type RocketEmulatorOptions, start } from "../../src/rocketmq/index.ts"

/** The client logs to a file under $HOME by default; tests keep it quiet. */
export const logger = { info() {}, warn() {}, error() {}, debug() {} }

export const unique = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`

type Without<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>

export interface Setup {
  readonly emulator: RocketEmulator
  readonly producer: (options?: Without<ProducerOptions, "endpoints" | "namespace">) => Promise<Producer>
  readonly simpleConsumer: (
    group: string,
    topic: string,
    options?: Partial<SimpleConsumerOptions>
  ) => Promise<SimpleConsumer>
  readonly pushConsumer: (
    group: string,
    topic: string,
    options: Without<PushConsumerOptions, "endpoints" | "namespace" | "consumerGroup" | "subscriptions">
  ) => Promise<PushConsumer>
}

/** Starts an emulator for the current test; clients are shut down, then the emulator closed, when it ends. */
export const setup = async (options: RocketEmulatorOptions = {}): Promise<Setup> => {
  const emulator = await start(options)
  const clients: Array<{ shutdown(): Promise<void> }> = []
  onTestFinished(async () => {
    await Promise.allSettled(clients.map((client) => client.shutdown()))
    await emulator.close()
  })
  const base = { endpoints: emulator.endpoint, namespace: "", logger }
  return {
    emulator,
    producer: async (options = {}) => {
      const producer = new Producer({ ...base, ...options })
      await producer.startup()
      clients.push(producer)
      return producer
    },
    simpleConsumer: async (group, topic, options = {}) => {
      const consumer = new SimpleConsumer({
        ...base,
        consumerGroup: group,
        subscriptions: new Map([[topic, "*"]]),
        awaitDuration: 500,
        ...options
      })
      await consumer.startup()
      clients.push(consumer)
      return consumer
    },
    pushConsumer: async (group, topic, options) => {
      const consumer = new PushConsumer({
        ...base,
        consumerGroup: group,
        subscriptions: new Map([[topic, "*"]]),
        ...options
      })
      await consumer.startup()
      clients.push(consumer)
      return consumer
    }
  }
}

/** Receives until `count` messages arrived or `timeoutMs` passed; acknowledges them unless told not to. */
export const receiveAll = async (
  consumer: SimpleConsumer,
  count: number,
  options: { readonly ack?: boolean; readonly invisibleMs?: number; readonly timeoutMs?: number } = {}
): Promise<Array<MessageView>> => {
  const received: Array<MessageView> = []
  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  while (received.length < count && Date.now() < deadline) {
    const batch = await consumer.receive(Math.min(32, count - received.length), options.invisibleMs ?? 10_000)
    for (const message of batch) {
      received.push(message)
      if (options.ack !== false) await consumer.ack(message)
    }
  }
  return received
}

/** Resolves once `check` holds, failing after `timeoutMs`. */
export const eventually = async (check: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export const body = (text: string): Buffer => Buffer.from(text)
