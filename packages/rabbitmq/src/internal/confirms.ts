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

/**
 * Receives a publish's outcome: `undefined` once the broker confirmed it, else
 * why not, with the tag the publish was given. Called once per publish.
 */
export type Settle = (error: PublishError | undefined, tag: number) => void

export interface Confirms {
  /**
   * Publishes one message, waiting for room in the confirm window and for
   * flow control; `settle` receives the broker's verdict and `tag` (0 unless given).
   */
  readonly send: (target: Target, settle: Settle, tag?: number) => Effect.Effect<void>
  /**
   * Publishes at once when nothing has to be waited for (the common case,
   * without the cost of an Effect per message); `false` means use `send`.
   * One `settle` can serve a whole batch, told apart by `tag`.
   */
  readonly sendNow: (target: Target, settle: Settle, tag?: number) => boolean
}

/** What is kept of a publish until its confirm: what its outcome names, not its properties or body. */
interface Pending {
  readonly exchange: string
  readonly routingKey: string
  readonly topic: string
  readonly messageId: string
  readonly size: number
  readonly settle: Settle
  readonly tag: number
  /** The broker's reply when it returned the message. */
  returned: string | undefined
  /** Its outcome was given: no return can be for it any more, and its room in the window is free. */
  settled: boolean
}

interface PublishChannel {
  readonly handle: ChannelHandle<amqp.ConfirmChannel>
  /** Closed while amqplib's write buffer is full. */
  readonly writable: Latch.Latch
  /**
   * Publishes in the order they were written, from `head` on; settled ones are
   * dropped once everything before them is settled too. A plain list rather
   * than a map by return key: a return is rare, a publish is not, so a return
   * scans and a publish only appends.
   */
  readonly unconfirmed: Array<Pending>
  head: number
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
      const channel: PublishChannel = { handle, writable: Latch.makeUnsafe(true), unconfirmed: [], head: 0 }
      handle.channel.on("return", (message: amqp.Message) => {
        const id = headerText(message.properties.headers?.[Headers.MessageId]) ?? String(message.properties.messageId)
        const { exchange, routingKey } = message.fields
        const fields = message.fields as amqp.MessageFields & { replyCode?: number; replyText?: string }
        // The oldest unsettled publish of that id, exchange and key not already returned.
        const list = channel.unconfirmed
        for (let i = channel.head; i < list.length; i++) {
          const p = list[i] as Pending
          if (
            !p.settled &&
            p.returned === undefined &&
            p.messageId === id &&
            p.exchange === exchange &&
            p.routingKey === routingKey
          ) {
            p.returned = `${fields.replyCode ?? 312} ${fields.replyText ?? "NO_ROUTE"}`
            return
          }
        }
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

    /** Drops the settled publishes at the front of the list. */
    const forget = (channel: PublishChannel) => {
      const list = channel.unconfirmed
      let head = channel.head
      while (head < list.length && (list[head] as Pending).settled) head++
      if (head === list.length) {
        list.length = 0
        head = 0
      } else if (head >= 1024 && head * 2 >= list.length) {
        // Under steady load the list never empties: compact it once half of it is settled.
        list.splice(0, head)
        head = 0
      }
      channel.head = head
    }

    /** Why an unconfirmed publish failed: a nack, or its channel closing under it. */
    const failure = (channel: PublishChannel, target: Pending, error: unknown): PublishError => {
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
          (size !== undefined && !(target.size <= size.limit))
        ) {
          return RabbitError.publishFailure(
            cause,
            { topic: target.topic, messageId: target.messageId, size: target.size },
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
    const thrown = (channel: PublishChannel, target: Target, pending: Pending, error: unknown): PublishError => {
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
      return failure(channel, pending, error)
    }

    /** Gives a publish its outcome, once, and frees its room in the window. */
    const done = (channel: PublishChannel, pending: Pending, error: PublishError | undefined) => {
      if (pending.settled) return
      pending.settled = true
      forget(channel)
      Queue.takeUnsafe(window)
      pending.settle(error, pending.tag)
    }

    /** The broker's verdict on a publish: its confirm (after a return, if one came) or why there is none. */
    const confirmed = (channel: PublishChannel, pending: Pending, error: unknown) =>
      done(
        channel,
        pending,
        error !== null && error !== undefined
          ? failure(channel, pending, error)
          : pending.returned === undefined
            ? undefined
            : new Unroutable({ topic: pending.topic, messageId: pending.messageId })
      )

    /** Publishes on `channel` now; the window has room for it (taken by the caller). */
    const publishNow = (channel: PublishChannel, target: Target, settle: Settle, tag: number) => {
      const pending: Pending = {
        exchange: target.exchange,
        routingKey: target.routingKey,
        topic: target.topic,
        messageId: target.messageId,
        size: target.content.byteLength,
        settle,
        tag,
        returned: undefined,
        settled: false
      }
      if (!channel.handle.open) return done(channel, pending, failure(channel, pending, new Error("channel closed")))
      let accepted: boolean
      try {
        // The callback keeps only `pending` alive until the confirm: the target's properties and
        // headers are garbage once amqplib encoded them.
        accepted = channel.handle.channel.publish(
          target.exchange,
          target.routingKey,
          target.content,
          target.properties,
          (error: unknown) => confirmed(channel, pending, error)
        )
      } catch (error) {
        // Thrown before anything was written: a closed channel, or a frame amqplib cannot encode.
        return done(channel, pending, thrown(channel, target, pending, error))
      }
      channel.unconfirmed.push(pending)
      if (!accepted) channel.writable.closeUnsafe()
    }

    /** Whether a publish can go out at once: a live channel, no flow control, room in the window. */
    const sendNow = (target: Target, settle: Settle, tag = 0): boolean => {
      const channel = slot.peek()
      if (
        channel === undefined ||
        !channel.handle.connection.unblocked.isOpen() ||
        !channel.writable.isOpen() ||
        !Queue.offerUnsafe(window, undefined)
      ) {
        return false
      }
      publishNow(channel, target, settle, tag)
      return true
    }

    /** Waits for room in the window, a channel and flow control, then publishes. */
    const sendLater = (target: Target, settle: Settle, tag: number): Effect.Effect<void> =>
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
          if (Exit.isSuccess(ready)) return publishNow(ready.value, target, settle, tag)
          Queue.takeUnsafe(window)
          if (Cause.hasInterrupts(ready.cause)) return yield* Effect.interrupt
          const error = Cause.findErrorOption(ready.cause)
          if (error._tag === "None") return yield* Effect.failCause(ready.cause as Cause.Cause<never>)
          settle(error.value, tag)
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
      send: (target, settle, tag = 0) =>
        Effect.suspend(() => (sendNow(target, settle, tag) ? Effect.void : sendLater(target, settle, tag)))
    }
  })
