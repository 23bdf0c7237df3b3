/**
 * Messages: typed payloads with the fields every message carries.
 *
 * `encode` is the producer-side boundary: it validates the payload against
 * the topic's schema and the user's headers, assigns the id once, and yields
 * the envelope that transports carry. `decode` is the consumer-side boundary.
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"
import type * as Envelope from "./Envelope.ts"
import { type DecodeFailed, InvalidHeader, type SchemaViolation } from "./Errors.ts"
import * as Headers from "./Headers.ts"
import * as MessageId from "./MessageId.ts"
import type { Topic } from "./Topic.ts"

/** A decoded message of a topic. */
export interface Message<A> {
  readonly id: string
  readonly topic: string
  readonly key: string | undefined
  readonly payload: A
  /** All headers, user and reserved. */
  readonly headers: Readonly<Record<string, string>>
  readonly timestamp: number
  readonly deliverAt: number | undefined
}

/** Options of a single send. */
export interface SendOptions {
  /** Ordering/partitioning key. */
  readonly key?: string | undefined
  /** User headers; names starting with `lossless-` are reserved. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** A message id chosen by the caller, e.g. a business key; defaults to a new UUIDv7. */
  readonly id?: string | undefined
  /** Deliver no earlier than this time. */
  readonly deliverAt?: Date | number | undefined
  /** Deliver no earlier than this long after sending (ignored when `deliverAt` is set). */
  readonly delay?: Duration.Input | undefined
}

const noHeaders: Readonly<Record<string, string>> = Object.freeze({})

/** The first problem with user headers as a failed Effect, or `undefined` when they are fine. */
const checkHeaders = (headers: Readonly<Record<string, string>>): Effect.Effect<never, InvalidHeader> | undefined => {
  // `for...in` over own names: the same names as `Object.keys`, without an array per message.
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue
    const value = headers[name]
    if (name === "") return Effect.fail(new InvalidHeader({ name, reason: "header names must not be empty" }))
    if (Headers.isReserved(name)) {
      return Effect.fail(new InvalidHeader({ name, reason: `names starting with "${Headers.prefix}" are reserved` }))
    }
    if (typeof value !== "string") {
      return Effect.fail(new InvalidHeader({ name, reason: "header values must be strings" }))
    }
  }
  return undefined
}

/** What is wrong with a send's options, as a failed Effect, or `undefined` when nothing is. */
const checkOptions = (options: SendOptions): Effect.Effect<never, InvalidHeader> | undefined => {
  const headers = options.headers
  const checked = headers === undefined || headers === noHeaders ? undefined : checkHeaders(headers)
  if (checked !== undefined) return checked
  if (options.id !== undefined && options.id === "") {
    return Effect.fail(new InvalidHeader({ name: Headers.MessageId, reason: "a message id must not be empty" }))
  }
  return undefined
}

/** The envelope of an encoded payload, made at `now`. */
const envelopeOf = (topic: string, options: SendOptions, bytes: Uint8Array, now: number): Envelope.Envelope => {
  const deliverAt =
    options.deliverAt !== undefined
      ? typeof options.deliverAt === "number"
        ? options.deliverAt
        : options.deliverAt.getTime()
      : options.delay !== undefined
        ? now + Duration.toMillis(options.delay)
        : undefined
  return {
    id: options.id ?? MessageId.fromMillis(now),
    topic,
    key: options.key,
    payload: bytes,
    headers: options.headers ?? noHeaders,
    timestamp: now,
    deliverAt
  }
}

/**
 * Validates and encodes a payload into an envelope for `topic`. Fails with
 * `SchemaViolation` or `InvalidHeader` before anything is sent.
 */
export const encode = <A>(
  topic: Topic<A>,
  payload: A,
  options: SendOptions = {}
): Effect.Effect<Envelope.Envelope, SchemaViolation | InvalidHeader> => {
  // Written without a generator: this runs once per message sent.
  const checked = checkOptions(options)
  if (checked !== undefined) return checked
  return Effect.flatMap(topic.encode(payload), (bytes) =>
    Effect.clockWith((clock) => Effect.succeed(envelopeOf(topic.name, options, bytes, clock.currentTimeMillisUnsafe())))
  )
}

/**
 * `encode` for each message of a batch, in order, stopping at the first that
 * fails. Each message is checked, encoded and timestamped as `encode` does it,
 * with one step of the loop per message instead of an Effect pipeline each.
 */
export const encodeBatch = <A>(
  topic: Topic<A>,
  messages: ReadonlyArray<SendOptions & { readonly payload: A }>
): Effect.Effect<Array<Envelope.Envelope>, SchemaViolation | InvalidHeader> =>
  Effect.clockWith((clock) => {
    const envelopes: Array<Envelope.Envelope> = new Array(messages.length)
    let i = 0
    return Effect.as(
      Effect.whileLoop({
        while: () => i < messages.length,
        body: (): Effect.Effect<Uint8Array, SchemaViolation | InvalidHeader> => {
          const message = messages[i] as SendOptions & { readonly payload: A }
          return checkOptions(message) ?? topic.encode(message.payload)
        },
        step: (bytes: Uint8Array) => {
          envelopes[i] = envelopeOf(topic.name, messages[i] as SendOptions, bytes, clock.currentTimeMillisUnsafe())
          i++
        }
      }),
      envelopes
    )
  })

/** Decodes an envelope of `topic` into a typed message. */
export const decode = <A>(topic: Topic<A>, envelope: Envelope.Envelope): Effect.Effect<Message<A>, DecodeFailed> =>
  Effect.map(topic.decode(envelope), (payload) => ({
    id: envelope.id,
    topic: envelope.topic,
    key: envelope.key,
    payload,
    headers: envelope.headers,
    timestamp: envelope.timestamp,
    deliverAt: envelope.deliverAt
  }))
