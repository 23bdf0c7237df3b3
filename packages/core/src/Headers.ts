/**
 * The reserved headers every envelope carries on the wire, under one prefix.
 *
 * User headers must not start with `prefix`; `Envelope.make` rejects them so a
 * user cannot forge a message id or an attempt count.
 *
 * @since 0.1.0
 */

/** The prefix of every reserved header. */
export const prefix = "lossless-"

/** The message id, assigned once by the producer; the default dedupe key. */
export const MessageId = `${prefix}message-id`
/** When the producer created the message, epoch milliseconds. */
export const Timestamp = `${prefix}timestamp`
/** When the message becomes deliverable, epoch milliseconds (delayed delivery). */
export const DeliverAt = `${prefix}deliver-at`
/** The ordering/partitioning key, for brokers without a native key field. */
export const Key = `${prefix}key`
/** The producer instance that stamped `Sequence` (loss detection). */
export const ProducerId = `${prefix}producer-id`
/** The per-producer, per-stream sequence number (loss detection). */
export const Sequence = `${prefix}sequence`
/** The processing attempt, 1 on first delivery, raised by each `retryLater`. */
export const Attempt = `${prefix}attempt`
/** W3C trace context of the send, linking consumer spans to the producer's. */
export const Traceparent = `${prefix}traceparent`
/** On a dead letter: the topic the message was consumed from. */
export const OriginalTopic = `${prefix}original-topic`
/** On a dead letter: the group that gave up on it. */
export const OriginalGroup = `${prefix}original-group`
/** On a dead letter: why it was dead-lettered. */
export const ErrorMessage = `${prefix}error`
/** On a dead letter: when it was dead-lettered, ISO-8601. */
export const FailedAt = `${prefix}failed-at`

/** Whether a header name is reserved for Lossless. */
export const isReserved = (name: string): boolean => name.toLowerCase().startsWith(prefix)
