/**
 * One mapping between an envelope and a RocketMQ message: the body is the
 * payload, the reserved and user headers travel as user properties, the
 * Lossless id (and the key, if any) as message keys so operators can look a
 * message up by them, the key as the message group on FIFO topics, and
 * `deliverAt` as the delivery timestamp on other topics.
 */
import { Envelope } from "@lossless/core"
import type { MessageOptions, MessageView } from "rocketmq-client-nodejs"

export interface Shape {
  /** Send with the key as message group (FIFO topics). */
  readonly fifo: boolean
  /** The longest delay the broker accepts, milliseconds. */
  readonly maxDelayMillis: number
}

/** The body as a Buffer sharing the envelope's bytes (envelopes are immutable). */
export const body = (payload: Uint8Array): Buffer =>
  Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)

/** The client message for an envelope. */
export const message = (
  envelope: Envelope.Envelope,
  shape: Shape,
  now: number,
  topic = envelope.topic
): MessageOptions => {
  const properties = new Map(Object.entries(Envelope.toWireHeaders(envelope)))
  const keys = envelope.key === undefined || envelope.key === envelope.id ? [envelope.id] : [envelope.id, envelope.key]
  const options: MessageOptions = { topic, body: body(envelope.payload), keys, properties }
  if (shape.fifo) {
    // Keyless envelopes promise no order: their own id spreads them over the queues.
    options.messageGroup = envelope.key ?? envelope.id
  } else if (envelope.deliverAt !== undefined && envelope.deliverAt > now) {
    options.deliveryTimestamp = new Date(Math.min(envelope.deliverAt, now + shape.maxDelayMillis))
  }
  return options
}

/** The wire headers of a received message. */
export const headers = (view: MessageView): Record<string, string> => Object.fromEntries(view.properties)

/** The properties' share of a message's size, roughly as the broker counts it. */
export const propertyBytes = (options: MessageOptions): number => {
  let n = 0
  for (const [k, v] of options.properties ?? []) n += Buffer.byteLength(k) + Buffer.byteLength(v) + 2
  return n
}
