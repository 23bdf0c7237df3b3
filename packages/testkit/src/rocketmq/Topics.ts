/**
 * The message store: one append-only log per topic, holding what consumers
 * may receive. Delayed messages wait in the scheduler and join the log when
 * due (the broker's schedule topic, in RocketMQ terms); committed half
 * messages join it at commit.
 *
 * @since 0.1.0
 */
import { crc32 } from "node:zlib"
import type { Scheduler, Task } from "./Scheduler.ts"

/** A message as the broker stores it: what was sent plus where and when it was stored. */
export interface StoredMessage {
  readonly topic: string
  readonly messageId: string
  readonly body: Buffer
  readonly properties: Readonly<Record<string, string>>
  readonly keys: ReadonlyArray<string>
  readonly tag: string | undefined
  readonly messageGroup: string | undefined
  /** When a delayed message becomes deliverable (epoch ms). */
  readonly deliveryTimestamp: number | undefined
  readonly messageType: number
  readonly bodyEncoding: number
  readonly bornTimestamp: number
  readonly bornHost: string
  readonly traceContext: string | undefined
  /** CRC32 of the body as the client checks it (decimal). */
  readonly bodyCrc32: string
  /** Set on messages of a dead-letter topic: where they came from. */
  readonly deadLetterOf: { readonly topic: string; readonly messageId: string } | undefined
  queueId: number
  queueOffset: number
  storeTimestamp: number
}

/** What a producer hands to the store. */
export type IncomingMessage = Omit<StoredMessage, "bodyCrc32" | "queueOffset" | "storeTimestamp" | "queueId"> & {
  readonly queueId: number
}

let recallSeq = 0

/** Computes the body digest once per stored message. */
export const digest = (body: Buffer): string => String(crc32(body) >>> 0)

/** The message type a topic accepts, as an operator creates it; MIXED accepts all four. */
export type TopicMessageType = "NORMAL" | "FIFO" | "DELAY" | "TRANSACTION" | "MIXED"

/** Protocol `MessageType` numbers (NORMAL 1, FIFO 2, DELAY 3, TRANSACTION 4) a topic type accepts. */
const acceptedTypes: Record<TopicMessageType, ReadonlyArray<number>> = {
  NORMAL: [1],
  FIFO: [2],
  DELAY: [3],
  TRANSACTION: [4],
  MIXED: [1, 2, 3, 4]
}

/** One topic: its stored messages in store order and the deliverable log. */
export class Topic {
  readonly name: string
  readonly queues: number
  /** Protocol message types the route advertises and sends are checked against. */
  readonly accepts: ReadonlyArray<number>
  /** Every committed message in store order, including delayed ones not yet due. */
  readonly stored: Array<StoredMessage> = []
  /** Messages consumers may receive, in the order they became deliverable. */
  readonly log: Array<StoredMessage> = []
  readonly #offsets: Array<number>
  readonly #listeners = new Set<() => void>()

  constructor(name: string, queues: number, type: TopicMessageType) {
    this.name = name
    this.queues = queues
    this.accepts = acceptedTypes[type]
    this.#offsets = new Array<number>(queues).fill(0)
  }

  /** Calls `listener` whenever messages become deliverable; returns the unsubscribe. */
  onAppend(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Stores a message and returns its queue offset. */
  store(message: StoredMessage): number {
    const queueId = message.queueId >= 0 && message.queueId < this.queues ? message.queueId : 0
    message.queueId = queueId
    message.queueOffset = this.#offsets[queueId] ?? 0
    this.#offsets[queueId] = message.queueOffset + 1
    message.storeTimestamp = Date.now()
    this.stored.push(message)
    return message.queueOffset
  }

  /** Forgets a stored message that was never deliverable (a recalled delayed message). */
  unstore(message: StoredMessage): void {
    const index = this.stored.lastIndexOf(message)
    if (index >= 0) this.stored.splice(index, 1)
  }

  /** Makes a stored message deliverable now. */
  publish(message: StoredMessage): void {
    this.log.push(message)
    for (const listener of this.#listeners) listener()
  }
}

/** All topics of the emulated broker. */
export class Topics {
  readonly #topics = new Map<string, Topic>()
  readonly #queues: number
  readonly #scheduler: Scheduler
  readonly #delayed = new Map<string, { readonly topic: Topic; readonly message: StoredMessage; readonly task: Task }>()

  constructor(queuesPerTopic: number, scheduler: Scheduler) {
    this.#queues = queuesPerTopic
    this.#scheduler = scheduler
  }

  get(name: string): Topic | undefined {
    return this.#topics.get(name)
  }

  /** The topic `name`, created as a MIXED topic with the default queue count on first use. */
  getOrCreate(name: string): Topic {
    return this.#topics.get(name) ?? this.create(name)
  }

  /** Creates the topic `name` as an operator would; an existing topic stays as it is. */
  create(name: string, options: { readonly messageType?: TopicMessageType; readonly queues?: number } = {}): Topic {
    const existing = this.#topics.get(name)
    if (existing !== undefined) return existing
    const topic = new Topic(name, options.queues ?? this.#queues, options.messageType ?? "MIXED")
    this.#topics.set(name, topic)
    return topic
  }

  /**
   * Stores a committed message: deliverable now, or when its delivery
   * timestamp is due. Returns the queue offset.
   */
  append(incoming: IncomingMessage): { readonly offset: number; readonly recallHandle: string | undefined } {
    const topic = this.getOrCreate(incoming.topic)
    const message: StoredMessage = { ...incoming, bodyCrc32: digest(incoming.body), queueOffset: 0, storeTimestamp: 0 }
    const offset = topic.store(message)
    const due = message.deliveryTimestamp
    if (due === undefined || due <= Date.now()) {
      topic.publish(message)
      return { offset, recallHandle: undefined }
    }
    // A delayed message can be recalled until it is due.
    const recallHandle = `${topic.name}@${message.messageId}@${(recallSeq++).toString(36)}`
    const task = this.#scheduler.at(due, () => {
      this.#delayed.delete(recallHandle)
      topic.publish(message)
    })
    this.#delayed.set(recallHandle, { topic, message, task })
    return { offset, recallHandle }
  }

  /**
   * Withdraws a delayed message that is not due yet; returns its message id,
   * or `undefined` when the handle is unknown or the message was delivered.
   */
  recall(topicName: string, recallHandle: string): string | undefined {
    const delayed = this.#delayed.get(recallHandle)
    if (delayed === undefined || delayed.topic.name !== topicName) return undefined
    this.#delayed.delete(recallHandle)
    delayed.task.cancel()
    delayed.topic.unstore(delayed.message)
    return delayed.message.messageId
  }

  /** Stores a message already digested elsewhere (a dead letter, a committed half message). */
  appendStored(message: StoredMessage): number {
    const topic = this.getOrCreate(message.topic)
    const offset = topic.store(message)
    topic.publish(message)
    return offset
  }

  clear(): void {
    this.#topics.clear()
    this.#delayed.clear()
  }
}
