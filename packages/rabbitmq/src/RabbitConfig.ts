/**
 * Settings of the RabbitMQ transport: where the broker is, how queues are
 * declared, and the bounds that keep memory and the broker's pipeline in
 * check.
 *
 * Options come from code (`RabbitTransport.layer({ url, ... })`), from
 * `Config` (`RabbitTransport.layerConfig`), or from the query string of the
 * transport URL (`amqp://host/?queueType=quorum&confirmWindow=512`), which is
 * what `LOSSLESS_URL` can carry. Options given in code win over the URL's.
 *
 * The URL may hold a password. It is kept `Redacted` from the moment it is
 * read; errors and logs show it through `TransportUrl.display`, password masked.
 *
 * @since 0.1.0
 */
import { InvalidUrl, TransportUrl } from "@lossless/core"
import type * as amqp from "amqplib"
import { Config, Duration, Effect, Redacted, Schedule } from "effect"

/** How work and dead-letter queues are declared. */
export type QueueType =
  /** One copy on one node; the fastest, lost if that node's disk is. */
  | "classic"
  /** Replicated with Raft over the cluster; survives the loss of a minority of nodes. */
  | "quorum"

/** Geometric retry delays: `min`, then each about `factor` times the one before, up to `max`. */
export interface GeometricDelays {
  /**
   * The shortest delay; shorter requests are rounded up to it.
   * @default "10 millis"
   */
  readonly min?: Duration.Input | undefined
  /**
   * Ratio between neighbouring delays, the most a requested delay is rounded up by.
   * @default 1.25
   */
  readonly factor?: number | undefined
  /**
   * The longest delay; longer requests wait this long.
   * @default "7 days"
   */
  readonly max?: Duration.Input | undefined
}

export interface RabbitOptions {
  /**
   * `amqp://[user[:password]@]host[:port][/vhost][?options]`, or `amqps://` for TLS.
   * Any option below may also be given as a query parameter.
   */
  readonly url: string | Redacted.Redacted<string> | Redacted.Redacted<URL>
  /**
   * Type of the work and dead-letter queues (and the retry queues).
   * @default "classic"
   */
  readonly queueType?: QueueType | undefined
  /**
   * Upper bound on any subscription's prefetch, whatever the consumer asks for:
   * the unacked messages one channel may hold in memory.
   * @default 1000
   */
  readonly maxPrefetch?: number | undefined
  /**
   * Most publishes awaiting the broker's confirm at once. Further publishes
   * wait for a confirm (backpressure) instead of buffering without bound.
   * @default 1024
   */
  readonly confirmWindow?: number | undefined
  /**
   * The delays of the retry queues `retryLater` uses: a delay is rounded up
   * to the next one, so it may be late by this much but is never early.
   * Geometric settings or an explicit ascending list.
   * @default { min: "10 millis", factor: 1.25, max: "7 days" }
   */
  readonly retryDelays?: GeometricDelays | ReadonlyArray<Duration.Input> | undefined
  /**
   * How long a retry queue outlives its delay once unused, before the broker
   * deletes it (`x-expires` is this plus the delay). Retry queues are declared
   * on demand, one per (queue, delay), so idle ones must not pile up.
   * @default "30 minutes"
   */
  readonly retryQueueIdle?: Duration.Input | undefined
  /**
   * Largest payload accepted, checked before sending. Keep it at or below the
   * broker's `max_message_size` (16 MiB by default on RabbitMQ 4, 128 MiB on 3.x).
   * @default 16 MiB
   */
  readonly maxMessageBytes?: number | undefined
  /**
   * AMQP heartbeat: a connection silent for about twice this long is closed and
   * recovered, so a dead peer is found without waiting for TCP. `0` disables it.
   * @default "10 seconds"
   */
  readonly heartbeat?: Duration.Input | undefined
  /**
   * How long one connection attempt (TCP, TLS and the AMQP handshake) may take.
   * @default "5 seconds"
   */
  readonly connectTimeout?: Duration.Input | undefined
  /**
   * When to retry the first connection; when it ends, the layer fails with
   * `TransportUnavailable`.
   * @default exponential from 200 ms capped at 2 s, jittered, 5 retries
   */
  readonly connectSchedule?: Schedule.Schedule<unknown, unknown> | undefined
  /**
   * When to retry after a connection was lost. Subscriptions resume and
   * topology is re-declared once it succeeds; when it ends, every operation
   * fails with `TransportUnavailable`.
   * @default exponential from 100 ms capped at 5 s, jittered, forever
   */
  readonly reconnectSchedule?: Schedule.Schedule<unknown, unknown> | undefined
  /**
   * How long a publish or a declaration waits for a lost connection to come
   * back before failing with `ConnectionLost` (which the publisher retries).
   * Subscriptions wait as long as the reconnect schedule runs.
   * @default "5 seconds"
   */
  readonly reconnectWait?: Duration.Input | undefined
  /**
   * Put before every exchange and queue name, to keep several applications
   * apart on one virtual host. Letters, digits, `-`, `_`, `.`, `:`.
   * @default ""
   */
  readonly prefix?: string | undefined
  /**
   * The connection's name as the broker shows it (management UI, `rabbitmqctl list_connections`).
   * @default "lossless"
   */
  readonly connectionName?: string | undefined
  /**
   * Extra amqplib socket options, for `amqps://` certificates (`ca`, `cert`, `key`,
   * `servername`) or TCP keep-alive. Not read from the URL. Nagle's algorithm is
   * off unless `noDelay: false` is given here.
   * @default {}
   */
  readonly socket?: SocketOptions | undefined
}

/** amqplib's socket options (TLS and TCP); the connect timeout and client properties are set by the transport. */
export type SocketOptions = Omit<amqp.SocketOptions, "timeout" | "credentials">

/** Every setting resolved: what the transport runs with. */
export interface RabbitConfig {
  readonly url: Redacted.Redacted<URL>
  readonly queueType: QueueType
  readonly maxPrefetch: number
  readonly confirmWindow: number
  /** Retry queue delays in milliseconds, ascending. */
  readonly retryDelays: ReadonlyArray<number>
  readonly retryQueueIdle: Duration.Duration
  readonly maxMessageBytes: number
  readonly heartbeat: Duration.Duration
  readonly connectTimeout: Duration.Duration
  readonly connectSchedule: Schedule.Schedule<unknown, unknown>
  readonly reconnectSchedule: Schedule.Schedule<unknown, unknown>
  readonly reconnectWait: Duration.Duration
  readonly prefix: string
  readonly connectionName: string
  readonly socket: SocketOptions
  /** amqplib's own tuning parameters from the URL (`frameMax`, `channelMax`, `maxFrameSize`, `locale`). */
  readonly tuning: Readonly<Record<string, string>>
}

/** The environment variable `layerConfig` reads the URL from by default. */
export const envVar = "LOSSLESS_RABBITMQ_URL"

/** The URL used when `LOSSLESS_RABBITMQ_URL` is not set: a local broker's default user. */
export const defaultUrl = "amqp://guest:guest@127.0.0.1:5672"

/** The largest payload accepted unless configured. */
export const defaultMaxMessageBytes = 16 * 1024 * 1024

/** The default settings, besides the URL. */
export const defaults = {
  queueType: "classic" as QueueType,
  maxPrefetch: 1000,
  confirmWindow: 1024,
  retryDelays: { min: "10 millis", factor: 1.25, max: "7 days" } satisfies GeometricDelays,
  retryQueueIdle: Duration.minutes(30),
  maxMessageBytes: defaultMaxMessageBytes,
  heartbeat: Duration.seconds(10),
  connectTimeout: Duration.seconds(5),
  connectSchedule: Schedule.min([Schedule.exponential("200 millis", 2), Schedule.spaced("2 seconds")]).pipe(
    Schedule.jittered,
    Schedule.upTo({ times: 5 })
  ) as Schedule.Schedule<unknown, unknown>,
  reconnectSchedule: Schedule.min([Schedule.exponential("100 millis", 2), Schedule.spaced("5 seconds")]).pipe(
    Schedule.jittered
  ) as Schedule.Schedule<unknown, unknown>,
  reconnectWait: Duration.seconds(5),
  prefix: "",
  connectionName: "lossless"
} as const

// RabbitMQ's basic.qos prefetch-count is a short; a TTL and x-expires are 32-bit.
const maxQos = 65_535
const maxTtlMillis = 2 ** 32 - 1

/**
 * The delays of geometric retry buckets in whole milliseconds: each at most
 * `factor` times the one before, so rounding a delay up to its bucket adds
 * at most `factor - 1` of it (or one `min` for delays shorter than `min`).
 */
export const geometricDelays = (spec: GeometricDelays = {}): ReadonlyArray<number> => {
  const min = Math.max(1, Math.ceil(Duration.toMillis(spec.min ?? defaults.retryDelays.min)))
  const max = Math.min(maxTtlMillis, Math.ceil(Duration.toMillis(spec.max ?? defaults.retryDelays.max)))
  const factor = spec.factor ?? defaults.retryDelays.factor
  const delays: Array<number> = []
  for (let d = min; d < max; d = Math.max(d + 1, Math.floor(d * factor))) delays.push(d)
  delays.push(max)
  return delays
}

type Problem = string | undefined

const positiveInt = (name: string, value: number, max = Number.MAX_SAFE_INTEGER): Problem =>
  Number.isInteger(value) && value >= 1 && value <= max ? undefined : `${name} must be a whole number from 1 to ${max}`

const prefixPattern = /^[A-Za-z0-9_.:-]{0,64}$/

const problems = (options: Omit<RabbitOptions, "url">): Array<string> => {
  const found: Array<Problem> = []
  const { queueType, maxPrefetch, confirmWindow, maxMessageBytes, prefix, retryDelays } = options
  if (queueType !== undefined && queueType !== "classic" && queueType !== "quorum") {
    found.push(`queueType must be "classic" or "quorum", not ${JSON.stringify(queueType)}`)
  }
  if (maxPrefetch !== undefined) found.push(positiveInt("maxPrefetch", maxPrefetch, maxQos))
  if (confirmWindow !== undefined) found.push(positiveInt("confirmWindow", confirmWindow))
  if (maxMessageBytes !== undefined) found.push(positiveInt("maxMessageBytes", maxMessageBytes))
  if (prefix !== undefined && !prefixPattern.test(prefix)) {
    found.push("prefix must be at most 64 letters, digits, '-', '_', '.' or ':'")
  }
  if (retryDelays !== undefined && !Array.isArray(retryDelays)) {
    const { factor } = retryDelays as GeometricDelays
    if (factor !== undefined && !(factor > 1 && factor <= 4))
      found.push("retryDelays.factor must be above 1, at most 4")
  }
  for (const [name, value] of [
    ["heartbeat", options.heartbeat],
    ["connectTimeout", options.connectTimeout],
    ["reconnectWait", options.reconnectWait],
    ["retryQueueIdle", options.retryQueueIdle]
  ] as const) {
    if (value !== undefined && Duration.fromInput(value)._tag === "None") found.push(`${name} is not a duration`)
  }
  return found.filter((p): p is string => p !== undefined)
}

/** Options read from the URL's query string; amqplib's own tuning parameters are kept apart. */
const fromQuery = (url: URL): { readonly options: Omit<RabbitOptions, "url">; readonly problems: Array<string> } => {
  const q = url.searchParams
  const options: { -readonly [K in keyof Omit<RabbitOptions, "url">]: Omit<RabbitOptions, "url">[K] } = {}
  const bad: Array<string> = []
  const int = (name: string): number | undefined => {
    const raw = q.get(name)
    if (raw === null) return undefined
    const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
    if (Number.isNaN(n)) bad.push(`${name} must be a whole number, not ${JSON.stringify(raw)}`)
    return n
  }
  const millis = (name: string): Duration.Duration | undefined => {
    const n = int(name)
    return n === undefined || Number.isNaN(n) ? undefined : Duration.millis(n)
  }
  const queueType = q.get("queueType")
  if (queueType !== null) options.queueType = queueType as QueueType
  const maxPrefetch = int("maxPrefetch")
  if (maxPrefetch !== undefined) options.maxPrefetch = maxPrefetch
  const confirmWindow = int("confirmWindow")
  if (confirmWindow !== undefined) options.confirmWindow = confirmWindow
  const maxMessageBytes = int("maxMessageBytes")
  if (maxMessageBytes !== undefined) options.maxMessageBytes = maxMessageBytes
  // Seconds, as amqplib reads `heartbeat` from a URL.
  const heartbeat = int("heartbeat")
  if (heartbeat !== undefined && !Number.isNaN(heartbeat)) options.heartbeat = Duration.seconds(heartbeat)
  const connectTimeout = millis("connectTimeout")
  if (connectTimeout !== undefined) options.connectTimeout = connectTimeout
  const retryQueueIdle = millis("retryQueueIdle")
  if (retryQueueIdle !== undefined) options.retryQueueIdle = retryQueueIdle
  const reconnectWait = millis("reconnectWait")
  if (reconnectWait !== undefined) options.reconnectWait = reconnectWait
  const prefix = q.get("prefix")
  if (prefix !== null) options.prefix = prefix
  const connectionName = q.get("connectionName")
  if (connectionName !== null) options.connectionName = connectionName
  return { options, problems: [...bad, ...problems(options)] }
}

const tuningKeys = ["frameMax", "channelMax", "maxFrameSize", "locale"] as const

const toUrl = (url: RabbitOptions["url"]): Effect.Effect<Redacted.Redacted<URL>, InvalidUrl> => {
  if (typeof url === "string") return TransportUrl.parse(url)
  const inner: unknown = Redacted.value(url as Redacted.Redacted<unknown>)
  return inner instanceof URL
    ? Effect.succeed(url as Redacted.Redacted<URL>)
    : TransportUrl.parse(url as Redacted.Redacted<string>)
}

/**
 * Resolves options into the settings the transport runs with. A malformed
 * URL or query parameter fails with `InvalidUrl` (password masked); an
 * invalid option given in code is a defect, reported at startup.
 */
export const make = (options: RabbitOptions): Effect.Effect<RabbitConfig, InvalidUrl> =>
  Effect.gen(function* () {
    const url = yield* toUrl(options.url)
    const raw = Redacted.value(url)
    if (raw.protocol !== "amqp:" && raw.protocol !== "amqps:") {
      return yield* new InvalidUrl({
        url: TransportUrl.display(raw),
        reason: `expected an amqp:// or amqps:// URL, not ${raw.protocol}//`
      })
    }
    if (raw.hostname === "") {
      return yield* new InvalidUrl({ url: TransportUrl.display(raw), reason: "the URL has no host" })
    }
    const query = fromQuery(raw)
    if (query.problems.length > 0) {
      return yield* new InvalidUrl({ url: TransportUrl.display(raw), reason: query.problems.join("; ") })
    }
    const { url: _, ...explicit } = options
    const invalid = problems(explicit)
    if (invalid.length > 0) return yield* Effect.die(new Error(`invalid RabbitMQ options: ${invalid.join("; ")}`))
    const merged = { ...query.options, ...definedOnly(explicit) }
    const tuning: Record<string, string> = {}
    for (const key of tuningKeys) {
      const value = raw.searchParams.get(key)
      if (value !== null) tuning[key] = value
    }
    const delays = merged.retryDelays
    return {
      url,
      queueType: merged.queueType ?? defaults.queueType,
      maxPrefetch: merged.maxPrefetch ?? defaults.maxPrefetch,
      confirmWindow: merged.confirmWindow ?? defaults.confirmWindow,
      retryDelays: Array.isArray(delays)
        ? [...new Set(delays.map((d) => Math.max(1, Math.ceil(Duration.toMillis(d)))))].sort((a, b) => a - b)
        : geometricDelays(delays as GeometricDelays | undefined),
      retryQueueIdle: duration(merged.retryQueueIdle, defaults.retryQueueIdle),
      maxMessageBytes: merged.maxMessageBytes ?? defaults.maxMessageBytes,
      heartbeat: duration(merged.heartbeat, defaults.heartbeat),
      connectTimeout: duration(merged.connectTimeout, defaults.connectTimeout),
      connectSchedule: merged.connectSchedule ?? defaults.connectSchedule,
      reconnectSchedule: merged.reconnectSchedule ?? defaults.reconnectSchedule,
      reconnectWait: duration(merged.reconnectWait, defaults.reconnectWait),
      prefix: merged.prefix ?? defaults.prefix,
      connectionName: merged.connectionName ?? defaults.connectionName,
      socket: merged.socket ?? {},
      tuning
    }
  })

const duration = (input: Duration.Input | undefined, fallback: Duration.Duration): Duration.Duration =>
  input === undefined ? fallback : Duration.fromInputUnsafe(input)

const definedOnly = <A extends object>(options: A): Partial<A> =>
  Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<A>

/** Options from the URL alone (its query string), as the `amqp://` plugin builds them. */
export const fromUrl = (url: Redacted.Redacted<URL>): Effect.Effect<RabbitConfig, InvalidUrl> => make({ url })

/**
 * The URL from `LOSSLESS_RABBITMQ_URL` (default `amqp://guest:guest@127.0.0.1:5672`),
 * read as `Redacted`; every other option from its query string.
 */
export const fromEnv: Config.Config<RabbitOptions> = Config.all({
  url: Config.Redacted(envVar).pipe(Config.withDefault(Redacted.make(defaultUrl)))
})

/** The URL as it may appear in logs and errors: password masked. */
export const display = (config: RabbitConfig): string => TransportUrl.display(Redacted.value(config.url))

/** The URL's password, to scrub it from any text before it is shown. */
export const password = (config: RabbitConfig): string | undefined => {
  const raw = Redacted.value(config.url).password
  return raw === "" ? undefined : decodeURIComponent(raw)
}
