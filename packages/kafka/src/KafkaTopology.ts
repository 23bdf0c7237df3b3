/**
 * How Lossless topics and groups map onto Kafka topics and consumer groups.
 *
 * - A topic is a Kafka topic of the same name.
 * - A group consuming a topic is the Kafka consumer group `<topic>__<group>`.
 *   One Kafka group per (topic, group) keeps one topic's members from
 *   rebalancing another's, and keeps kafkajs's assignors away from members
 *   with different subscriptions.
 * - `retryLater` writes a copy to the retry topic `<topic>__<group>__retry`
 *   (`Names.retry`) with the time it is due; the same Kafka group consumes it
 *   beside the work topic, so retries arrive on the same subscription.
 * - `deadLetter` writes to `<topic>__<group>__dlq` (`Names.deadLetter`),
 *   consumed for inspection by the Kafka group of the same name.
 *
 * The `__` separator cannot occur in a topic or group name (see `Names`), so
 * derived names never collide with user topics or with each other.
 *
 * @since 0.1.0
 */
import { Headers, Names } from "@lossless/core"

/** The Kafka consumer group of a Lossless group on a topic. */
export const consumerGroup = (topic: string, group: string): string => `${topic}${Names.separator}${group}`

/** The topic `retryLater` copies a group's messages to. */
export const retryTopic = (topic: string, group: string): string => Names.retry(topic, group)

/** The topic holding a group's dead letters of a topic. */
export const deadLetterTopic = (topic: string, group: string): string => Names.deadLetter(topic, group)

/** The Kafka consumer group reading a group's dead letters. */
export const deadLetterGroup = (topic: string, group: string): string => Names.deadLetter(topic, group)

/**
 * On a retry copy: when it is due, epoch milliseconds. The retry consumer
 * leaves a copy (and its partition) alone until then. Adapter bookkeeping,
 * removed before the envelope reaches a consumer.
 */
export const retryDueHeader = `${Headers.prefix}kafka-retry-due`
