/**
 * The TCP side: size-prefixed frames, request header v1 (api key, api version, correlation id,
 * client id), response header v0 (correlation id). Requests of one connection are handled one at
 * a time, as a Kafka broker does, so responses leave in request order; a request that waits
 * (a long-poll Fetch, a JoinGroup) holds back the rest of its connection.
 *
 * @since 0.1.0
 */
import * as net from "node:net"
import type { AnyApi } from "./apis/Api.ts"
import { encodeApiVersions } from "./apis/ApiVersions.ts"
import { API_TABLE } from "./apis/index.ts"
import type { Broker } from "./Broker.ts"
import type { Faults } from "./Faults.ts"
import { ApiKey } from "./protocol/ApiKey.ts"
import { ErrorCode } from "./protocol/ErrorCode.ts"
import { ProtocolDecodeError, Reader } from "./protocol/Reader.ts"
import { Writer } from "./protocol/Writer.ts"

/** Kafka's default socket.request.max.bytes: larger frames close the connection. */
const MAX_REQUEST_BYTES = 104_857_600

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref())

class Connection {
  private readonly socket: net.Socket
  private readonly server: KafkaServer
  private chunks: Array<Buffer> = []
  private buffered = 0
  /** Size of the frame being received, -1 until its size prefix has arrived. */
  private expected = -1
  private readonly queue: Array<Buffer> = []
  private busy = false

  constructor(socket: net.Socket, server: KafkaServer) {
    this.socket = socket
    this.server = server
    socket.setNoDelay(true)
    socket.on("data", (chunk: Buffer) => this.receive(chunk))
    socket.on("error", () => socket.destroy())
  }

  get closed(): boolean {
    return this.socket.destroyed
  }

  destroy(): void {
    this.queue.length = 0
    this.socket.destroy()
  }

  private receive(chunk: Buffer): void {
    // Chunks are kept apart until a whole frame is there, so a large request is copied once.
    this.chunks.push(chunk)
    this.buffered += chunk.length
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < 4) break
        if (this.chunks[0]!.length < 4) this.chunks = [Buffer.concat(this.chunks, this.buffered)]
        this.expected = this.chunks[0]!.readInt32BE(0)
        if (this.expected < 0 || this.expected > MAX_REQUEST_BYTES) {
          this.destroy()
          return
        }
      }
      if (this.buffered < 4 + this.expected) break
      const data = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered)
      this.queue.push(data.subarray(4, 4 + this.expected))
      const rest = data.subarray(4 + this.expected)
      this.chunks = rest.length > 0 ? [rest] : []
      this.buffered = rest.length
      this.expected = -1
    }
    void this.pump()
  }

  private async pump(): Promise<void> {
    if (this.busy) return
    this.busy = true
    try {
      while (this.queue.length > 0 && !this.closed) {
        await this.process(this.queue.shift()!)
      }
    } catch (error) {
      // A malformed request: Kafka closes the connection. Anything else is an emulator defect,
      // reported so it is not mistaken for a client problem.
      if (!(error instanceof ProtocolDecodeError)) console.error("kafka emulator: request failed", error)
      this.destroy()
    } finally {
      this.busy = false
    }
  }

  private async process(frame: Buffer): Promise<void> {
    const reader = new Reader(frame)
    const apiKey = reader.int16()
    const version = reader.int16()
    const correlationId = reader.int32()
    const clientId = reader.nullableString() ?? ""
    const api: AnyApi | undefined = API_TABLE.get(apiKey)
    if (api === undefined) return this.destroy()
    if (version < api.minVersion || version > api.maxVersion) {
      if (apiKey !== ApiKey.ApiVersions) return this.destroy()
      // Per the protocol, an unknown ApiVersions version is answered in the v0 layout with
      // UNSUPPORTED_VERSION, so the client can retry with a version the broker lists.
      const body = new Writer()
      const all = [...API_TABLE.values()]
      encodeApiVersions(
        body,
        {
          errorCode: ErrorCode.UNSUPPORTED_VERSION,
          apis: all.map((a) => ({ key: a.key, minVersion: a.minVersion, maxVersion: a.maxVersion }))
        },
        0
      )
      return this.send(correlationId, body)
    }
    const request = api.decode(reader, version)
    const faults = this.server.faults
    const drop = faults.drops.take(apiKey)
    if (drop !== undefined && !drop.applied) return this.destroy()
    const failure = faults.failures.take(apiKey)
    const response =
      failure !== undefined
        ? api.fail(request, failure, version)
        : await api.handle({ broker: this.server.broker, version, clientId }, request)
    if (drop !== undefined) return this.destroy()
    const instead = api.withoutResponse?.(request, response)
    if (instead === "close") return this.destroy()
    if (instead === "silent") return
    const delay = faults.delays.take(apiKey)
    if (delay !== undefined) await sleep(delay)
    if (this.closed) return
    const body = new Writer()
    api.encode(body, response, version)
    this.send(correlationId, body)
  }

  private send(correlationId: number, body: Writer): void {
    if (this.closed) return
    const chunks = body.toChunks()
    const header = Buffer.allocUnsafe(8)
    header.writeInt32BE(4 + body.length, 0)
    header.writeInt32BE(correlationId, 4)
    this.socket.cork()
    this.socket.write(header)
    for (const chunk of chunks) this.socket.write(chunk)
    this.socket.uncork()
  }
}

export class KafkaServer {
  readonly broker: Broker
  readonly faults: Faults
  private readonly connections = new Set<Connection>()
  private readonly server: net.Server

  constructor(broker: Broker, faults: Faults) {
    this.broker = broker
    this.faults = faults
    this.server = net.createServer((socket) => {
      const connection = new Connection(socket, this)
      this.connections.add(connection)
      socket.on("close", () => this.connections.delete(connection))
    })
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject)
      this.server.listen(port, host, () => {
        this.server.off("error", reject)
        const address = this.server.address() as net.AddressInfo
        resolve({ host, port: address.port })
      })
    })
  }

  dropConnections(): void {
    for (const connection of this.connections) connection.destroy()
    this.connections.clear()
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      this.dropConnections()
    })
  }
}
