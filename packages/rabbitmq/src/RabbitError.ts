/**
 * RabbitMQ failures as Lossless errors: the AMQP 0-9-1 reply codes as a
 * table, and the few functions that turn a broker reply or an amqplib error
 * into the core error a caller can act on.
 *
 * The broker reports most failures by closing the channel (or the whole
 * connection) with a reply code; amqplib surfaces them as an `Error` with a
 * numeric `code`. A few failures have no code: a negative confirm (`nack`), a
 * channel or connection that closed under an operation, a socket error.
 *
 * | broker says                                    | Lossless error                       |
 * | ---------------------------------------------- | ------------------------------------ |
 * | 312 NO_ROUTE (a `basic.return` of a mandatory) | `Unroutable`                         |
 * | 404 NOT_FOUND (no exchange)                    | `TopicNotFound`                      |
 * | 404 NOT_FOUND (no queue)                       | `GroupNotFound`                      |
 * | 311 CONTENT_TOO_LARGE, 406 "message size …"    | `MessageTooLarge`                    |
 * | `basic.nack`                                   | `BrokerRejected` (retryable)         |
 * | 320 CONNECTION_FORCED, channel/socket closed   | `ConnectionLost` (retryable)         |
 * | 403 ACCESS_REFUSED, 530 NOT_ALLOWED, connect … | `TransportUnavailable` (retryable)   |
 * | a settlement the broker did not take           | `SettlementFailed` (broker redelivers) |
 *
 * Messages never carry the connection URL's password: amqplib's errors do
 * not include it, and `scrub` removes it from any text that might.
 *
 * @since 0.1.0
 */
import {
  BrokerRejected,
  ConnectionLost,
  GroupNotFound,
  MessageTooLarge,
  type PublishError,
  TopicNotFound,
  TransportUnavailable,
  Unroutable
} from "@lossless/core"

/** The transport's name in errors and logs. */
export const transport = "rabbitmq"

/** Whether a reply code closes the whole connection or only the channel it came on. */
export type Scope = "none" | "channel" | "connection"

/** One AMQP 0-9-1 reply code as RabbitMQ uses it. */
export interface ReplyCode {
  readonly code: number
  readonly name: string
  /** What the code closes when the broker sends it as a close reason. */
  readonly scope: Scope
  /** Whether repeating the same operation later may succeed. */
  readonly retryable: boolean
  readonly meaning: string
}

const entry = (code: number, name: string, scope: Scope, retryable: boolean, meaning: string): ReplyCode => ({
  code,
  name,
  scope,
  retryable,
  meaning
})

/** The reply codes of AMQP 0-9-1 (RabbitMQ's meaning of each). */
export const replyCodes: ReadonlyMap<number, ReplyCode> = new Map(
  [
    entry(200, "REPLY_SUCCESS", "none", false, "a clean close"),
    entry(311, "CONTENT_TOO_LARGE", "channel", false, "the message is larger than the broker accepts"),
    entry(312, "NO_ROUTE", "none", false, "a mandatory message matched no queue (returned)"),
    entry(313, "NO_CONSUMERS", "none", true, "an immediate message had no consumer (returned)"),
    entry(320, "CONNECTION_FORCED", "connection", true, "an operator or a broker shutdown closed the connection"),
    entry(402, "INVALID_PATH", "connection", false, "the virtual host does not exist"),
    entry(403, "ACCESS_REFUSED", "channel", false, "the user may not access this resource"),
    entry(404, "NOT_FOUND", "channel", false, "the exchange or queue does not exist"),
    entry(405, "RESOURCE_LOCKED", "channel", true, "an exclusive queue is used by another connection"),
    entry(406, "PRECONDITION_FAILED", "channel", false, "arguments differ from the existing entity, or a bad ack"),
    entry(501, "FRAME_ERROR", "connection", true, "a malformed frame"),
    entry(502, "SYNTAX_ERROR", "connection", true, "a frame with illegal values"),
    entry(503, "COMMAND_INVALID", "connection", true, "a method not allowed in this state"),
    entry(504, "CHANNEL_ERROR", "connection", true, "a channel used incorrectly"),
    entry(505, "UNEXPECTED_FRAME", "connection", true, "a frame out of order"),
    entry(506, "RESOURCE_ERROR", "connection", true, "the broker ran out of a resource"),
    entry(530, "NOT_ALLOWED", "connection", false, "the operation is not allowed (e.g. a vhost limit)"),
    entry(540, "NOT_IMPLEMENTED", "connection", false, "the broker does not implement the method"),
    entry(541, "INTERNAL_ERROR", "connection", true, "the broker failed internally")
  ].map((c) => [c.code, c])
)

/** The reply code of an amqplib error, when the broker sent one. */
export const replyCode = (error: unknown): number | undefined => {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined
  return typeof code === "number" ? code : undefined
}

/** The table entry for an amqplib error, when it carries a known reply code. */
export const classify = (error: unknown): ReplyCode | undefined => {
  const code = replyCode(error)
  return code === undefined ? undefined : replyCodes.get(code)
}

/** Replaces every occurrence of `secret` in `text` (a password that may sit in a URL or a message). */
export const scrub = (text: string, secret: string | undefined): string =>
  secret === undefined || secret === "" ? text : text.split(secret).join("***")

/** The text of any failure, without a stack. */
export const describe = (error: unknown): string => {
  if (error instanceof Error) return error.message === "" ? error.name : error.message
  return String(error)
}

/** Whether a failure means the channel or connection is gone (rather than the operation being refused). */
export const isConnectionLoss = (error: unknown): boolean => {
  const entry = classify(error)
  if (entry !== undefined) return entry.scope === "connection"
  const name = error instanceof Error ? error.name : ""
  const text = describe(error)
  return (
    name === "IllegalOperationError" ||
    /channel closed|channel ended|connection closed|connection closing|socket|ECONN|EPIPE|ETIMEDOUT|heartbeat/i.test(
      text
    )
  )
}

/**
 * Whether the broker refused the connection itself (wrong credentials 403,
 * unknown virtual host 402/530): retrying with the same settings cannot help.
 */
export const isRefusedLogin = (error: unknown): boolean => {
  const code = replyCode(error) ?? Number(/Handshake terminated by server: (\d+)/.exec(describe(error))?.[1])
  return code === 402 || code === 403 || code === 530
}

/** "no exchange 'x'" in a broker's NOT_FOUND text: the exchange that was missing. */
export const missingExchange = (error: unknown): string | undefined =>
  replyCode(error) === 404 ? /no exchange '([^']*)'/.exec(describe(error))?.[1] : undefined

/** "no queue 'x'" in a broker's NOT_FOUND text: the queue that was missing. */
export const missingQueue = (error: unknown): string | undefined =>
  replyCode(error) === 404 ? /no queue '([^']*)'/.exec(describe(error))?.[1] : undefined

/**
 * The size and limit in the broker's refusal of an oversized message
 * (311, or 406 "message size N is larger than configured max size M").
 */
export const sizeRefusal = (error: unknown): { readonly size: number; readonly limit: number } | undefined => {
  const code = replyCode(error)
  if (code !== 311 && code !== 406) return undefined
  const match = /message size (\d+) is larger than (?:configured )?max size (\d+)/i.exec(describe(error))
  if (match !== null) return { size: Number(match[1]), limit: Number(match[2]) }
  return code === 311 ? { size: Number.NaN, limit: Number.NaN } : undefined
}

/** What an operation that needs the broker fails with when it cannot have it. */
export type RabbitFailure = ConnectionLost | TransportUnavailable

/** Cleans a failure's text before it is shown (removes the password). */
export type Clean = (text: string) => string

const asIs: Clean = (text) => text

/** A lost channel or connection, with a reason a person can act on. */
export const connectionLost = (reason: string): ConnectionLost => new ConnectionLost({ transport, reason })

/** The broker cannot be reached or refused the operation for a reason outside the message. */
export const unavailable = (reason: string): TransportUnavailable => new TransportUnavailable({ transport, reason })

/** What failed one publish, from the broker's close reason or amqplib's error. */
export const publishFailure = (
  error: unknown,
  message: { readonly topic: string; readonly messageId: string; readonly size: number },
  clean: Clean = asIs
): PublishError => {
  const code = replyCode(error)
  const text = clean(describe(error))
  if (missingExchange(error) !== undefined) return new TopicNotFound({ topic: message.topic })
  const size = sizeRefusal(error)
  if (size !== undefined) {
    return new MessageTooLarge({
      topic: message.topic,
      messageId: message.messageId,
      size: Number.isNaN(size.size) ? message.size : size.size,
      limit: size.limit
    })
  }
  if (code === 312) return new Unroutable({ topic: message.topic, messageId: message.messageId })
  if (isConnectionLoss(error)) return connectionLost(text)
  if (code === 403 || code === 530 || code === 402) return unavailable(text)
  return new BrokerRejected({ topic: message.topic, messageId: message.messageId, reason: text })
}

/** What ended a subscription: a missing queue or exchange, or a lost connection. */
export const subscribeFailure = (
  error: unknown,
  names: { readonly topic: string; readonly group: string; readonly exchange: string },
  clean: Clean = asIs
): TopicNotFound | GroupNotFound | ConnectionLost | TransportUnavailable => {
  if (missingExchange(error) === names.exchange) return new TopicNotFound({ topic: names.topic })
  if (replyCode(error) === 404) return new GroupNotFound({ topic: names.topic, group: names.group })
  if (isConnectionLoss(error)) return connectionLost(clean(describe(error)))
  return unavailable(clean(describe(error)))
}

/** What failed a declaration: a lost connection (retry) or a refusal (conflicting arguments, access). */
export const topologyFailure = (error: unknown, clean: Clean = asIs): RabbitFailure => {
  const text = clean(describe(error))
  if (isConnectionLoss(error)) return connectionLost(text)
  const code = classify(error)
  return unavailable(code === undefined ? text : `${text} (${code.meaning})`)
}
