/**
 * How Lossless topics and groups map onto RabbitMQ exchanges and queues.
 *
 * - A topic is a durable **topic exchange** named after it.
 * - A group is a durable **work queue** `<topic>__<group>` bound to the
 *   topic's exchange with `#`, so every group gets every message and the
 *   members of one group compete for it.
 * - Its dead letters are a durable queue `<topic>__<group>__dlq`
 *   (`Names.deadLetter`), written by publish-then-ack.
 * - `retryLater` parks a copy in a **retry queue** `<queue>__retry__<ms>`
 *   whose messages expire after `<ms>` and are dead-lettered through the
 *   default exchange back to `<queue>`. Delays are rounded up to a fixed set
 *   of buckets, so one queue serves every message with that delay: a TTL per
 *   queue keeps expiry in queue order, where a per-message TTL would let a
 *   long delay at the head hold back the short ones behind it. Retry queues
 *   are declared on first use and expire (`x-expires`) once unused.
 *
 * Every name gets the configured prefix. The `__` separator cannot occur in
 * a topic or group name (see `Names`), so derived names never collide.
 *
 * @since 0.1.0
 */
import { Names } from "@lossless/core"
import type { QueueType } from "./RabbitConfig.ts"

/** The binding of every work queue: all routing keys. */
export const bindingKey = "#"

/** The exchange type of topics: routing by key pattern leaves room for narrower bindings later. */
export const exchangeType = "topic"

/** The exchange a topic's messages are published to. */
export const exchange = (prefix: string, topic: string): string => `${prefix}${topic}`

/** The queue a group consumes a topic from. */
export const workQueue = (prefix: string, topic: string, group: string): string =>
  `${prefix}${topic}${Names.separator}${group}`

/** The queue holding a group's dead letters of a topic. */
export const deadLetterQueue = (prefix: string, topic: string, group: string): string =>
  `${prefix}${Names.deadLetter(topic, group)}`

/**
 * The retry queue of `queue` for one delay bucket. For a work queue this is
 * `Names.retry(topic, group)` followed by `__<ms>`.
 */
export const retryQueue = (queue: string, delayMillis: number): string =>
  `${queue}${Names.separator}retry${Names.separator}${delayMillis}`

/**
 * The bucket a delay is rounded up to: the smallest delay in `delays`
 * (ascending) that is at least `millis`, or the largest when none is.
 */
export const bucket = (delays: ReadonlyArray<number>, millis: number): number => {
  let lo = 0
  let hi = delays.length - 1
  if (hi < 0) throw new Error("no retry delays configured")
  if (millis >= (delays[hi] as number)) return delays[hi] as number
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((delays[mid] as number) < millis) lo = mid + 1
    else hi = mid
  }
  return delays[lo] as number
}

/** Arguments of a work or dead-letter queue. */
export const queueArguments = (queueType: QueueType): Record<string, unknown> => ({ "x-queue-type": queueType })

/**
 * Arguments of a retry queue: its messages expire after `delayMillis` and go,
 * through the default exchange, to `returnTo`; the queue itself is deleted
 * once unused for `delayMillis + idleMillis`.
 */
export const retryQueueArguments = (options: {
  readonly queueType: QueueType
  readonly delayMillis: number
  readonly idleMillis: number
  readonly returnTo: string
}): Record<string, unknown> => ({
  "x-queue-type": options.queueType,
  "x-message-ttl": options.delayMillis,
  "x-expires": Math.min(2 ** 32 - 1, options.delayMillis + Math.max(1, options.idleMillis)),
  "x-dead-letter-exchange": "",
  "x-dead-letter-routing-key": options.returnTo,
  // A quorum queue dead-letters at most once unless told otherwise; a retry must not vanish.
  ...(options.queueType === "quorum"
    ? { "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish" }
    : {})
})
