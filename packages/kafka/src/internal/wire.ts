/**
 * Envelopes as Kafka records and back. The value is the payload; the record
 * key is the envelope's key (so the default partitioner keeps a key on one
 * partition); the headers are `Envelope.toWireHeaders` (core's single
 * mapping), so the id, timestamp and key travel as Lossless headers as on
 * every broker. The record timestamp is the envelope's.
 */
import { Envelope } from "@lossless/core"
import type { IHeaders, KafkaMessage, Message } from "kafkajs"

/** The bytes of a payload as a Buffer, without copying them. */
export const buffer = (payload: Uint8Array): Buffer =>
  Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)

/** The record for an envelope, with extra headers (adapter bookkeeping) on top. */
export const record = (envelope: Envelope.Envelope, extra: Readonly<Record<string, string>> = {}): Message => ({
  key: envelope.key ?? null,
  value: buffer(envelope.payload),
  headers: { ...Envelope.toWireHeaders(envelope), ...extra },
  timestamp: String(envelope.timestamp)
})

const recordOverhead = 70
const headerOverhead = 10

/**
 * An upper estimate of the bytes a record takes in a batch (varint lengths,
 * attributes, deltas), to keep batches under the broker's limit.
 */
export const size = (message: Message): number => {
  let total = recordOverhead + (message.value === null ? 0 : Buffer.byteLength(message.value as Buffer | string))
  if (message.key !== null && message.key !== undefined) total += Buffer.byteLength(message.key)
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    total += headerOverhead + Buffer.byteLength(name) + (typeof value === "string" ? Buffer.byteLength(value) : 0)
  }
  return total
}

/**
 * The headers of a received record as strings (repeated headers: the last
 * one), without `omit` (adapter bookkeeping the envelope does not carry).
 */
export const headers = (raw: IHeaders | undefined, omit?: string): Record<string, string> => {
  const out: Record<string, string> = {}
  if (raw === undefined) return out
  // Once per message: an indexed loop over the names, no entry arrays.
  const names = Object.keys(raw)
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string
    if (name === omit) continue
    const value = raw[name]
    const last = Array.isArray(value) ? value[value.length - 1] : value
    if (last === undefined) continue
    out[name] = typeof last === "string" ? last : last.toString("utf8")
  }
  return out
}

/** The payload of a received record (an empty value for a null one). */
export const payload = (message: KafkaMessage): Uint8Array => message.value ?? Buffer.alloc(0)
