/**
 * RocketMQ failures as Lossless errors: the status codes of the RocketMQ 5
 * gRPC protocol (`apache.rocketmq.v2.Code`) as a table, and the functions
 * that turn what rocketmq-client-nodejs throws into the core error a caller
 * can act on.
 *
 * The client reports a non-OK status by throwing one of its exception classes
 * (`PayloadTooLargeException`, `NotFoundException`, `ProxyTimeoutException`,
 * ...), each carrying the numeric status `code`; transport failures surface
 * as gRPC errors with a gRPC status code (`UNAVAILABLE`, `DEADLINE_EXCEEDED`).
 * The table is keyed by the RocketMQ code, which says more than the class
 * does: `ProxyTimeoutException` covers both "the proxy timed out" and "the
 * message is stored but the flush or the replica did not confirm in time".
 *
 * | broker says                                         | Lossless error                          |
 * | --------------------------------------------------- | --------------------------------------- |
 * | TOPIC_NOT_FOUND, NOT_FOUND                           | `TopicNotFound`                         |
 * | CONSUMER_GROUP_NOT_FOUND                             | `GroupNotFound`                         |
 * | MESSAGE_BODY_TOO_LARGE, PAYLOAD_TOO_LARGE, MESSAGE_PROPERTIES_TOO_LARGE | `MessageTooLarge`  |
 * | MASTER_PERSISTENCE_TIMEOUT, SLAVE_PERSISTENCE_TIMEOUT, HA_NOT_AVAILABLE | `PersistenceTimeout` (retryable; a success when not strict) |
 * | PROXY_TIMEOUT, REQUEST_TIMEOUT, gRPC DEADLINE_EXCEEDED | `PublishTimeout` (retryable)          |
 * | TOO_MANY_REQUESTS, INTERNAL_ERROR, other 5xx         | `BrokerRejected` (retryable)            |
 * | FORBIDDEN, UNAUTHORIZED, bad requests                | `BrokerRejected` (with the status name) |
 * | gRPC UNAVAILABLE, a dropped stream                   | `ConnectionLost` (retryable)            |
 *
 * @since 0.1.0
 */
import {
  BrokerRejected,
  ConnectionLost,
  GroupNotFound,
  MessageTooLarge,
  PersistenceTimeout,
  type PublishError,
  PublishTimeout,
  TopicNotFound,
  TransportUnavailable
} from "@lossless/core"
import { Schema } from "effect"

/** The transport's name in errors and logs. */
export const transport = "rocketmq"

/** What a status code means for the operation that got it. */
export type Kind =
  | "ok"
  /** Stored, but not (yet) confirmed flushed or replicated. */
  | "persistence"
  /** No answer in time: the operation may or may not have happened. */
  | "timeout"
  | "topicNotFound"
  | "groupNotFound"
  | "tooLarge"
  /** Refused; repeating it later may succeed (throttling, a broker fault). */
  | "transient"
  /** Refused for good with these settings (permissions, a malformed request). */
  | "permanent"

/** One status code of the RocketMQ 5 protocol. */
export interface StatusCode {
  readonly code: number
  readonly name: string
  readonly kind: Kind
  readonly meaning: string
}

const entry = (code: number, name: string, kind: Kind, meaning: string): StatusCode => ({ code, name, kind, meaning })

/** The status codes of `apache.rocketmq.v2.Code`, with what each means for Lossless. */
export const statusCodes: ReadonlyMap<number, StatusCode> = new Map(
  [
    entry(20000, "OK", "ok", "success"),
    entry(30000, "MULTIPLE_RESULTS", "ok", "per-entry results follow"),
    entry(40000, "BAD_REQUEST", "permanent", "the request is malformed"),
    entry(40001, "ILLEGAL_ACCESS_POINT", "permanent", "the access point is not valid"),
    entry(40002, "ILLEGAL_TOPIC", "permanent", "the topic name is not valid"),
    entry(40003, "ILLEGAL_CONSUMER_GROUP", "permanent", "the consumer group name is not valid"),
    entry(40004, "ILLEGAL_MESSAGE_TAG", "permanent", "the tag is not valid"),
    entry(40005, "ILLEGAL_MESSAGE_KEY", "permanent", "a key is not valid"),
    entry(40006, "ILLEGAL_MESSAGE_GROUP", "permanent", "the message group is not valid"),
    entry(40007, "ILLEGAL_MESSAGE_PROPERTY_KEY", "permanent", "a property name is reserved or not valid"),
    entry(40008, "INVALID_TRANSACTION_ID", "permanent", "the transaction id is unknown"),
    entry(40009, "ILLEGAL_MESSAGE_ID", "permanent", "the message id is not valid"),
    entry(40010, "ILLEGAL_FILTER_EXPRESSION", "permanent", "the filter expression is not valid"),
    entry(40011, "ILLEGAL_INVISIBLE_TIME", "permanent", "the invisible duration is out of the proxy's range"),
    entry(40012, "ILLEGAL_DELIVERY_TIME", "permanent", "the delivery time is beyond the broker's maximum delay"),
    entry(40013, "INVALID_RECEIPT_HANDLE", "permanent", "the receipt handle expired or is unknown"),
    entry(40014, "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE", "permanent", "the message type does not match the topic"),
    entry(40015, "UNRECOGNIZED_CLIENT_TYPE", "permanent", "unknown client type"),
    entry(40016, "MESSAGE_CORRUPTED", "permanent", "the message is corrupted"),
    entry(40017, "CLIENT_ID_REQUIRED", "permanent", "the client id is missing"),
    entry(40018, "ILLEGAL_POLLING_TIME", "permanent", "the long-polling time is out of the proxy's range"),
    entry(40019, "ILLEGAL_OFFSET", "permanent", "the offset is not valid"),
    entry(40100, "UNAUTHORIZED", "permanent", "the credentials are missing or wrong"),
    entry(40200, "PAYMENT_REQUIRED", "permanent", "the account is not in good standing"),
    entry(40300, "FORBIDDEN", "permanent", "the credentials may not access this resource"),
    entry(40400, "NOT_FOUND", "topicNotFound", "the resource does not exist"),
    entry(40401, "MESSAGE_NOT_FOUND", "ok", "no message available"),
    entry(40402, "TOPIC_NOT_FOUND", "topicNotFound", "the topic does not exist"),
    entry(40403, "CONSUMER_GROUP_NOT_FOUND", "groupNotFound", "the consumer group does not exist"),
    entry(40404, "OFFSET_NOT_FOUND", "permanent", "the offset does not exist"),
    entry(40800, "REQUEST_TIMEOUT", "timeout", "the request timed out"),
    entry(41300, "PAYLOAD_TOO_LARGE", "tooLarge", "the request is larger than the proxy accepts"),
    entry(41301, "MESSAGE_BODY_TOO_LARGE", "tooLarge", "the body is larger than the broker accepts"),
    entry(41302, "MESSAGE_BODY_EMPTY", "permanent", "the body is empty"),
    entry(42800, "PRECONDITION_FAILED", "permanent", "a precondition failed"),
    entry(42900, "TOO_MANY_REQUESTS", "transient", "throttled: the broker is busy"),
    entry(43100, "REQUEST_HEADER_FIELDS_TOO_LARGE", "tooLarge", "the headers are larger than the proxy accepts"),
    entry(43101, "MESSAGE_PROPERTIES_TOO_LARGE", "tooLarge", "the properties are larger than the broker accepts"),
    entry(50000, "INTERNAL_ERROR", "transient", "the broker failed internally"),
    entry(50001, "INTERNAL_SERVER_ERROR", "transient", "the proxy failed internally"),
    entry(50002, "HA_NOT_AVAILABLE", "persistence", "no in-sync replica is available to confirm the write"),
    entry(50100, "NOT_IMPLEMENTED", "permanent", "the proxy does not implement the request"),
    entry(50400, "PROXY_TIMEOUT", "timeout", "the proxy got no answer from the broker in time"),
    entry(
      50401,
      "MASTER_PERSISTENCE_TIMEOUT",
      "persistence",
      "stored, but the flush to disk was not confirmed in time"
    ),
    entry(50402, "SLAVE_PERSISTENCE_TIMEOUT", "persistence", "stored, but the replica did not confirm in time"),
    entry(50500, "UNSUPPORTED", "permanent", "the request is not supported"),
    entry(50501, "VERSION_UNSUPPORTED", "permanent", "the protocol version is not supported"),
    entry(50502, "VERIFY_FIFO_MESSAGE_UNSUPPORTED", "permanent", "FIFO verification is not supported")
  ].map((c) => [c.code, c])
)

/** gRPC status codes that mean the connection, not the request, failed. */
const grpcConnectionCodes = new Set([1 /* CANCELLED */, 14 /* UNAVAILABLE */, 13 /* INTERNAL */])
const grpcDeadlineExceeded = 4

/** The RocketMQ status code a client exception carries, when it carries one. */
export const statusCode = (error: unknown): number | undefined => {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined
  return typeof code === "number" && code >= 10_000 ? code : undefined
}

/** The gRPC status code of a transport-level failure, when it is one. */
export const grpcCode = (error: unknown): number | undefined => {
  if (typeof error !== "object" || error === null) return undefined
  const { code, details } = error as { code?: unknown; details?: unknown }
  return typeof code === "number" && code < 100 && typeof details === "string" ? code : undefined
}

/** The table entry for a failure, when it carries a known RocketMQ status code. */
export const classify = (error: unknown): StatusCode | undefined => {
  const code = statusCode(error)
  return code === undefined ? undefined : statusCodes.get(code)
}

/** The text of any failure, without a stack. */
export const describe = (error: unknown): string => {
  if (error instanceof Error) return error.message === "" ? error.name : error.message
  return String(error)
}

/** Whether the failure means the connection is gone rather than the request refused. */
export const isConnectionLoss = (error: unknown): boolean => {
  const grpc = grpcCode(error)
  if (grpc !== undefined) return grpcConnectionCodes.has(grpc)
  return /ECONNREFUSED|ECONNRESET|EPIPE|socket|No connection established|Producer is not running|not running now/i.test(
    describe(error)
  )
}

/** The client's own refusal of an oversized body, before anything was sent. */
const clientTooLarge = /exceeds the threshold/i

/** A lost connection, with a reason a person can act on. */
export const connectionLost = (reason: string): ConnectionLost => new ConnectionLost({ transport, reason })

/** The proxy cannot be reached, or refuses this client. */
export const unavailable = (reason: string): TransportUnavailable => new TransportUnavailable({ transport, reason })

/** How a send's result is judged: `strict` counts only a stored-and-confirmed status as success. */
export interface PublishContext {
  readonly topic: string
  readonly messageId: string
  readonly size: number
  readonly limit: number
  /** Deadline of one send, for `PublishTimeout`. */
  readonly timeoutMillis: number
}

/**
 * What failed one send. A persistence status (flush or replica timeout, no
 * replica) is a retryable `PersistenceTimeout`: the broker stored the message
 * but did not confirm it durable, so a retry may store it twice — dedupe on
 * the consumer absorbs that, a lost message would not be recoverable.
 */
export const publishFailure = (error: unknown, message: PublishContext): PublishError => {
  const text = describe(error)
  if (clientTooLarge.test(text)) {
    return new MessageTooLarge({
      topic: message.topic,
      messageId: message.messageId,
      size: message.size,
      limit: message.limit
    })
  }
  const status = classify(error)
  if (status !== undefined) {
    switch (status.kind) {
      case "topicNotFound":
        return new TopicNotFound({ topic: message.topic })
      case "tooLarge":
        return new MessageTooLarge({
          topic: message.topic,
          messageId: message.messageId,
          size: message.size,
          limit: message.limit
        })
      case "persistence":
        return new PersistenceTimeout({
          topic: message.topic,
          messageId: message.messageId,
          reason: `${status.name}: ${status.meaning}`
        })
      case "timeout":
        return new PublishTimeout({
          topic: message.topic,
          messageId: message.messageId,
          timeoutMillis: message.timeoutMillis
        })
      default:
        // Core's publish errors have no permanent refusal besides the ones above; the publisher's
        // bounded retries end these with a `SendFailed` naming the status.
        return new BrokerRejected({
          topic: message.topic,
          messageId: message.messageId,
          reason: `${status.name}: ${text}`
        })
    }
  }
  if (grpcCode(error) === grpcDeadlineExceeded) {
    return new PublishTimeout({
      topic: message.topic,
      messageId: message.messageId,
      timeoutMillis: message.timeoutMillis
    })
  }
  if (isConnectionLoss(error)) return connectionLost(text)
  return new BrokerRejected({ topic: message.topic, messageId: message.messageId, reason: text })
}

/**
 * Whether a send failure is a persistence status that a relaxed (non-strict)
 * transport accepts as a success: the broker stored the message, only the
 * flush or replication confirmation is missing.
 */
export const isStoredWithoutConfirmation = (error: unknown): boolean => classify(error)?.kind === "persistence"

/** What ended or refused a subscription. */
export const subscribeFailure = (
  error: unknown,
  names: { readonly topic: string; readonly group: string }
): TopicNotFound | GroupNotFound | ConnectionLost | TransportUnavailable => {
  const found = findStatus(error)
  if (found !== undefined) {
    if (found.kind === "topicNotFound") return new TopicNotFound({ topic: names.topic })
    if (found.kind === "groupNotFound") return new GroupNotFound({ topic: names.topic, group: names.group })
    if (found.kind === "permanent") return unavailable(`${found.name}: ${describe(error)}`)
  }
  return connectionLost(describe(error))
}

/** The status of a failure or of the cause it wraps (the client wraps startup failures twice). */
export const findStatus = (error: unknown): StatusCode | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const status = classify(current)
    if (status !== undefined) return status
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

/**
 * A transactional producer asked to serve a topic for which no check-back was
 * registered. Without one, a half message left undecided by a crash could
 * never be resolved, so the producer refuses to start.
 */
export class CheckBackMissing extends Schema.TaggedError<CheckBackMissing>()("CheckBackMissing", {
  topics: Schema.Array(Schema.String)
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    if (this.topics.length === 0) return "a transactional producer needs at least one topic, each with a check-back"
    return `no check-back registered for transactional topic(s) ${this.topics.map((t) => JSON.stringify(t)).join(", ")}; register one with HalfMessage.checkBack`
  }
}
