/**
 * Confirmed publishing on one shared confirm channel.
 *
 * - Pipelined: publishes go out back to back; each waits only for its own
 *   confirm. At most `confirmWindow` are unconfirmed at once; the next one
 *   waits for room, so memory stays bounded under load (backpressure).
 * - Flow control: when amqplib's write buffer is full (`publish` returned
 *   false) publishing waits for 'drain'; while the broker has blocked the
 *   connection (memory or disk alarm) it waits for 'unblocked'.
 * - Mandatory: a message no queue takes comes back as `basic.return` before
 *   its confirm. Returns are matched to publishes by (message id, exchange,
 *   routing key), oldest unconfirmed first: RabbitMQ handles a channel's
 *   publishes in order, and two publishes with the same id to the same
 *   exchange and key route alike, so which of them a return is for does not
 *   change the outcome. A returned message is `Unroutable`, never a success.
 * - Never hangs: when the channel or the connection closes, amqplib fails
 *   every unconfirmed publish at once; each becomes `ConnectionLost` (the
 *   publisher retries it), or `TopicNotFound` when the broker closed the
 *   channel because that message's exchange is gone.
 */
import { BrokerRejected, Headers, MessageTooLarge, type PublishError, Unroutable } from "@lossless/core"
import type * as amqp from "amqplib"
import { Cause, Effect, Exit, Latch, Queue, type Scope } from "effect"
import * as RabbitError from "../RabbitError.ts"
import type { ChannelHandle, ConnectionManager } from "./connection.ts"
import * as Slot from "./slot.ts"

/** One message to publish and what to name in its errors. */
export interface Target {
  readonly exchange: string
  readonly routingKey: string
  readonly content: Buffer
  readonly properties: amqp.Options.Publish
  readonly topic: string
  readonly messageId: string
}

/** Receives a publish's outcome: `undefined` once the broker confirmed it, else why not. Called once. */
export type Settle = (error: PublishError | undefined) => void

export interface Confirms {
  /**
   * Publishes one message, waiting for room in the confirm window and for
   * flow control; `settle` receives the broker's verdict.
   */
  readonly send: (target: Target, settle: Settle) => Effect.Effect<void>
  /**
   * Publishes at once when nothing has to be waited for (the common case,
   * without the cost of an Effect per message); `false` means use `send`.
   */
  readonly sendNow: (target: Target, settle: Settle) => boolean
}

interface Pending {
  /** The broker's reply when it returned the message. */
  returned: string | undefined
}

interface PublishChannel {
  readonly handle: ChannelHandle<amqp.ConfirmChannel>
  /** Closed while amqplib's write buffer is full. */
  readonly writable: Latch.Latch
  /** Unconfirmed publishes by return key, oldest first. */
  readonly unconfirmed: Map<string, Array<Pending>>
}

/** The most bytes amqplib can encode in a message's header table. */
export const headerTableLimit = 65_536

/** The encoded size of a header table of strings (AMQP field table: name, type, length, value). */
/**
 * Whether a header table surely fits the limit, from string lengths alone (a
 * UTF-16 code unit is at most 3 UTF-8 bytes); `false` means measure it.
 */
export const headerTableSurelyFits = (headers: Readonly<Record<string, unknown>> | undefined): boolean => {
  if (headers === undefined) return true
  let bound = 0
  for (const name in headers) {
    const value = headers[name]
    bound += 6 + 3 * name.length + (typeof value === "string" ? 3 * value.length : 8)
  }
  return bound <= headerTableLimit
}

export const headerTableBytes = (headers: unknown): number => {
  if (typeof headers !== "object" || headers === null) return 0
  let bytes = 0
  for (const [name, value] of Object.entries(headers)) {
    bytes += 1 + Buffer.byteLength(name) + 1 + 4 + (typeof value === "string" ? Buffer.byteLength(value) : 8)
  }
  return bytes
}

const returnKey = (messageId: string, exchange: string, routingKey: string) =>
  `${messageId}\u0000${exchange}\u0000${routingKey}`

const headerText = (value: unknown): string | undefined =>
  typeof value === "string" ? value : Buffer.isBuffer(value) ? value.toString("utf8") : undefined

export const make = (
  manager: ConnectionManager,
  onMissingExchange: (exchange: string) => void
): Effect.Effect<Confirms, never, Scope.Scope> =>
  Effect.gen(function* () {
    const window = yield* Queue.bounded<void>(manager.config.confirmWindow)

    const open = Effect.gen(function* () {
      const connection = yield* manager.connection
      const handle = yield* manager.openChannel(connection, "confirm")
      const channel: PublishChannel = { handle, writable: Latch.makeUnsafe(true), unconfirmed: new Map() }
      handle.channel.on("return", (message: amqp.Message) => {
        const id = headerText(message.properties.headers?.[Headers.MessageId]) ?? String(message.properties.messageId)
        const key = returnKey(id, message.fields.exchange, message.fields.routingKey)
        const fields = message.fields as amqp.MessageFields & { replyCode?: number; replyText?: string }
        const pending = channel.unconfirmed.get(key)?.find((p) => p.returned === undefined)
        if (pending !== undefined) pending.returned = `${fields.replyCode ?? 312} ${fields.replyText ?? "NO_ROUTE"}`
      })
      handle.channel.on("drain", () => {
        channel.writable.openUnsafe()
      })
      // Waiters for 'drain' must wake and find the channel closed.
      handle.channel.on("close", () => {
        channel.writable.openUnsafe()
      })
      return channel
    })
    const slot = Slot.make(open, (channel) => channel.handle.open)

    const forget = (channel: PublishChannel, key: string, pending: Pending) => {
      const list = channel.unconfirmed.get(key)
      if (list === undefined) return
      const index = list.indexOf(pending)
      if (index >= 0) list.splice(index, 1)
      if (list.length === 0) channel.unconfirmed.delete(key)
    }

    /** Why an unconfirmed publish failed: a nack, or its channel closing under it. */
    const failure = (channel: PublishChannel, target: Target, error: unknown): PublishError => {
      const closed =
        !channel.handle.open ||
        (error instanceof Error && error.name === "IllegalOperationError") ||
        /^channel (closed|ended)/i.test(RabbitError.describe(error))
      if (!closed) {
        return new BrokerRejected({
          topic: target.topic,
          messageId: target.messageId,
          reason: "the broker refused to store it (basic.nack)"
        })
      }
      const cause = channel.handle.error
      if (cause !== undefined) {
        const missing = RabbitError.missingExchange(cause)
        if (missing !== undefined && missing === target.exchange) onMissingExchange(missing)
        const size = RabbitError.sizeRefusal(cause)
        if (
          (missing !== undefined && missing === target.exchange) ||
          (size !== undefined && !(target.content.byteLength <= size.limit))
        ) {
          return RabbitError.publishFailure(
            cause,
            { topic: target.topic, messageId: target.messageId, size: target.content.byteLength },
            manager.scrub
          )
        }
      }
      const why = cause !== undefined ? RabbitError.describe(cause) : channel.handle.connection.closeReason
      return RabbitError.connectionLost(
        manager.scrub(`the channel closed before the broker confirmed the message${why === "" ? "" : `: ${why}`}`)
      )
    }

    /** Why `publish` threw (it writes nothing when it throws). */
    const thrown = (channel: PublishChannel, target: Target, error: unknown): PublishError => {
      if (error instanceof RangeError) {
        // amqplib encodes the header table into a 64 KiB buffer.
        return new MessageTooLarge({
          topic: target.topic,
          messageId: target.messageId,
          size: headerTableBytes(target.properties.headers) + target.content.byteLength,
          limit: headerTableLimit
        })
      }
      if (error instanceof TypeError) {
        return new BrokerRejected({
          topic: target.topic,
          messageId: target.messageId,
          reason: `cannot be encoded: ${error.message}`
        })
      }
      return failure(channel, target, error)
    }

    /** Publishes on `channel` now; the window has room for it (taken by the caller). */
    const publishNow = (channel: PublishChannel, target: Target, settle: Settle) => {
      let released = false
      const done = (error: PublishError | undefined) => {
        if (released) return
        released = true
        Queue.takeUnsafe(window)
        settle(error)
      }
      if (!channel.handle.open) return done(failure(channel, target, new Error("channel closed")))
      const key = returnKey(target.messageId, target.exchange, target.routingKey)
      const pending: Pending = { returned: undefined }
      let accepted: boolean
      try {
        accepted = channel.handle.channel.publish(
          target.exchange,
          target.routingKey,
          target.content,
          target.properties,
          (error: unknown) => {
            forget(channel, key, pending)
            if (error === null || error === undefined) {
              done(
                pending.returned === undefined
                  ? undefined
                  : new Unroutable({ topic: target.topic, messageId: target.messageId })
              )
            } else {
              done(failure(channel, target, error))
            }
          }
        )
      } catch (error) {
        // Thrown before anything was written: a closed channel, or a frame amqplib cannot encode.
        return done(thrown(channel, target, error))
      }
      const list = channel.unconfirmed.get(key)
      if (list === undefined) channel.unconfirmed.set(key, [pending])
      else list.push(pending)
      if (!accepted) channel.writable.closeUnsafe()
    }

    /** Whether a publish can go out at once: a live channel, no flow control, room in the window. */
    const sendNow = (target: Target, settle: Settle): boolean => {
      const channel = slot.peek()
      if (
        channel === undefined ||
        !channel.handle.connection.unblocked.isOpen() ||
        !channel.writable.isOpen() ||
        !Queue.offerUnsafe(window, undefined)
      ) {
        return false
      }
      publishNow(channel, target, settle)
      return true
    }

    /** Waits for room in the window, a channel and flow control, then publishes. */
    const sendLater = (target: Target, settle: Settle): Effect.Effect<void> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          yield* restore(Queue.offer(window, undefined))
          const ready = yield* restore(
            Effect.gen(function* () {
              const channel = yield* slot.get
              yield* channel.handle.connection.unblocked.await
              yield* channel.writable.await
              return channel
            })
          ).pipe(Effect.exit)
          if (Exit.isSuccess(ready)) return publishNow(ready.value, target, settle)
          Queue.takeUnsafe(window)
          if (Cause.hasInterrupts(ready.cause)) return yield* Effect.interrupt
          const error = Cause.findErrorOption(ready.cause)
          if (error._tag === "None") return yield* Effect.failCause(ready.cause as Cause.Cause<never>)
          settle(error.value)
        })
      )

    // Shutdown: give unconfirmed publishes a moment to be confirmed, then close the channel.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const channel = slot.peek()
        if (channel === undefined) return Effect.void
        return Effect.promise(() => channel.handle.channel.waitForConfirms().catch(() => undefined)).pipe(
          Effect.timeoutOption("5 seconds"),
          Effect.andThen(manager.closeChannel(channel.handle))
        )
      })
    )

    return {
      sendNow,
      send: (target, settle) =>
        Effect.suspend(() => (sendNow(target, settle) ? Effect.void : sendLater(target, settle)))
    }
  })
