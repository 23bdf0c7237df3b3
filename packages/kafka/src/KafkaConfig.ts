/**
 * Settings of the Kafka transport: where the brokers are, how topics are
 * created, and the timings of the producer and the consumer groups.
 *
 * Options come from code (`KafkaTransport.layer({ url, ... })`), from
 * `Config` (`KafkaTransport.layerConfig`), or from the query string of the
 * transport URL (`kafka://broker-1:9092?partitions=12&replicationFactor=3`),
 * which is what `LOSSLESS_URL` can carry. Options given in code win over the URL's.
 *
 * Several bootstrap brokers are written `kafka://b1:9092,b2:9092` when the
 * URL is given as a string to this module, or `kafka://b1:9092?brokers=b2:9092,b3:9092`
 * anywhere (a URL parser rejects commas among ports). `kafkas://` connects with TLS.
 * A user and password in the URL authenticate with SASL (`?sasl=scram-sha-512`,
 * default `plain`); they are kept `Redacted`.
 *
 * @since 0.1.0
 */
import { InvalidUrl, TransportUrl } from "@lossless/core"
import { Config, Duration, Effect, Redacted } from "effect"

export type SaslMechanism = "plain" | "scram-sha-256" | "scram-sha-512"

/** How much of kafkajs's own logging reaches the Effect logger. */
export type LogLevel = "nothing" | "error" | "warn" | "info" | "debug"

export interface KafkaOptions {
  /**
   * `kafka://[user:password@]host[:port][,host[:port]...][?options]`, or `kafkas://` for TLS.
   * Any option below may also be given as a query parameter.
   */
  readonly url: string | Redacted.Redacted<string> | Redacted.Redacted<URL>
  /**
   * The client id brokers see in their logs and quotas.
   * @default "lossless"
   */
  readonly clientId?: string | undefined
  /**
   * Partitions of the topics `ensureTopology` creates (work, retry and dead-letter topics).
   * Ordering holds per key, and a group has at most this many active members per topic.
   * @default 3
   */
  readonly partitions?: number | undefined
  /**
   * Replication factor of created topics; `undefined` leaves it to the broker's
   * `default.replication.factor`. Use 3 or more in production.
   */
  readonly replicationFactor?: number | undefined
  /**
   * `min.insync.replicas` of created topics; `undefined` leaves the broker's
   * default. With `acks=all`, a write is confirmed only once this many replicas
   * have it: above 1, below the replication factor.
   */
  readonly minInsyncReplicas?: number | undefined
  /**
   * Largest message accepted, checked before sending. Keep it at or below the
   * broker's `message.max.bytes` (1 MiB by default). It also bounds one produce
   * batch, so a batch the broker would refuse as a whole is never built.
   * @default 1_000_000
   */
  readonly maxMessageBytes?: number | undefined
  /**
   * Upper bound on any subscription's prefetch, whatever the consumer asks for.
   * @default 1000
   */
  readonly maxPrefetch?: number | undefined
  /**
   * How often kafkajs retries one produce request (leader moved, timeout, dropped
   * connection) with the same producer sequence numbers, so the broker drops
   * the duplicates. Further retries are core's, on its `Schedule`.
   * @default 3
   */
  readonly sendRetries?: number | undefined
  /**
   * How long the broker may take to replicate a write to the in-sync replicas (`acks=all`).
   * @default "30 seconds"
   */
  readonly ackTimeout?: Duration.Input | undefined
  /**
   * How long a request may wait for its response before the client gives it up.
   * @default "30 seconds"
   */
  readonly requestTimeout?: Duration.Input | undefined
  /**
   * How long one TCP connection attempt may take.
   * @default "3 seconds"
   */
  readonly connectTimeout?: Duration.Input | undefined
  /**
   * A group member that sends no heartbeat for this long is removed and its
   * partitions go to the others.
   * @default "30 seconds"
   */
  readonly sessionTimeout?: Duration.Input | undefined
  /**
   * How often members heartbeat; also how soon a member notices a rebalance.
   * @default "3 seconds"
   */
  readonly heartbeatInterval?: Duration.Input | undefined
  /**
   * How long a fetch waits on the broker for new messages before it returns empty.
   * Also bounds how late a paused partition is fetched again after it resumes.
   * @default "500 millis"
   */
  readonly maxWaitTime?: Duration.Input | undefined
  /**
   * kafkajs's own log lines at this level and above go to the Effect logger.
   * @default "error"
   */
  readonly logLevel?: LogLevel | undefined
  /** TLS: `true`, or Node TLS options (certificates). Set by a `kafkas://` URL. */
  readonly ssl?: boolean | Readonly<Record<string, unknown>> | undefined
  /**
   * SASL mechanism for the URL's user and password.
   * @default "plain"
   */
  readonly sasl?: SaslMechanism | undefined
}

/** Every setting resolved: what the transport runs with. */
export interface KafkaConfig {
  readonly url: Redacted.Redacted<URL>
  readonly brokers: ReadonlyArray<string>
  readonly clientId: string
  readonly partitions: number
  readonly replicationFactor: number | undefined
  readonly minInsyncReplicas: number | undefined
  readonly maxMessageBytes: number
  readonly maxPrefetch: number
  readonly sendRetries: number
  readonly ackTimeout: Duration.Duration
  readonly requestTimeout: Duration.Duration
  readonly connectTimeout: Duration.Duration
  readonly sessionTimeout: Duration.Duration
  readonly heartbeatInterval: Duration.Duration
  readonly maxWaitTime: Duration.Duration
  readonly logLevel: LogLevel
  readonly ssl: boolean | Readonly<Record<string, unknown>>
  readonly sasl:
    | {
        readonly mechanism: SaslMechanism
        readonly username: string
        readonly password: Redacted.Redacted<string>
      }
    | undefined
}

/** The environment variable `layerConfig` reads the URL from by default. */
export const envVar = "LOSSLESS_KAFKA_URL"

/** The URL used when `LOSSLESS_KAFKA_URL` is not set: a local broker. */
export const defaultUrl = "kafka://127.0.0.1:9092"

/** The largest message accepted unless configured (just under Kafka's default `message.max.bytes`). */
export const defaultMaxMessageBytes = 1_000_000

export const defaults = {
  clientId: "lossless",
  partitions: 3,
  maxMessageBytes: defaultMaxMessageBytes,
  maxPrefetch: 1000,
  sendRetries: 3,
  ackTimeout: Duration.seconds(30),
  requestTimeout: Duration.seconds(30),
  connectTimeout: Duration.seconds(3),
  sessionTimeout: Duration.seconds(30),
  heartbeatInterval: Duration.seconds(3),
  maxWaitTime: Duration.millis(500),
  logLevel: "error" as LogLevel
} as const

const logLevels: ReadonlyArray<LogLevel> = ["nothing", "error", "warn", "info", "debug"]
const mechanisms: ReadonlyArray<SaslMechanism> = ["plain", "scram-sha-256", "scram-sha-512"]

type Explicit = Omit<KafkaOptions, "url">

const positiveInt = (name: string, value: number, max = Number.MAX_SAFE_INTEGER): string | undefined =>
  Number.isInteger(value) && value >= 1 && value <= max ? undefined : `${name} must be a whole number from 1 to ${max}`

const problems = (options: Explicit): Array<string> => {
  const found: Array<string | undefined> = []
  if (options.partitions !== undefined) found.push(positiveInt("partitions", options.partitions, 1_000_000))
  if (options.replicationFactor !== undefined) {
    found.push(positiveInt("replicationFactor", options.replicationFactor, 1000))
  }
  if (options.minInsyncReplicas !== undefined) {
    found.push(positiveInt("minInsyncReplicas", options.minInsyncReplicas, 1000))
    if (options.replicationFactor !== undefined && options.minInsyncReplicas > options.replicationFactor) {
      found.push("minInsyncReplicas must not exceed replicationFactor")
    }
  }
  if (options.maxMessageBytes !== undefined) found.push(positiveInt("maxMessageBytes", options.maxMessageBytes))
  if (options.maxPrefetch !== undefined) found.push(positiveInt("maxPrefetch", options.maxPrefetch))
  if (options.sendRetries !== undefined) found.push(positiveInt("sendRetries", options.sendRetries, 100))
  if (options.logLevel !== undefined && !logLevels.includes(options.logLevel)) {
    found.push(`logLevel must be one of ${logLevels.join(", ")}`)
  }
  if (options.sasl !== undefined && !mechanisms.includes(options.sasl)) {
    found.push(`sasl must be one of ${mechanisms.join(", ")}`)
  }
  for (const [name, value] of [
    ["ackTimeout", options.ackTimeout],
    ["requestTimeout", options.requestTimeout],
    ["connectTimeout", options.connectTimeout],
    ["sessionTimeout", options.sessionTimeout],
    ["heartbeatInterval", options.heartbeatInterval],
    ["maxWaitTime", options.maxWaitTime]
  ] as const) {
    if (value !== undefined && Duration.fromInput(value)._tag === "None") found.push(`${name} is not a duration`)
  }
  return found.filter((p): p is string => p !== undefined)
}

/** Options read from the URL's query string (durations in milliseconds). */
const fromQuery = (query: URLSearchParams): { readonly options: Explicit; readonly problems: Array<string> } => {
  const options: { -readonly [K in keyof Explicit]: Explicit[K] } = {}
  const bad: Array<string> = []
  const int = (name: string): number | undefined => {
    const raw = query.get(name)
    if (raw === null) return undefined
    if (!/^\d+$/.test(raw)) {
      bad.push(`${name} must be a whole number, not ${JSON.stringify(raw)}`)
      return undefined
    }
    return Number(raw)
  }
  const millis = (name: string): Duration.Duration | undefined => {
    const n = int(name)
    return n === undefined ? undefined : Duration.millis(n)
  }
  options.partitions = int("partitions")
  options.replicationFactor = int("replicationFactor")
  options.minInsyncReplicas = int("minInsyncReplicas")
  options.maxMessageBytes = int("maxMessageBytes")
  options.maxPrefetch = int("maxPrefetch")
  options.sendRetries = int("sendRetries")
  options.ackTimeout = millis("ackTimeout")
  options.requestTimeout = millis("requestTimeout")
  options.connectTimeout = millis("connectTimeout")
  options.sessionTimeout = millis("sessionTimeout")
  options.heartbeatInterval = millis("heartbeatInterval")
  options.maxWaitTime = millis("maxWaitTime")
  const clientId = query.get("clientId")
  if (clientId !== null) options.clientId = clientId
  const logLevel = query.get("logLevel")
  if (logLevel !== null) options.logLevel = logLevel as LogLevel
  const sasl = query.get("sasl")
  if (sasl !== null) options.sasl = sasl as SaslMechanism
  const ssl = query.get("ssl")
  if (ssl !== null) {
    if (ssl === "true" || ssl === "false") options.ssl = ssl === "true"
    else bad.push(`ssl must be true or false, not ${JSON.stringify(ssl)}`)
  }
  const explicit = definedOnly(options)
  return { options: explicit, problems: [...bad, ...problems(explicit)] }
}

const hostPort = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/

/** `host[:port]` with the default port 9092. */
const broker = (raw: string): string | undefined => {
  const match = hostPort.exec(raw.trim())
  if (match === null) return undefined
  const port = match[2] === undefined ? 9092 : Number(match[2])
  return port >= 1 && port <= 65_535 ? `${match[1]}:${port}` : undefined
}

/**
 * Splits a URL string whose authority lists several brokers (`kafka://a:1,b:2/?x`),
 * which the WHATWG parser rejects, into a parseable URL for the first and the rest.
 */
const splitAuthority = (text: string): { readonly single: string; readonly extra: ReadonlyArray<string> } => {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(text.trim())
  if (match === null) return { single: text, extra: [] }
  const [, scheme, authority = "", rest = ""] = match
  const at = authority.lastIndexOf("@")
  const userinfo = at === -1 ? "" : authority.slice(0, at + 1)
  const hosts = (at === -1 ? authority : authority.slice(at + 1)).split(",")
  if (hosts.length < 2) return { single: text, extra: [] }
  return { single: `${scheme}${userinfo}${hosts[0]}${rest}`, extra: hosts.slice(1) }
}

const toUrl = (
  url: KafkaOptions["url"]
): Effect.Effect<{ readonly url: Redacted.Redacted<URL>; readonly extra: ReadonlyArray<string> }, InvalidUrl> => {
  const inner: unknown = Redacted.isRedacted(url) ? Redacted.value(url as Redacted.Redacted<unknown>) : url
  if (inner instanceof URL) return Effect.succeed({ url: url as Redacted.Redacted<URL>, extra: [] })
  const { single, extra } = splitAuthority(inner as string)
  return Effect.map(TransportUrl.parse(Redacted.make(single)), (parsed) => ({ url: parsed, extra }))
}

/**
 * Resolves options into the settings the transport runs with. A malformed
 * URL or query parameter fails with `InvalidUrl` (password masked); an
 * invalid option given in code is a defect, reported at startup.
 */
export const make = (options: KafkaOptions): Effect.Effect<KafkaConfig, InvalidUrl> =>
  Effect.gen(function* () {
    const { url, extra } = yield* toUrl(options.url)
    const raw = Redacted.value(url)
    const shown = TransportUrl.display(raw)
    if (raw.protocol !== "kafka:" && raw.protocol !== "kafkas:") {
      return yield* new InvalidUrl({
        url: shown,
        reason: `expected a kafka:// or kafkas:// URL, not ${raw.protocol}//`
      })
    }
    const listed = [raw.host, ...extra, ...(raw.searchParams.get("brokers")?.split(",") ?? [])].filter((h) => h !== "")
    if (listed.length === 0) return yield* new InvalidUrl({ url: shown, reason: "the URL names no broker" })
    const brokers: Array<string> = []
    for (const entry of listed) {
      const parsed = broker(entry)
      if (parsed === undefined) return yield* new InvalidUrl({ url: shown, reason: `invalid broker ${entry}` })
      brokers.push(parsed)
    }
    const query = fromQuery(raw.searchParams)
    if (query.problems.length > 0) return yield* new InvalidUrl({ url: shown, reason: query.problems.join("; ") })
    const { url: _, ...explicit } = options
    const invalid = problems(explicit)
    if (invalid.length > 0) return yield* Effect.die(new Error(`invalid Kafka options: ${invalid.join("; ")}`))
    const merged: Explicit = { ...query.options, ...definedOnly(explicit) }
    const username = decodeURIComponent(raw.username)
    const password = decodeURIComponent(raw.password)
    return {
      url,
      brokers: [...new Set(brokers)],
      clientId: merged.clientId ?? defaults.clientId,
      partitions: merged.partitions ?? defaults.partitions,
      replicationFactor: merged.replicationFactor,
      minInsyncReplicas: merged.minInsyncReplicas,
      maxMessageBytes: merged.maxMessageBytes ?? defaults.maxMessageBytes,
      maxPrefetch: merged.maxPrefetch ?? defaults.maxPrefetch,
      sendRetries: merged.sendRetries ?? defaults.sendRetries,
      ackTimeout: duration(merged.ackTimeout, defaults.ackTimeout),
      requestTimeout: duration(merged.requestTimeout, defaults.requestTimeout),
      connectTimeout: duration(merged.connectTimeout, defaults.connectTimeout),
      sessionTimeout: duration(merged.sessionTimeout, defaults.sessionTimeout),
      heartbeatInterval: duration(merged.heartbeatInterval, defaults.heartbeatInterval),
      maxWaitTime: duration(merged.maxWaitTime, defaults.maxWaitTime),
      logLevel: merged.logLevel ?? defaults.logLevel,
      ssl: merged.ssl ?? raw.protocol === "kafkas:",
      sasl:
        username === "" && password === ""
          ? undefined
          : { mechanism: merged.sasl ?? "plain", username, password: Redacted.make(password) }
    }
  })

const duration = (input: Duration.Input | undefined, fallback: Duration.Duration): Duration.Duration =>
  input === undefined ? fallback : Duration.fromInputUnsafe(input)

const definedOnly = <A extends object>(options: A): A =>
  Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as A

/** Options from the URL alone (its query string), as the `kafka://` plugin builds them. */
export const fromUrl = (url: Redacted.Redacted<URL>): Effect.Effect<KafkaConfig, InvalidUrl> => make({ url })

/**
 * The URL from `LOSSLESS_KAFKA_URL` (default `kafka://127.0.0.1:9092`), read
 * as `Redacted`; every other option from its query string.
 */
export const fromEnv: Config.Config<KafkaOptions> = Config.all({
  url: Config.Redacted(envVar).pipe(Config.withDefault(Redacted.make(defaultUrl)))
})

/** The URL as it may appear in logs and errors: password masked. */
export const display = (config: KafkaConfig): string => TransportUrl.display(Redacted.value(config.url))
