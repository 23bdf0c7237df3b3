/**
 * The envelope: what crosses the wire. Bytes, string headers, and the fields
 * every Lossless message has.
 *
 * Transports carry envelopes; they never see typed payloads. `toWireHeaders`
 * and `fromWire` are the one mapping between an envelope and a broker message
 * made of a body and string headers, so every adapter agrees on where the id,
 * timestamp, key and delivery time travel.
 *
 * @since 0.1.0
 */
import { Effect, Result } from "effect"
import { MalformedEnvelope } from "./Errors.ts"
import * as Headers from "./Headers.ts"
import { envelopeSchema } from "./internal/envelopeSchema.ts"
import * as MessageId from "./MessageId.ts"

/** A message as bytes and headers. */
export interface Envelope {
  /** Assigned once by the producer; never changes across retries and redeliveries. */
  readonly id: string
  readonly topic: string
  /** Ordering/partitioning key; messages with one key keep their order where the broker orders. */
  readonly key: string | undefined
  readonly payload: Uint8Array
  /** User headers plus the reserved ones core stamps (producer id, sequence, attempt, trace). */
  readonly headers: Readonly<Record<string, string>>
  /** Creation time, epoch milliseconds. */
  readonly timestamp: number
  /** Not deliverable before this time, epoch milliseconds. */
  readonly deliverAt: number | undefined
}

/** The envelope as a schema, for errors and stores that carry envelopes. */
export const schema = envelopeSchema

/** Builds an envelope; absent optional fields become `undefined` or empty. */
export const make = (fields: {
  readonly id: string
  readonly topic: string
  readonly payload: Uint8Array
  readonly timestamp: number
  readonly key?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly deliverAt?: number | undefined
}): Envelope => ({
  id: fields.id,
  topic: fields.topic,
  key: fields.key,
  payload: fields.payload,
  headers: fields.headers ?? {},
  timestamp: fields.timestamp,
  deliverAt: fields.deliverAt
})

/** The processing attempt recorded on the envelope: 1 unless a `retryLater` raised it. */
export const attempt = (envelope: Envelope): number => {
  const raw = envelope.headers[Headers.Attempt]
  const n = raw === undefined ? Number.NaN : Number(raw)
  return Number.isInteger(n) && n >= 1 ? n : 1
}

/** A copy of the envelope with the given attempt recorded. */
export const withAttempt = (envelope: Envelope, n: number): Envelope => ({
  ...envelope,
  headers: { ...envelope.headers, [Headers.Attempt]: String(n) }
})

/** A copy of the envelope with extra headers (later names win). */
export const withHeaders = (envelope: Envelope, headers: Readonly<Record<string, string>>): Envelope => ({
  ...envelope,
  headers: { ...envelope.headers, ...headers }
})

/**
 * The time a UUIDv7 id carries, when the id is one: a message whose id and
 * timestamp agree (every id Lossless makes) needs no timestamp header.
 */
export const impliedTimestamp = (id: string | undefined): number | undefined =>
  id === undefined ? undefined : MessageId.timeOfUuidV7(id)

/**
 * The headers to put on a broker message: the envelope's headers plus the
 * reserved ones for id, timestamp, key and delivery time. The timestamp is
 * left out when the id already carries it (a UUIDv7 made at that time). An
 * adapter that carries the id in a broker field of its own (and gives it back
 * to `fromWire` as the header) passes `{ id: false }`.
 */
export const toWireHeaders = (
  envelope: Envelope,
  options?: { readonly id?: boolean | undefined }
): Record<string, string> => withStructural(envelope, options?.id !== false, stampsTimestamp(envelope))

/** Whether the wire headers carry the timestamp: only when the id does not imply it. */
const stampsTimestamp = (envelope: Envelope): boolean => impliedTimestamp(envelope.id) !== envelope.timestamp

const withStructural = (envelope: Envelope, id: boolean, timestamp: boolean): Record<string, string> => {
  const wire: Record<string, string> = { ...envelope.headers }
  if (id) wire[Headers.MessageId] = envelope.id
  if (timestamp) wire[Headers.Timestamp] = String(envelope.timestamp)
  if (envelope.key !== undefined) wire[Headers.Key] = envelope.key
  if (envelope.deliverAt !== undefined) wire[Headers.DeliverAt] = String(envelope.deliverAt)
  return wire
}

/**
 * `toWireHeaders` without the copy when there is nothing to add (the id
 * travels in a broker field, the id implies the timestamp, no key, no
 * delivery time): then it is the envelope's own headers, so it must not be
 * modified. For a publish path that hands the headers straight to a client:
 * no object per message, and a client that derives an object from them
 * (amqplib makes them the prototype of one) sees the same object for every
 * message sent with the same headers.
 */
export const wireHeaders = (
  envelope: Envelope,
  options?: { readonly id?: boolean | undefined }
): Readonly<Record<string, string>> => {
  const id = options?.id !== false
  const timestamp = stampsTimestamp(envelope)
  const headers = envelope.headers
  // A plain object only: the copy keeps own names alone, so headers that inherit any are copied.
  const proto: unknown = Object.getPrototypeOf(headers)
  const plain = proto === Object.prototype || proto === null
  return !plain || id || timestamp || envelope.key !== undefined || envelope.deliverAt !== undefined
    ? withStructural(envelope, id, timestamp)
    : headers
}

// Number("") is 0: a blank header must not become the epoch.
const numeric = (raw: string | undefined): number => (raw === undefined || raw.trim() === "" ? Number.NaN : Number(raw))

const structural = new Set([Headers.MessageId, Headers.Timestamp, Headers.Key, Headers.DeliverAt])

/**
 * Rebuilds an envelope from a broker message's body and headers, as written by
 * `toWireHeaders`. A message without a Lossless id is malformed, not silently
 * given a new id: a new id would defeat dedupe.
 */
export interface Wire {
  readonly topic: string
  readonly payload: Uint8Array
  readonly headers: Readonly<Record<string, string | undefined>>
  /** The broker's own key field, used when the header is absent. */
  readonly key?: string | undefined
}

export const fromWire = (wire: Wire): Effect.Effect<Envelope, MalformedEnvelope> => Effect.fromResult(decodeWire(wire))

/** `fromWire` as a plain result, for adapters that decode many messages without an Effect each. */
export const decodeWire = (wire: Wire): Result.Result<Envelope, MalformedEnvelope> => {
  const id = wire.headers[Headers.MessageId]
  if (id === undefined || id === "") {
    return Result.fail(new MalformedEnvelope({ topic: wire.topic, reason: `missing header ${Headers.MessageId}` }))
  }
  const stamped = wire.headers[Headers.Timestamp]
  const timestamp = stamped === undefined ? (impliedTimestamp(id) ?? Number.NaN) : numeric(stamped)
  if (!Number.isFinite(timestamp)) {
    return Result.fail(
      new MalformedEnvelope({ topic: wire.topic, reason: `missing or invalid header ${Headers.Timestamp}` })
    )
  }
  const deliverAtRaw = wire.headers[Headers.DeliverAt]
  const deliverAt = deliverAtRaw === undefined ? undefined : numeric(deliverAtRaw)
  if (deliverAt !== undefined && !Number.isFinite(deliverAt)) {
    return Result.fail(new MalformedEnvelope({ topic: wire.topic, reason: `invalid header ${Headers.DeliverAt}` }))
  }
  const headers: Record<string, string> = {}
  for (const name in wire.headers) {
    const value = wire.headers[name]
    if (value !== undefined && !structural.has(name)) headers[name] = value
  }
  return Result.succeed({
    id,
    topic: wire.topic,
    key: wire.headers[Headers.Key] ?? wire.key,
    payload: wire.payload,
    headers,
    timestamp,
    deliverAt
  })
}
