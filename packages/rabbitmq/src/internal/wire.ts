/**
 * Envelopes as AMQP messages and back. The body is the payload; the
 * headers are `Envelope.wireHeaders` (core's single mapping), so the
 * timestamp and key travel as Lossless headers on every broker. The id
 * travels in the AMQP `message-id` property (as the header only when it is
 * too long for it). On messages from plain AMQP producers, the `message-id`
 * and `timestamp` properties stand in for the headers. Lossless sets no
 * `timestamp` property itself: its ids carry the time, and RabbitMQ spends
 * about a tenth more CPU per message on a persistent publish that has both
 * `message-id` and `timestamp` than on one with either alone.
 */
import { Envelope, Headers } from "@lossless/core"
import type * as amqp from "amqplib"

/** Bookkeeping headers RabbitMQ adds when it dead-letters or redelivers; not part of an envelope. */
const brokerHeader = /^x-(death|first-death-|last-death-|delivery-count)/

/** The bytes of a payload as a Buffer, without copying them. */
export const content = (payload: Uint8Array): Buffer =>
  Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)

/** Whether an id fits AMQP's `message-id`, a short string of at most 255 bytes. */
const fitsMessageId = (id: string): boolean =>
  id !== "" && (id.length <= 85 || (id.length <= 255 && Buffer.byteLength(id) <= 255))

const idInProperty = { id: false } as const
const idInHeader = { id: true } as const

/** Properties of a persistent, mandatory publish of `envelope`. */
export const properties = (envelope: Envelope.Envelope): amqp.Options.Publish => {
  // deliveryMode 2 (persistent): written to disk by a durable queue, so a confirm means it survives a
  // restart. Mandatory: a message no queue takes is returned (and reported Unroutable) instead of dropped.
  // The id travels once: as `message-id` when it fits (read back by `headers`), else as the header.
  // The headers are read only: amqplib derives its own object from them (as its prototype) and never
  // writes to them, so the envelope's own headers go as they are when nothing is added.
  // Each shape written out whole: no property added to an object already made, once per message.
  return fitsMessageId(envelope.id)
    ? {
        persistent: true,
        mandatory: true,
        headers: Envelope.wireHeaders(envelope, idInProperty),
        messageId: envelope.id
      }
    : { persistent: true, mandatory: true, headers: Envelope.wireHeaders(envelope, idInHeader) }
}

/** The string headers of a received message, with AMQP properties standing in for missing Lossless ones. */
export const headers = (message: amqp.Message, receivedAt: number): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(message.properties.headers ?? {})) {
    if (brokerHeader.test(name)) continue
    if (typeof value === "string") out[name] = value
    else if (Buffer.isBuffer(value)) out[name] = value.toString("utf8")
  }
  const { messageId, timestamp } = message.properties
  if (out[Headers.MessageId] === undefined && typeof messageId === "string" && messageId !== "") {
    out[Headers.MessageId] = messageId
  }
  // Lossless ids carry their time (see `Envelope.toWireHeaders`); other producers' messages get the AMQP one.
  if (out[Headers.Timestamp] === undefined && Envelope.impliedTimestamp(out[Headers.MessageId]) === undefined) {
    out[Headers.Timestamp] = String(typeof timestamp === "number" ? timestamp * 1000 : receivedAt)
  }
  return out
}
