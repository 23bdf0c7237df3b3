/**
 * Helpers for the emulator's tests: a kafkajs client pointed at an emulator, unique names, a
 * polling wait, and a minimal raw protocol client for requests kafkajs does not let a test shape.
 */
import { randomUUID } from "node:crypto"
import * as net from "node:net"
import { Kafka, type KafkaConfig, logLevel } from "kafkajs"
import type { KafkaEmulator } from "../../src/kafka/index.ts"
import { Reader } from "../../src/kafka/protocol/Reader.ts"
import { Writer } from "../../src/kafka/protocol/Writer.ts"

process.env.KAFKAJS_NO_PARTITIONER_WARNING = "1"

export const unique = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`

export const kafkaFor = (emulator: KafkaEmulator, config: Partial<KafkaConfig> = {}): Kafka =>
  new Kafka({
    clientId: unique("test"),
    brokers: [...emulator.brokers],
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 50, retries: 8 },
    ...config
  })

/** Polls `condition` every 20 ms until it holds, failing after `timeoutMs`. */
export const waitFor = async (condition: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A bare Kafka protocol connection: one request at a time, header v1, response body as a Reader. */
export interface RawClient {
  readonly request: (apiKey: number, version: number, body: (w: Writer) => unknown) => Promise<Reader>
  readonly close: () => void
}

export const rawClient = async (emulator: KafkaEmulator): Promise<RawClient> => {
  const [host, port] = emulator.brokers[0]!.split(":") as [string, string]
  const socket = net.connect(Number(port), host)
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject))
  let buffered = Buffer.alloc(0)
  const waiting: Array<{ readonly frame: (frame: Buffer) => void; readonly closed: () => void }> = []
  socket.on("close", () => {
    for (const w of waiting.splice(0)) w.closed()
  })
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
      const size = buffered.readInt32BE(0)
      waiting.shift()?.frame(buffered.subarray(4, 4 + size))
      buffered = buffered.subarray(4 + size)
    }
  })
  let correlationId = 0
  return {
    request: (apiKey, version, body) =>
      new Promise<Reader>((resolve, reject) => {
        const w = new Writer()
        w.int16(apiKey).int16(version).int32(++correlationId).nullableString("raw-client")
        body(w)
        const payload = w.toBuffer()
        const size = Buffer.alloc(4)
        size.writeInt32BE(payload.length)
        const expected = correlationId
        if (socket.destroyed) return reject(new Error("connection closed"))
        waiting.push({
          frame: (frame) => {
            const r = new Reader(frame)
            const got = r.int32()
            if (got !== expected) reject(new Error(`correlation id ${got}, expected ${expected}`))
            else resolve(r)
          },
          closed: () => reject(new Error("connection closed"))
        })
        socket.write(Buffer.concat([size, payload]))
      }),
    close: () => socket.destroy()
  }
}
