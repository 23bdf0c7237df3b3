/**
 * Every failure Lossless reports, as tagged, schema-backed error classes.
 *
 * Each error states whether retrying the same operation may succeed
 * (`retryable`). Core's retry policies consult that flag, so an adapter that
 * maps a broker failure to the right class gets the right policy for free:
 * a timeout is retried, an unroutable message is not.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { envelopeSchema } from "./internal/envelopeSchema.ts"

const Settlement = Schema.Literals(["ack", "retryLater", "deadLetter"])

/**
 * A topic or group name outside the portable alphabet (see `Names`).
 * Permanent: the same name fails on every broker.
 */
export class InvalidName extends Schema.TaggedError<InvalidName>()("InvalidName", {
  kind: Schema.Literals(["topic", "group"]),
  name: Schema.String,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `invalid ${this.kind} name ${JSON.stringify(this.name)}: ${this.reason}`
  }
}

/** A transport URL that cannot be parsed or lacks a required part. Credentials are never kept in `url`. */
export class InvalidUrl extends Schema.TaggedError<InvalidUrl>()("InvalidUrl", {
  url: Schema.String,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `invalid transport URL ${JSON.stringify(this.url)}: ${this.reason}`
  }
}

/** A transport URL whose scheme no registered adapter serves. */
export class UnknownScheme extends Schema.TaggedError<UnknownScheme>()("UnknownScheme", {
  scheme: Schema.String,
  supported: Schema.Array(Schema.String)
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    const known = this.supported.length === 0 ? "none registered" : this.supported.join(", ")
    return `no transport registered for scheme "${this.scheme}:" (supported: ${known})`
  }
}

/** A payload that does not satisfy its topic's schema, found before anything was sent. */
export class SchemaViolation extends Schema.TaggedError<SchemaViolation>()("SchemaViolation", {
  topic: Schema.String,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `payload for topic "${this.topic}" violates its schema: ${this.reason}`
  }
}

/** A user header that is reserved for Lossless or not a valid header. */
export class InvalidHeader extends Schema.TaggedError<InvalidHeader>()("InvalidHeader", {
  name: Schema.String,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `invalid header ${JSON.stringify(this.name)}: ${this.reason}`
  }
}

/** Bytes received on a topic that do not decode to its schema. The consumer dead-letters them at once. */
export class DecodeFailed extends Schema.TaggedError<DecodeFailed>()("DecodeFailed", {
  topic: Schema.String,
  messageId: Schema.String,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `message ${this.messageId} on topic "${this.topic}" cannot be decoded: ${this.reason}`
  }
}

/** A broker message that lacks the headers every Lossless envelope carries. */
export class MalformedEnvelope extends Schema.TaggedError<MalformedEnvelope>()("MalformedEnvelope", {
  topic: Schema.String,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `malformed envelope on topic "${this.topic}": ${this.reason}`
  }
}

/** The topic (or its broker-side destination) does not exist. Declare it with `ensureTopology`. */
export class TopicNotFound extends Schema.TaggedError<TopicNotFound>()("TopicNotFound", {
  topic: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `topic "${this.topic}" does not exist; declare it with ensureTopology`
  }
}

/** The consumer group (its queue or subscription) does not exist on the topic. */
export class GroupNotFound extends Schema.TaggedError<GroupNotFound>()("GroupNotFound", {
  topic: Schema.String,
  group: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `group "${this.group}" does not exist on topic "${this.topic}"; declare it with ensureTopology`
  }
}

/**
 * The broker accepted the message but had nowhere to store it (no queue or
 * group bound to the topic). Never a success: the message would be lost.
 */
export class Unroutable extends Schema.TaggedError<Unroutable>()("Unroutable", {
  topic: Schema.String,
  messageId: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `message ${this.messageId} on topic "${this.topic}" is unroutable: no group is bound to the topic`
  }
}

/** The message exceeds what the broker accepts. */
export class MessageTooLarge extends Schema.TaggedError<MessageTooLarge>()("MessageTooLarge", {
  topic: Schema.String,
  messageId: Schema.String,
  size: Schema.Number,
  limit: Schema.Number
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `message ${this.messageId} on topic "${this.topic}" has ${this.size} bytes, over the limit of ${this.limit}`
  }
}

/** The broker refused the message (a negative confirm, a non-OK status). May succeed on retry. */
export class BrokerRejected extends Schema.TaggedError<BrokerRejected>()("BrokerRejected", {
  topic: Schema.String,
  messageId: Schema.String,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return true
  }
  override get message(): string {
    return `broker rejected message ${this.messageId} on topic "${this.topic}": ${this.reason}`
  }
}

/** The broker stored the message but could not confirm it was persisted or replicated in time. */
export class PersistenceTimeout extends Schema.TaggedError<PersistenceTimeout>()("PersistenceTimeout", {
  topic: Schema.String,
  messageId: Schema.String,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return true
  }
  override get message(): string {
    return `message ${this.messageId} on topic "${this.topic}" was not confirmed durable: ${this.reason}`
  }
}

/** No confirm arrived within the attempt's deadline. The message may or may not be stored. */
export class PublishTimeout extends Schema.TaggedError<PublishTimeout>()("PublishTimeout", {
  topic: Schema.String,
  messageId: Schema.String,
  timeoutMillis: Schema.Number
}) {
  get retryable(): boolean {
    return true
  }
  override get message(): string {
    return `message ${this.messageId} on topic "${this.topic}" was not confirmed within ${this.timeoutMillis} ms`
  }
}

/** The connection or channel to the broker closed while the operation was outstanding. */
export class ConnectionLost extends Schema.TaggedError<ConnectionLost>()("ConnectionLost", {
  transport: Schema.String,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return true
  }
  override get message(): string {
    return `${this.transport} connection lost: ${this.reason}`
  }
}

/** The broker cannot be reached (connect or declare failed). */
export class TransportUnavailable extends Schema.TaggedError<TransportUnavailable>()("TransportUnavailable", {
  transport: Schema.String,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return true
  }
  override get message(): string {
    return `${this.transport} is unavailable: ${this.reason}`
  }
}

/**
 * A settlement (ack, retryLater, deadLetter) that the broker did not take,
 * for example because the delivery's channel or subscription is gone. The
 * message stays with the broker and will be redelivered; it is never reported
 * as settled.
 */
export class SettlementFailed extends Schema.TaggedError<SettlementFailed>()("SettlementFailed", {
  messageId: Schema.String,
  settlement: Settlement,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `${this.settlement} of message ${this.messageId} failed: ${this.reason}`
  }
}

/** A handler failure that no retry can fix: the consumer dead-letters the message at once. */
export class PermanentFailure extends Schema.TaggedError<PermanentFailure>()("PermanentFailure", {
  reason: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return this.reason
  }
}

/** A dedupe (or other) store that cannot be reached; the message is retried later, not acked. */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  store: Schema.String,
  reason: Schema.String
}) {
  get retryable(): boolean {
    return true
  }
  override get message(): string {
    return `${this.store} store unavailable: ${this.reason}`
  }
}

/** Why a single envelope was not confirmed by `Transport.publish`. */
export type PublishError =
  | Unroutable
  | TopicNotFound
  | MessageTooLarge
  | BrokerRejected
  | PersistenceTimeout
  | PublishTimeout
  | ConnectionLost
  | TransportUnavailable

const PublishErrorSchema = Schema.Union([
  Unroutable,
  TopicNotFound,
  MessageTooLarge,
  BrokerRejected,
  PersistenceTimeout,
  PublishTimeout,
  ConnectionLost,
  TransportUnavailable
])

/** One message a send gave up on, with its envelope, so nothing is dropped silently. */
export const SendFailure = Schema.Struct({
  envelope: envelopeSchema,
  attempts: Schema.Number,
  error: PublishErrorSchema
})
export type SendFailure = typeof SendFailure.Type

/**
 * A send that was not confirmed: permanent failures after one attempt,
 * retryable ones after the retry schedule gave up. Carries each failed
 * envelope; the ids in `confirmed` were stored by the broker.
 */
export class SendFailed extends Schema.TaggedError<SendFailed>()("SendFailed", {
  failures: Schema.Array(SendFailure),
  confirmed: Schema.Array(Schema.String)
}) {
  /** Whether every failure was retryable (a later re-send may succeed). */
  get retryable(): boolean {
    return this.failures.every((f) => f.error.retryable)
  }
  override get message(): string {
    const first = this.failures[0]
    const total = this.failures.length + this.confirmed.length
    const head = `${this.failures.length} of ${total} message(s) not confirmed`
    return first === undefined
      ? head
      : `${head}; first: ${first.envelope.id} on "${first.envelope.topic}" after ${first.attempts} attempt(s): ${first.error.message}`
  }
}

/** Why a subscription could not start or stopped. */
export type SubscribeError = TopicNotFound | GroupNotFound | ConnectionLost | TransportUnavailable

/** Why topology could not be declared. */
export type TopologyError = InvalidName | ConnectionLost | TransportUnavailable

/** Why a transport could not be chosen from its URL. */
export type TransportUrlError = InvalidUrl | UnknownScheme

/** Any Lossless error. */
export type LosslessError =
  | InvalidName
  | InvalidUrl
  | UnknownScheme
  | SchemaViolation
  | InvalidHeader
  | DecodeFailed
  | MalformedEnvelope
  | PublishError
  | SubscribeError
  | SettlementFailed
  | SendFailed
  | PermanentFailure
  | StoreUnavailable

/** Whether retrying the failed operation may succeed. Errors from outside Lossless are not retried. */
export const isRetryable = (error: unknown): boolean =>
  typeof error === "object" &&
  error !== null &&
  "retryable" in error &&
  (error as { retryable: unknown }).retryable === true
