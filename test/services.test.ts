/**
 * The services the real-broker suites depend on answer as those suites need:
 * RabbitMQ speaks AMQP 0-9-1, Redis answers commands, and PostgreSQL lets the
 * configured user in without a password and runs a query.
 */
import { connect } from "node:net"
import { Services } from "@lossless/testkit"
import { describe, expect, it } from "vitest"

// Under CI a missing service fails this file; elsewhere its tests are skipped.
const rabbitmq = await Services.require("rabbitmq")
const redis = await Services.require("redis")
const postgres = await Services.require("postgres")

const title = (check: Services.Check) =>
  check.available ? `${check.service} at ${check.url}` : `${check.service} (${check.reason})`

/** Sends `request` to the service and collects the reply until `complete` accepts it. */
const exchange = (service: Services.ServiceName, request: Buffer, complete: (reply: Buffer) => boolean) => {
  const url = new URL(Services.url(service))
  const port = Number(url.port || new URL(Services.urls[service].fallback).port)
  return new Promise<Buffer>((resolve, reject) => {
    let reply = Buffer.alloc(0)
    const socket = connect({ host: url.hostname.replace(/^\[|\]$/g, ""), port }, () => socket.write(request))
    socket.setTimeout(5000, () => socket.destroy(new Error(`${service}: incomplete reply ${reply.toString("hex")}`)))
    socket.on("data", (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk])
      if (complete(reply)) {
        socket.destroy()
        resolve(reply)
      }
    })
    socket.on("error", reject)
    socket.on("close", () => reject(new Error(`${service}: closed after ${reply.toString("hex")}`)))
  })
}

describe.skipIf(!rabbitmq.available)(title(rabbitmq), () => {
  it("opens an AMQP 0-9-1 connection with Connection.Start", async () => {
    const whole = (r: Buffer) => r.length >= 7 && r.length >= 8 + r.readUInt32BE(3)
    const frame = await exchange("rabbitmq", Buffer.from("AMQP\x00\x00\x09\x01", "latin1"), whole)
    const size = frame.readUInt32BE(3)
    expect(frame[0]).toBe(1) // method frame
    expect([frame.readUInt16BE(7), frame.readUInt16BE(9)]).toEqual([10, 10]) // connection.start
    expect([frame[11], frame[12]]).toEqual([0, 9]) // protocol version
    expect(frame[7 + size]).toBe(0xce) // frame end
  })
})

describe.skipIf(!redis.available)(title(redis), () => {
  it("answers PING and ECHO", async () => {
    const request = "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$8\r\nlossless\r\n"
    const expected = "+PONG\r\n$8\r\nlossless\r\n"
    const reply = await exchange("redis", Buffer.from(request), (r) => r.length >= expected.length || r[0] === 0x2d)
    expect(reply.toString()).toBe(expected)
  })
})

/** PostgreSQL backend messages: a type byte, then a length that counts itself. */
const messages = (buffer: Buffer) => {
  const out: Array<{ readonly type: string; readonly body: Buffer }> = []
  for (let at = 0; at + 5 <= buffer.length; ) {
    const end = at + 1 + buffer.readUInt32BE(at + 1)
    if (end > buffer.length) break
    out.push({ type: String.fromCharCode(buffer[at]!), body: buffer.subarray(at + 5, end) })
    at = end
  }
  return out
}

const frontend = (type: string, body: Buffer) => {
  const header = Buffer.alloc(5)
  header.write(type, 0, "latin1")
  header.writeUInt32BE(body.length + 4, 1)
  return Buffer.concat([header, body])
}

describe.skipIf(!postgres.available)(title(postgres), () => {
  it("lets the user in without a password and runs a query", async () => {
    const url = new URL(Services.url("postgres"))
    const user = decodeURIComponent(url.username) || "postgres"
    const database = decodeURIComponent(url.pathname.slice(1)) || user
    const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`)
    const startup = Buffer.alloc(8)
    startup.writeUInt32BE(8 + params.length, 0)
    startup.writeUInt32BE(0x0003_0000, 4) // protocol 3.0
    // The query is sent right behind the startup packet: with trust auth no round trip is needed.
    const request = Buffer.concat([startup, params, frontend("Q", Buffer.from("select 1\0"))])
    const done = (r: Buffer) =>
      messages(r).some((m) => m.type === "E" || (m.type === "R" && m.body.readUInt32BE(0) !== 0)) ||
      messages(r).filter((m) => m.type === "Z").length === 2
    const reply = messages(await exchange("postgres", request, done))

    expect(reply.find((m) => m.type === "E")?.body.toString()).toBeUndefined()
    expect(reply.find((m) => m.type === "R")?.body.readUInt32BE(0)).toBe(0) // AuthenticationOk
    const row = reply.find((m) => m.type === "D")?.body
    expect(row?.readUInt16BE(0)).toBe(1)
    expect(row?.subarray(6).toString()).toBe("1")
  })
})
