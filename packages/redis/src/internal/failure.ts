/**
 * Turns ioredis failures into `StoreUnavailable` reasons a person can act on.
 */
import { StoreUnavailable } from "@lossless/core"
import { Effect } from "effect"
import type { Redis } from "ioredis"

/** A client with either reply mapping: the scripts reply with integers, the same in both. */
export type AnyRedis = Redis | Redis<"resp3">

// A command that gave up waiting for a connection says only that; the
// connection error behind it (refused, DNS, auth) is the useful part.
const lastConnectionError = new WeakMap<AnyRedis, string>()

/** Records a client's latest connection error, reported with later failures. */
export const rememberConnectionError = (client: AnyRedis, error: unknown): void => {
  lastConnectionError.set(client, error instanceof Error ? error.message : String(error))
}

/** Forgets it once the client is connected again. */
export const forgetConnectionError = (client: AnyRedis): void => {
  lastConnectionError.delete(client)
}

const endpoint = (client: AnyRedis): string => {
  const { host, port, path } = client.options
  return typeof path === "string" && path !== "" ? path : `${host ?? "localhost"}:${port ?? 6379}`
}

const scrub = (client: AnyRedis, text: string): string => {
  const password = client.options.password
  return typeof password === "string" && password !== "" ? text.split(password).join("***") : text
}

/** Why a command failed, naming the server but never its password. */
export const describeFailure = (client: AnyRedis, error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error)
  const name = error instanceof Error ? error.name : ""
  let reason: string
  let connection = false
  if (name === "MaxRetriesPerRequestError") {
    reason = "no connection"
    connection = true
  } else if (message === "Command timed out") {
    reason = `no reply within ${client.options.commandTimeout ?? "?"} ms`
    connection = true
  } else if (message === "Connection is closed.") {
    reason = "the connection is closed"
    connection = true
  } else if (message.startsWith("Stream isn't writeable")) {
    reason = "not connected"
    connection = true
  } else {
    reason = message
  }
  const last = connection ? lastConnectionError.get(client) : undefined
  return scrub(client, `${endpoint(client)}: ${reason}${last === undefined ? "" : ` (${last})`}`)
}

/**
 * Runs one command, mapping any failure (connection refused, timeout, an
 * error reply) to `StoreUnavailable`.
 */
export const attempt = <A>(
  client: AnyRedis,
  store: string,
  run: () => Promise<A>
): Effect.Effect<A, StoreUnavailable> =>
  Effect.tryPromise({
    try: run,
    catch: (error) => new StoreUnavailable({ store, reason: describeFailure(client, error) })
  })
