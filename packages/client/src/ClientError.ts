/**
 * The errors a client's promises reject with.
 *
 * They are core's own error classes (real `Error` subclasses), re-exported,
 * so `err instanceof SendFailed` works and every error says whether retrying
 * may succeed (`retryable`). A rejection is always the error itself, never a
 * wrapper around it. `ClientClosed` is the one error of this package.
 *
 * ```ts
 * try {
 *   await client.send("orders", order)
 * } catch (err) {
 *   if (err instanceof SendFailed && err.failures[0]?.error instanceof Unroutable) {
 *     // nobody consumes "orders": declare a group first
 *   }
 * }
 * ```
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

export {
  BrokerRejected,
  ConnectionLost,
  DecodeFailed,
  GroupNotFound,
  InvalidHeader,
  InvalidName,
  InvalidUrl,
  isRetryable,
  type LosslessError,
  MalformedEnvelope,
  MessageTooLarge,
  PermanentFailure,
  PersistenceTimeout,
  type PublishError,
  PublishTimeout,
  SchemaViolation,
  SendFailed,
  type SendFailure,
  SettlementFailed,
  StoreUnavailable,
  TopicNotFound,
  TransportUnavailable,
  UnknownScheme,
  Unroutable
} from "@lossless/core"

/** An operation started after `close()` was called. Permanent: the client takes no more work. */
export class ClientClosed extends Schema.TaggedError<ClientClosed>()("ClientClosed", {
  operation: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `cannot ${this.operation}: the client is closed`
  }
}

/** The URL's scheme needs an adapter package that is not installed (and no plugin for it was passed). */
export class AdapterMissing extends Schema.TaggedError<AdapterMissing>()("AdapterMissing", {
  scheme: Schema.String,
  package: Schema.String
}) {
  get retryable(): boolean {
    return false
  }
  override get message(): string {
    return `${this.scheme}:// URLs need ${this.package}: install it (npm install ${this.package}) or pass its plugin in \`plugins\``
  }
}
