/**
 * The RocketMQ names Lossless uses for a topic and a group.
 *
 * A Lossless group consumes one topic; in RocketMQ a consumer group should
 * subscribe to the same topics with the same filter in every client
 * (subscription consistency). So each (topic, group) pair is its own
 * RocketMQ consumer group, `<topic>__<group>`: a group name reused across
 * topics in Lossless never makes one RocketMQ group subscribe inconsistently,
 * and the broker's own retry and dead-letter topics (`%RETRY%<consumer group>`,
 * `%DLQ%<consumer group>`) stay per topic as well.
 *
 * Dead letters with their reason go to a plain topic named by
 * `Names.deadLetter(topic, group)`, read by a consumer group of the same name.
 *
 * @since 0.1.0
 */
import { Names } from "@lossless/core"

/** RocketMQ's longest topic name. */
export const maxTopicLength = 127

/** RocketMQ's longest consumer group name. */
export const maxGroupLength = 255

/** The RocketMQ consumer group of a Lossless group on a topic. */
export const consumerGroup = (topic: string, group: string): string => `${topic}${Names.separator}${group}`

/** The topic holding a group's dead letters (with their reason) for a topic. */
export const deadLetterTopic = (topic: string, group: string): string => Names.deadLetter(topic, group)

/** The consumer group that reads a group's dead letters. */
export const deadLetterGroup = (topic: string, group: string): string => Names.deadLetter(topic, group)

/** The broker's own dead-letter topic of a consumer group, where it moves messages whose delivery attempts ran out. */
export const nativeDeadLetterTopic = (topic: string, group: string): string => `%DLQ%${consumerGroup(topic, group)}`
