/**
 * Settings of the RocketMQ transport: where the proxy is, how strictly a
 * send's status is judged, and the durations and bounds of consumption.
 *
 * Options come from code (`RocketTransport.layer({ url, ... })`), from
 * `Config` (`RocketTransport.layerConfig`), or from the query string of the
 * transport URL (`rocketmq://proxy:8081?strict=false&fifo=true`), which is
 * what `LOSSLESS_URL` can carry. Options given in code win over the URL's.
 *
 * Credentials (an access key and secret for the proxy's ACL) ride in the
 * URL's user and password. The URL is kept `Redacted`; errors and logs show
 * it through `TransportUrl.display`, secret masked.
 *
 * @since 0.1.0
 */
import { InvalidUrl, TransportUrl } from "@lossless/core"
import { Config, Duration, Effect, Redacted, Schedule } from "effect"

export interface RocketOptions {
  /**
   * `rocketmq://[accessKey:secretKey@]host[:port][?options]`, the address of
   * a RocketMQ 5 proxy's gRPC endpoint. Any option below (besides the
   * schedules) may also be given as a query parameter; durations in
   * milliseconds.
   */
  readonly url: string | Redacted.Redacted<string> | Redacted.Redacted<URL>
  /**
   * The RocketMQ namespace topics and groups live in.
   * @default ""
   */
  readonly namespace?: string | undefined
  /**
   * Judge sends strictly: only a status that says the message is stored and
   * flushed (and replicated, with synchronous replication) is a success. A
   * flush or replica timeout, or no replica available, is then a retryable
   * `PersistenceTimeout`. With `false` those statuses count as a success:
   * the broker did store the message, on one node's page cache.
   * @default true
   */
  readonly strict?: boolean | undefined
  /**
   * The topics are FIFO topics (and the groups FIFO groups): every envelope
   * is sent with its key as the message group, so one key's messages are
   * delivered in order even across competing consumers. FIFO messages cannot
   * carry a delivery time, so delayed delivery is then left to core.
   * @default false
   */
  readonly fifo?: boolean | undefined
  /**
   * How long a received message stays invisible to other consumers. The
   * transport extends it while the handler runs, so it only bounds how soon
   * a crashed consumer's messages come back. RocketMQ proxies accept at least
   * 10 seconds by default (`minInvisibleTimeMillsForRecv`).
   * @default "30 seconds"
   */
  readonly invisibleDuration?: Duration.Input | undefined
  /**
   * How long one receive waits on the proxy for a message (long polling).
   * Proxies accept 5 to 20 seconds by default.
   * @default "15 seconds"
   */
  readonly longPolling?: Duration.Input | undefined
  /**
   * Deadline of every request to the proxy but a receive. At least one second.
   * @default "3 seconds"
   */
  readonly requestTimeout?: Duration.Input | undefined
  /**
   * How long starting a client (route lookup, the proxy's first settings)
   * may take before it counts as a failed connection attempt.
   * @default "10 seconds"
   */
  readonly connectTimeout?: Duration.Input | undefined
  /**
   * Most messages asked for in one receive (the proxy's limit is 32).
   * @default 32
   */
  readonly receiveBatch?: number | undefined
  /**
   * Upper bound on any subscription's prefetch, whatever the consumer asks for.
   * @default 1024
   */
  readonly maxPrefetch?: number | undefined
  /**
   * Most sends of one `publish` call in flight at once.
   * @default 256
   */
  readonly publishConcurrency?: number | undefined
  /**
   * Largest body accepted, checked before sending. Keep it at or below the
   * broker's `maxMessageSize` (4 MiB by default).
   * @default 4 MiB
   */
  readonly maxMessageBytes?: number | undefined
  /**
   * The longest delay the broker accepts for a delivery time
   * (`timerMaxDelaySec`, 3 days by default). A later `deliverAt` is sent with
   * this delay; the consumer runtime hands it back until it is due.
   * @default "72 hours"
   */
  readonly maxDelay?: Duration.Input | undefined
  /**
   * The longest invisible duration the proxy accepts (`maxInvisibleTimeMills`),
   * and so the longest `retryLater` delay made in one step; a longer delay is
   * shortened to it.
   * @default "12 hours"
   */
  readonly maxInvisibleDuration?: Duration.Input | undefined
  /**
   * Creates topics on the broker, for `ensureTopology`: an operator call you
   * supply (`mqadmin updateTopic`, the dashboard's API), because the gRPC
   * protocol has no way to create a topic and the proxy does not create them
   * on use. It receives the topics and the groups' dead-letter topics and
   * must be idempotent. Without it, topics must exist beforehand: a missing
   * one fails `ensureTopology` (when a group consumes it) or the publish
   * (`TopicNotFound`). Not read from the URL.
   * @default none
   */
  readonly createTopics?: ((topics: ReadonlyArray<string>) => Effect.Effect<void, unknown>) | undefined
  /**
   * Connect to the proxy over TLS.
   * @default false
   */
  readonly ssl?: boolean | undefined
  /**
   * When to retry starting a client (route lookup, first settings); when it
   * ends, the operation fails with `TransportUnavailable`.
   * @default exponential from 200 ms capped at 2 s, jittered, 5 retries
   */
  readonly connectSchedule?: Schedule.Schedule<unknown, unknown> | undefined
  /**
   * When to retry a receive that failed for a lost connection; when it ends,
   * the subscription fails with `ConnectionLost` (which the consumer runtime
   * resubscribes after).
   * @default exponential from 100 ms capped at 5 s, jittered, 20 retries
   */
  readonly reconnectSchedule?: Schedule.Schedule<unknown, unknown> | undefined
}

/** Every setting resolved: what the transport runs with. */
export interface RocketConfig {
  readonly url: Redacted.Redacted<URL>
  /** `host:port` of the proxy, as the client's `endpoints` option takes it. */
  readonly endpoints: string
  readonly namespace: string
  readonly strict: boolean
  readonly fifo: boolean
  readonly invisibleDuration: Duration.Duration
  readonly longPolling: Duration.Duration
  readonly requestTimeout: Duration.Duration
  readonly connectTimeout: Duration.Duration
  readonly receiveBatch: number
  readonly maxPrefetch: number
  readonly publishConcurrency: number
  readonly maxMessageBytes: number
  readonly maxDelay: Duration.Duration
  readonly maxInvisibleDuration: Duration.Duration
  readonly ssl: boolean
  readonly createTopics: ((topics: ReadonlyArray<string>) => Effect.Effect<void, unknown>) | undefined
  readonly connectSchedule: Schedule.Schedule<unknown, unknown>
  readonly reconnectSchedule: Schedule.Schedule<unknown, unknown>
}

/** The environment variable `layerConfig` reads the URL from by default. */
export const envVar = "LOSSLESS_ROCKETMQ_URL"

/** The URL used when `LOSSLESS_ROCKETMQ_URL` is not set: a local proxy's gRPC port. */
export const defaultUrl = "rocketmq://127.0.0.1:8081"

/** The proxy's default gRPC port. */
export const defaultPort = 8081

/** The largest body accepted unless configured: the broker's default `maxMessageSize`. */
export const defaultMaxMessageBytes = 4 * 1024 * 1024

/** The default settings, besides the URL. */
export const defaults = {
  namespace: "",
  strict: true,
  fifo: false,
  invisibleDuration: Duration.seconds(30),
  longPolling: Duration.seconds(15),
  requestTimeout: Duration.seconds(3),
  connectTimeout: Duration.seconds(10),
  receiveBatch: 32,
  maxPrefetch: 1024,
  publishConcurrency: 256,
  maxMessageBytes: defaultMaxMessageBytes,
  maxDelay: Duration.hours(72),
  maxInvisibleDuration: Duration.hours(12),
  ssl: false,
  connectSchedule: Schedule.min([Schedule.exponential("200 millis", 2), Schedule.spaced("2 seconds")]).pipe(
    Schedule.jittered,
    Schedule.upTo({ times: 5 })
  ) as Schedule.Schedule<unknown, unknown>,
  reconnectSchedule: Schedule.min([Schedule.exponential("100 millis", 2), Schedule.spaced("5 seconds")]).pipe(
    Schedule.jittered,
    Schedule.upTo({ times: 20 })
  ) as Schedule.Schedule<unknown, unknown>
} as const

type Problem = string | undefined

const positiveInt = (name: string, value: number, max = Number.MAX_SAFE_INTEGER): Problem =>
  Number.isInteger(value) && value >= 1 && value <= max ? undefined : `${name} must be a whole number from 1 to ${max}`

const namespacePattern = /^[A-Za-z0-9_%-]{0,64}$/

type Explicit = Omit<RocketOptions, "url">

const problems = (options: Explicit): Array<string> => {
  const found: Array<Problem> = []
  const { receiveBatch, maxPrefetch, publishConcurrency, maxMessageBytes, namespace } = options
  if (receiveBatch !== undefined) found.push(positiveInt("receiveBatch", receiveBatch, 32))
  if (maxPrefetch !== undefined) found.push(positiveInt("maxPrefetch", maxPrefetch))
  if (publishConcurrency !== undefined) found.push(positiveInt("publishConcurrency", publishConcurrency))
  if (maxMessageBytes !== undefined) found.push(positiveInt("maxMessageBytes", maxMessageBytes))
  if (namespace !== undefined && !namespacePattern.test(namespace)) {
    found.push("namespace must be at most 64 letters, digits, '-', '_' or '%'")
  }
  for (const [name, value] of [
    ["invisibleDuration", options.invisibleDuration],
    ["longPolling", options.longPolling],
    ["requestTimeout", options.requestTimeout],
    ["connectTimeout", options.connectTimeout],
    ["maxDelay", options.maxDelay],
    ["maxInvisibleDuration", options.maxInvisibleDuration]
  ] as const) {
    if (value === undefined) continue
    const parsed = Duration.fromInput(value)
    if (parsed._tag === "None") found.push(`${name} is not a duration`)
    else if (Duration.toMillis(parsed.value) <= 0) found.push(`${name} must be positive`)
  }
  if (options.requestTimeout !== undefined) {
    const parsed = Duration.fromInput(options.requestTimeout)
    if (parsed._tag === "Some" && Duration.toMillis(parsed.value) < 1000) {
      found.push("requestTimeout must be at least 1 second")
    }
  }
  return found.filter((p): p is string => p !== undefined)
}

/** Options read from the URL's query string. */
const fromQuery = (url: URL): { readonly options: Explicit; readonly problems: Array<string> } => {
  const q = url.searchParams
  const options: { -readonly [K in keyof Explicit]: Explicit[K] } = {}
  const bad: Array<string> = []
  const int = (name: string): number | undefined => {
    const raw = q.get(name)
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
  const bool = (name: string): boolean | undefined => {
    const raw = q.get(name)
    if (raw === null) return undefined
    if (raw === "true" || raw === "1") return true
    if (raw === "false" || raw === "0") return false
    bad.push(`${name} must be true or false, not ${JSON.stringify(raw)}`)
    return undefined
  }
  const namespace = q.get("namespace")
  if (namespace !== null) options.namespace = namespace
  options.strict = bool("strict")
  options.fifo = bool("fifo")
  options.ssl = bool("ssl")
  options.invisibleDuration = millis("invisibleDuration")
  options.longPolling = millis("longPolling")
  options.requestTimeout = millis("requestTimeout")
  options.connectTimeout = millis("connectTimeout")
  options.maxDelay = millis("maxDelay")
  options.maxInvisibleDuration = millis("maxInvisibleDuration")
  options.receiveBatch = int("receiveBatch")
  options.maxPrefetch = int("maxPrefetch")
  options.publishConcurrency = int("publishConcurrency")
  options.maxMessageBytes = int("maxMessageBytes")
  return { options, problems: [...bad, ...problems(options)] }
}

const toUrl = (url: RocketOptions["url"]): Effect.Effect<Redacted.Redacted<URL>, InvalidUrl> => {
  if (typeof url === "string") return TransportUrl.parse(url)
  const inner: unknown = Redacted.value(url as Redacted.Redacted<unknown>)
  return inner instanceof URL
    ? Effect.succeed(url as Redacted.Redacted<URL>)
    : TransportUrl.parse(url as Redacted.Redacted<string>)
}

const duration = (input: Duration.Input | undefined, fallback: Duration.Duration): Duration.Duration =>
  input === undefined ? fallback : Duration.fromInputUnsafe(input)

const definedOnly = <A extends object>(options: A): Partial<A> =>
  Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<A>

/**
 * Resolves options into the settings the transport runs with. A malformed
 * URL or query parameter fails with `InvalidUrl` (secret masked); an invalid
 * option given in code is a defect, reported at startup.
 */
export const make = (options: RocketOptions): Effect.Effect<RocketConfig, InvalidUrl> =>
  Effect.gen(function* () {
    const url = yield* toUrl(options.url)
    const raw = Redacted.value(url)
    if (raw.protocol !== "rocketmq:") {
      return yield* new InvalidUrl({
        url: TransportUrl.display(raw),
        reason: `expected a rocketmq:// URL, not ${raw.protocol}//`
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
    if (invalid.length > 0) return yield* Effect.die(new Error(`invalid RocketMQ options: ${invalid.join("; ")}`))
    const merged: Explicit = { ...definedOnly(query.options), ...definedOnly(explicit) }
    return {
      url,
      endpoints: `${raw.hostname}:${raw.port === "" ? defaultPort : raw.port}`,
      namespace: merged.namespace ?? defaults.namespace,
      strict: merged.strict ?? defaults.strict,
      fifo: merged.fifo ?? defaults.fifo,
      invisibleDuration: duration(merged.invisibleDuration, defaults.invisibleDuration),
      longPolling: duration(merged.longPolling, defaults.longPolling),
      requestTimeout: duration(merged.requestTimeout, defaults.requestTimeout),
      connectTimeout: duration(merged.connectTimeout, defaults.connectTimeout),
      receiveBatch: merged.receiveBatch ?? defaults.receiveBatch,
      maxPrefetch: merged.maxPrefetch ?? defaults.maxPrefetch,
      publishConcurrency: merged.publishConcurrency ?? defaults.publishConcurrency,
      maxMessageBytes: merged.maxMessageBytes ?? defaults.maxMessageBytes,
      maxDelay: duration(merged.maxDelay, defaults.maxDelay),
      maxInvisibleDuration: duration(merged.maxInvisibleDuration, defaults.maxInvisibleDuration),
      ssl: merged.ssl ?? defaults.ssl,
      createTopics: merged.createTopics,
      connectSchedule: merged.connectSchedule ?? defaults.connectSchedule,
      reconnectSchedule: merged.reconnectSchedule ?? defaults.reconnectSchedule
    }
  })

/** Options from the URL alone (its query string), as the `rocketmq://` plugin builds them. */
export const fromUrl = (url: Redacted.Redacted<URL>): Effect.Effect<RocketConfig, InvalidUrl> => make({ url })

/**
 * The URL from `LOSSLESS_ROCKETMQ_URL` (default `rocketmq://127.0.0.1:8081`),
 * read as `Redacted`; every other option from its query string.
 */
export const fromEnv: Config.Config<RocketOptions> = Config.all({
  url: Config.Redacted(envVar).pipe(Config.withDefault(Redacted.make(defaultUrl)))
})

/** The URL as it may appear in logs and errors: secret masked. */
export const display = (config: RocketConfig): string => TransportUrl.display(Redacted.value(config.url))

/** The access key and secret from the URL, when it has them. */
export const credentials = (
  config: RocketConfig
): { readonly accessKey: string; readonly accessSecret: string } | undefined => {
  const raw = Redacted.value(config.url)
  if (raw.username === "") return undefined
  return { accessKey: decodeURIComponent(raw.username), accessSecret: decodeURIComponent(raw.password) }
}
