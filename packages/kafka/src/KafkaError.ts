/**
 * Kafka failures as Lossless errors: the broker error codes that matter to
 * a producer and a consumer group as a table, and the functions that turn a
 * kafkajs error into the core error a caller can act on.
 *
 * | broker or client says                                      | Lossless error                     |
 * | ---------------------------------------------------------- | ---------------------------------- |
 * | 10 MESSAGE_TOO_LARGE, 18 RECORD_LIST_TOO_LARGE             | `MessageTooLarge`                  |
 * | 3 UNKNOWN_TOPIC_OR_PARTITION (auto-creation off)           | `TopicNotFound`                    |
 * | 87 INVALID_RECORD, 29 TOPIC_AUTHORIZATION_FAILED, …        | `Rejected` (permanent)             |
 * | 7 REQUEST_TIMED_OUT, 20 NOT_ENOUGH_REPLICAS_AFTER_APPEND   | `PersistenceTimeout` (retryable)   |
 * | 6 NOT_LEADER_OR_FOLLOWER, 19, 15/16 coordinator, 45/59 …   | `BrokerRejected` (retryable)       |
 * | connection refused or closed, no broker reachable          | `ConnectionLost` (retryable)       |
 * | client-side request timeout                                | `PublishTimeout` (retryable)       |
 *
 * kafkajs wraps the last failure of its own retries in
 * `KafkaJSNumberOfRetriesExceeded`; the cause is what gets classified.
 *
 * @since 0.1.0
 */
import {
  BrokerRejected,
  ConnectionLost,
  MessageTooLarge,
  PersistenceTimeout,
  type PublishError,
  PublishTimeout,
  TopicNotFound,
  TransportUnavailable
} from "@lossless/core"

/** The transport's name in errors and logs. */
export const transport = "kafka"

/** One Kafka protocol error code as a producer or group member meets it. */
export interface ErrorCode {
  readonly code: number
  readonly name: string
  /** Whether repeating the same request later may succeed. */
  readonly retryable: boolean
  readonly meaning: string
}

const entry = (code: number, name: string, retryable: boolean, meaning: string): ErrorCode => ({
  code,
  name,
  retryable,
  meaning
})

/** The error codes a producer and a consumer group meet, with Kafka's own retriability. */
export const errorCodes: ReadonlyMap<number, ErrorCode> = new Map(
  [
    entry(2, "CORRUPT_MESSAGE", true, "the record failed its CRC check (damaged in transit)"),
    entry(3, "UNKNOWN_TOPIC_OR_PARTITION", true, "the topic or partition does not exist (yet)"),
    entry(5, "LEADER_NOT_AVAILABLE", true, "a leader election is in progress"),
    entry(6, "NOT_LEADER_OR_FOLLOWER", true, "the partition's leader moved to another broker"),
    entry(7, "REQUEST_TIMED_OUT", true, "the in-sync replicas did not acknowledge in time"),
    entry(10, "MESSAGE_TOO_LARGE", false, "a record batch is larger than message.max.bytes"),
    entry(14, "COORDINATOR_LOAD_IN_PROGRESS", true, "the group coordinator is loading"),
    entry(15, "COORDINATOR_NOT_AVAILABLE", true, "the group coordinator is not available"),
    entry(16, "NOT_COORDINATOR", true, "the group coordinator moved"),
    entry(18, "RECORD_LIST_TOO_LARGE", false, "the request is larger than the broker accepts"),
    entry(19, "NOT_ENOUGH_REPLICAS", true, "fewer in-sync replicas than min.insync.replicas; nothing was written"),
    entry(20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true, "written to the leader, but too few replicas acknowledged"),
    entry(21, "INVALID_REQUIRED_ACKS", false, "an acks value the broker does not accept"),
    entry(22, "ILLEGAL_GENERATION", true, "the group rebalanced; the member's generation is stale"),
    entry(25, "UNKNOWN_MEMBER_ID", true, "the coordinator no longer knows the member"),
    entry(27, "REBALANCE_IN_PROGRESS", true, "the group is rebalancing"),
    entry(29, "TOPIC_AUTHORIZATION_FAILED", false, "the client may not use the topic"),
    entry(30, "GROUP_AUTHORIZATION_FAILED", false, "the client may not use the group"),
    entry(36, "TOPIC_ALREADY_EXISTS", false, "the topic exists"),
    entry(45, "OUT_OF_ORDER_SEQUENCE_NUMBER", true, "the producer's sequence broke; a new producer id fixes it"),
    entry(47, "INVALID_PRODUCER_EPOCH", true, "the producer was fenced; a new producer id fixes it"),
    entry(59, "UNKNOWN_PRODUCER_ID", true, "the broker forgot the producer id; a new one fixes it"),
    entry(87, "INVALID_RECORD", false, "the broker refuses the record (for example no key on a compacted topic)")
  ].map((e) => [e.code, e])
)

/**
 * The broker refused the message for a reason no retry can change (an invalid
 * record, a missing authorization). A `BrokerRejected` that says it is not
 * retryable, so core's publisher stops at once.
 */
export class Rejected extends BrokerRejected {
  override get retryable(): boolean {
    return false
  }
}

/** The error kafkajs failed with after its own retries: the last cause, not the wrapper. */
export const rootCause = (error: unknown): unknown => {
  let current = error
  for (let depth = 0; depth < 5; depth++) {
    if (typeof current !== "object" || current === null) return current
    const name = (current as { name?: unknown }).name
    const cause = (current as { cause?: unknown }).cause
    if (name === "KafkaJSNumberOfRetriesExceeded" && cause !== undefined && cause !== current) current = cause
    else return current
  }
  return current
}

/** The broker's error code of a (possibly wrapped) kafkajs protocol error. */
export const errorCode = (error: unknown): number | undefined => {
  const root = rootCause(error)
  const code = typeof root === "object" && root !== null ? (root as { code?: unknown }).code : undefined
  if (typeof code === "number" && errorCodes.has(code)) return code
  const type = typeof root === "object" && root !== null ? (root as { type?: unknown }).type : undefined
  if (type === "NOT_LEADER_FOR_PARTITION") return 6
  if (type === "GROUP_COORDINATOR_NOT_AVAILABLE") return 15
  if (type === "NOT_COORDINATOR_FOR_GROUP") return 16
  for (const entry of errorCodes.values()) if (entry.name === type) return entry.code
  return typeof code === "number" ? code : undefined
}

/** The text of any failure, without a stack. */
export const describe = (error: unknown): string => {
  const root = rootCause(error)
  if (root instanceof Error) return root.message === "" ? root.name : root.message
  return String(root)
}

const connectionNames = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSNoBrokerAvailableError",
  "KafkaJSBrokerNotFound",
  "KafkaJSMetadataNotLoaded",
  "KafkaJSTopicMetadataNotLoaded"
])

/** Whether the failure means the connection to the cluster is gone, rather than a refusal of the request. */
export const isConnectionLoss = (error: unknown): boolean => {
  const root = rootCause(error)
  const name = root instanceof Error ? root.name : ""
  return (
    connectionNames.has(name) ||
    /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|socket|Connection (closed|error|timeout)|Closed connection/i.test(
      describe(root)
    )
  )
}

/** Whether the client gave up waiting for the response (the request may have been applied). */
export const isClientTimeout = (error: unknown): boolean => {
  const root = rootCause(error)
  return root instanceof Error && root.name === "KafkaJSRequestTimeoutError"
}

/** Whether the broker refused a batch for its size. */
export const isTooLarge = (error: unknown): boolean => {
  const code = errorCode(error)
  return code === 10 || code === 18
}

/** A lost connection, with a reason a person can act on. */
export const connectionLost = (reason: string): ConnectionLost => new ConnectionLost({ transport, reason })

/** The cluster cannot be reached or refused the operation for a reason outside the message. */
export const unavailable = (reason: string): TransportUnavailable => new TransportUnavailable({ transport, reason })

/** What failed one publish, from the broker's error code or kafkajs's error. */
export const publishFailure = (
  error: unknown,
  message: {
    readonly topic: string
    readonly messageId: string
    readonly size: number
    readonly limit: number
    readonly timeoutMillis: number
  }
): PublishError => {
  const code = errorCode(error)
  const text = describe(error)
  const { topic, messageId } = message
  if (code === 10 || code === 18)
    return new MessageTooLarge({ topic, messageId, size: message.size, limit: message.limit })
  if (code === 3) return new TopicNotFound({ topic })
  if (code === 7 || code === 20) return new PersistenceTimeout({ topic, messageId, reason: text })
  const known = code === undefined ? undefined : errorCodes.get(code)
  if (known !== undefined) {
    const reason = `${known.name}: ${known.meaning}`
    return known.retryable
      ? new BrokerRejected({ topic, messageId, reason })
      : new Rejected({ topic, messageId, reason })
  }
  if (isClientTimeout(error)) return new PublishTimeout({ topic, messageId, timeoutMillis: message.timeoutMillis })
  if (isConnectionLoss(error)) return connectionLost(text)
  // An error code outside the table: retry only what kafkajs itself calls retriable.
  const root = rootCause(error)
  const retriable = typeof root === "object" && root !== null && (root as { retriable?: unknown }).retriable === true
  return retriable
    ? new BrokerRejected({ topic, messageId, reason: text })
    : new Rejected({ topic, messageId, reason: text })
}

/** What ended a subscription or failed a declaration: a lost connection (retry) or a refusal. */
export const operationFailure = (error: unknown): ConnectionLost | TransportUnavailable => {
  const text = describe(error)
  if (isConnectionLoss(error) || isClientTimeout(error)) return connectionLost(text)
  const code = errorCode(error)
  const known = code === undefined ? undefined : errorCodes.get(code)
  if (known?.retryable === true) return connectionLost(`${known.name}: ${text}`)
  return unavailable(known === undefined ? text : `${known.name}: ${text}`)
}
