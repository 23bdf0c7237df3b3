/**
 * An in-process RocketMQ 5 proxy for tests: the gRPC
 * `apache.rocketmq.v2.MessagingService` that rocketmq-client-nodejs talks to
 * unmodified, with one broker at the emulator's own endpoint. It sends,
 * receives (long polling, invisible duration, receipt handles), acknowledges,
 * retries, dead-letters, orders message groups, delays, and runs transactions
 * with check-back, and it lets a test inject faults and inspect what the
 * broker holds. See README.md beside this file for what it leaves out.
 *
 * @since 0.1.0
 */
import { Effect, type Scope } from "effect"
import { deadLetterTopic } from "./ConsumerGroups.ts"
import type { RocketFaults } from "./Faults.ts"
import { topicNameProblem } from "./Names.ts"
import { Broker } from "./Server.ts"
import type { TopicMessageType } from "./Topics.ts"

export type { RocketFaults } from "./Faults.ts"
/** The protocol's response codes (`apache.rocketmq.v2.Code`), for `faults.sendStatus`. */
export { Code } from "./Protocol.ts"
export type { TopicMessageType } from "./Topics.ts"

export interface RocketEmulatorOptions {
  /** Interface to listen on. @default "127.0.0.1" */
  readonly host?: string
  /** Port to listen on; 0 picks a free one. @default 0 */
  readonly port?: number
  /** Message queues in each topic's route. @default 4 */
  readonly queuesPerTopic?: number
  /** Create topics on first use; otherwise an unknown topic is TOPIC_NOT_FOUND. @default true */
  readonly autoCreateTopics?: boolean
  /** Topics (MIXED) that exist from the start, useful with `autoCreateTopics: false`; see also `createTopic`. @default [] */
  readonly topics?: ReadonlyArray<string>
  /** Largest accepted body; larger ones are refused with MESSAGE_BODY_TOO_LARGE. @default 4 MiB */
  readonly maxMessageBytes?: number
  /** Furthest delivery time of a delayed message; later ones are refused with ILLEGAL_DELIVERY_TIME. @default 24 hours */
  readonly maxDelayMs?: number
  /** Deliveries of a message before it goes to `%DLQ%<group>` (the groups' retry policy). @default 16 */
  readonly maxDeliveryAttempts?: number
  /** How long a half message may stay undecided before each check-back. @default 1000 */
  readonly transactionCheckIntervalMs?: number
  /** Check-backs of an undecided half message before it is discarded. @default 15 */
  readonly maxTransactionChecks?: number
  /** Consumer groups whose settings carry `fifo: true` (push consumers then consume in order). @default [] */
  readonly fifoGroups?: ReadonlyArray<string>
  /** Long-polling timeout the settings give push consumers. @default 5000 */
  readonly longPollingTimeoutMs?: number
  /** Receive batch size the settings give push consumers. @default 32 */
  readonly receiveBatchSize?: number
  /** Invisible time of auto-renewed (push consumer) deliveries, renewed while the client is alive. @default 10000 */
  readonly autoRenewInvisibleMs?: number
}

/** A message as the emulated broker stores it. */
export interface StoredMessageView {
  readonly messageId: string
  readonly body: Buffer
  readonly properties: Record<string, string>
  readonly keys: ReadonlyArray<string>
  readonly tag?: string
  readonly messageGroup?: string
  readonly deliveryTimestamp?: number
}

export interface RocketEmulator {
  /** `host:port`, what the client's `endpoints` option takes. */
  readonly endpoint: string
  readonly faults: RocketFaults
  /** Messages stored for a topic (committed normal, FIFO, delayed and transactional ones), in store order. */
  readonly messages: (topic: string) => ReadonlyArray<StoredMessageView>
  /** Messages in the dead-letter queue of a group (`%DLQ%<group>`). */
  readonly deadLetters: (
    group: string
  ) => ReadonlyArray<{ messageId: string; body: Buffer; properties: Record<string, string> }>
  /**
   * Creates a topic as an operator would (`mqadmin updateTopic`): the gRPC
   * protocol has no call for it. `messageType` is what the route advertises
   * and sends are checked against (MIXED, the default, accepts NORMAL, FIFO,
   * DELAY and TRANSACTION). Creating an existing topic changes nothing; a
   * name the broker refuses (not `^[%|a-zA-Z0-9_-]+$`, over 127 characters)
   * throws.
   */
  readonly createTopic: (
    name: string,
    options?: { readonly messageType?: TopicMessageType; readonly queues?: number }
  ) => void
  /** Half messages not yet committed or rolled back. */
  readonly pendingHalfMessages: () => ReadonlyArray<{ messageId: string; topic: string; checks: number }>
  readonly close: () => Promise<void>
}

/** Starts an emulator listening on `host:port`. */
export const start = async (options: RocketEmulatorOptions = {}): Promise<RocketEmulator> => {
  for (const topic of options.topics ?? []) {
    const illegal = topicNameProblem(topic)
    if (illegal !== undefined) throw new TypeError(illegal)
  }
  const broker = new Broker({
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0,
    queuesPerTopic: options.queuesPerTopic ?? 4,
    autoCreateTopics: options.autoCreateTopics ?? true,
    topics: options.topics ?? [],
    maxMessageBytes: options.maxMessageBytes ?? 4 * 1024 * 1024,
    maxDelayMs: options.maxDelayMs ?? 24 * 60 * 60 * 1000,
    maxDeliveryAttempts: options.maxDeliveryAttempts ?? 16,
    transactionCheckIntervalMs: options.transactionCheckIntervalMs ?? 1000,
    maxTransactionChecks: options.maxTransactionChecks ?? 15,
    fifoGroups: new Set(options.fifoGroups ?? []),
    longPollingTimeoutMs: options.longPollingTimeoutMs ?? 5000,
    receiveBatchSize: options.receiveBatchSize ?? 32,
    autoRenewInvisibleMs: options.autoRenewInvisibleMs ?? 10_000
  })
  const endpoint = await broker.listen()
  let closed: Promise<void> | undefined
  return {
    endpoint,
    faults: broker.faults,
    messages: (topic) =>
      (broker.topics.get(topic)?.stored ?? []).map((message) => {
        const view: {
          messageId: string
          body: Buffer
          properties: Record<string, string>
          keys: ReadonlyArray<string>
          tag?: string
          messageGroup?: string
          deliveryTimestamp?: number
        } = {
          messageId: message.messageId,
          body: message.body,
          properties: { ...message.properties },
          keys: message.keys
        }
        if (message.tag !== undefined) view.tag = message.tag
        if (message.messageGroup !== undefined) view.messageGroup = message.messageGroup
        if (message.deliveryTimestamp !== undefined) view.deliveryTimestamp = message.deliveryTimestamp
        return view
      }),
    deadLetters: (group) =>
      (broker.topics.get(deadLetterTopic(group))?.stored ?? []).map((message) => ({
        messageId: message.messageId,
        body: message.body,
        properties: { ...message.properties }
      })),
    createTopic: (name, topicOptions) => {
      const illegal = topicNameProblem(name)
      if (illegal !== undefined) throw new TypeError(illegal)
      broker.topics.create(name, topicOptions)
    },
    pendingHalfMessages: () => broker.transactions.pending(),
    close: () => {
      closed ??= broker.close()
      return closed
    }
  }
}

/** An emulator for the life of the current scope. */
export const scoped = (options?: RocketEmulatorOptions): Effect.Effect<RocketEmulator, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (emulator) => Effect.promise(() => emulator.close())
  )
