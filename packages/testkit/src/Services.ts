/**
 * The external services real-broker suites need, where to find them, and a
 * protocol-level check that each one answers.
 *
 * A suite calls `require` at the top of its file. When the service answers,
 * the suite runs. When it does not, the suite is skipped with the reason,
 * except under CI (`CI` set), where the file fails: a missing service must
 * never turn into a green run.
 *
 * @since 0.1.0
 */
import { connect } from "node:net"
import { TransportUrl } from "@lossless/core"

export type ServiceName = "rabbitmq" | "redis" | "postgres"

/** Environment variable and local default of each service's URL. */
export const urls: Record<ServiceName, { readonly env: string; readonly fallback: string }> = {
  rabbitmq: { env: "LOSSLESS_RABBITMQ_URL", fallback: "amqp://guest:guest@127.0.0.1:5672" },
  redis: { env: "LOSSLESS_REDIS_URL", fallback: "redis://127.0.0.1:6379" },
  postgres: { env: "LOSSLESS_POSTGRES_URL", fallback: "postgres://postgres@127.0.0.1:5432/postgres" }
}

/** The URL of a service: its environment variable, or the local default. */
export const url = (service: ServiceName): string => {
  const { env, fallback } = urls[service]
  const value = process.env[env]
  return value === undefined || value === "" ? fallback : value
}

const defaultPorts: Record<ServiceName, number> = { rabbitmq: 5672, redis: 6379, postgres: 5432 }

/** What each protocol's server says first to a greeting, to tell it apart from any open port. */
const greetings: Record<ServiceName, { readonly send: Buffer; readonly answered: (reply: Buffer) => boolean }> = {
  // AMQP 0-9-1 protocol header; the server answers with a Connection.Start method frame (type 1).
  rabbitmq: { send: Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]), answered: (r) => r[0] === 1 },
  // RESP PING; "+PONG", or "-NOAUTH ..." from a server that wants a password.
  redis: { send: Buffer.from("*1\r\n$4\r\nPING\r\n"), answered: (r) => r[0] === 0x2b || r[0] === 0x2d },
  // SSLRequest; a PostgreSQL server answers with one byte, 'S' or 'N'.
  postgres: {
    send: Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]),
    answered: (r) => r[0] === 0x53 || r[0] === 0x4e
  }
}

export interface Check {
  readonly service: ServiceName
  readonly url: string
  readonly available: boolean
  readonly reason: string
}

/** Whether the service at its URL answers its own protocol within `timeoutMillis`. */
export const check = (service: ServiceName, timeoutMillis = 2000): Promise<Check> => {
  const raw = url(service)
  let host = "127.0.0.1"
  let port = defaultPorts[service]
  try {
    const parsed = new URL(raw)
    host = parsed.hostname.replace(/^\[|\]$/g, "") || host
    port = parsed.port === "" ? port : Number(parsed.port)
  } catch {
    return Promise.resolve({
      service,
      url: TransportUrl.display(raw),
      available: false,
      reason: `invalid URL ${TransportUrl.display(raw)}`
    })
  }
  const greeting = greetings[service]
  return new Promise((resolve) => {
    const done = (available: boolean, reason: string) => {
      socket.destroy()
      clearTimeout(timer)
      resolve({ service, url: TransportUrl.display(raw), available, reason })
    }
    const socket = connect({ host, port }, () => socket.write(greeting.send))
    const timer = setTimeout(
      () => done(false, `no answer from ${host}:${port} within ${timeoutMillis} ms`),
      timeoutMillis
    )
    socket.once("data", (reply: Buffer) =>
      greeting.answered(reply) ? done(true, "answered") : done(false, `${host}:${port} is not ${service}`)
    )
    socket.once("error", (error) => done(false, `${host}:${port}: ${error.message}`))
  })
}

/**
 * Checks a service for a suite. Under CI an unavailable service throws, so the
 * test file fails; elsewhere the result says to skip, with the reason.
 */
export const require = async (service: ServiceName): Promise<Check> => {
  const result = await check(service)
  if (!result.available && process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false") {
    throw new Error(
      `${service} is required under CI but unavailable (${result.reason}); start it with \`pnpm services:up\` or set ${urls[service].env}`
    )
  }
  return result
}
