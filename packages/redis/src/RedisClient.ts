/**
 * The ioredis client Lossless talks to Redis through, as a scoped service.
 *
 * `layer` builds one from a URL (by default `LOSSLESS_REDIS_URL`, else
 * `redis://127.0.0.1:6379`) with `defaults` and closes it with the scope. To
 * use a client of your own, provide it with `Layer.succeed(RedisClient, client)`
 * and spread `defaults` into its options so a dead Redis fails fast.
 *
 * The URL may hold a password: it is read as `Redacted` and never appears in
 * logs or errors.
 *
 * @since 0.1.0
 */
import { InvalidUrl, TransportUrl } from "@lossless/core"
import { Config, Context, Effect, Layer, Redacted, type Scope } from "effect"
import { Redis, type RedisOptions } from "ioredis"
import { forgetConnectionError, rememberConnectionError } from "./internal/failure.ts"

/** An ioredis client. */
export class RedisClient extends Context.Service<RedisClient, Redis>()("@lossless/redis/RedisClient") {}

/** The environment variable holding the Redis URL, read by `layer` when no URL is given. */
export const envVar = "LOSSLESS_REDIS_URL"

/** The URL used when `LOSSLESS_REDIS_URL` is not set. */
export const defaultUrl = "redis://127.0.0.1:6379"

/**
 * The ioredis options `layer` applies before the caller's own.
 *
 * A store that cannot answer must say so quickly: the consumer then hands the
 * message back to the broker instead of holding a handler slot while a
 * command waits on a dead connection.
 */
export const defaults: ClientOptions = {
  /**
   * Commands issued in the same tick go out as one write, so many handlers
   * claiming at once share a round trip instead of paying one each.
   */
  enableAutoPipelining: true,
  /**
   * A dedupe operation is one short script; no reply within a second means
   * Redis is down or stalled. The same bound applies to queued commands.
   */
  commandTimeout: 1000,
  /**
   * A command waiting for a connection fails after one reconnect attempt
   * instead of the default twenty, which would hold a handler for seconds.
   */
  maxRetriesPerRequest: 1,
  /**
   * Kept on: commands issued while the client (re)connects wait for the
   * connection, bounded by the two options above, so startup and a brief
   * reconnect do not bounce every message. A command that timed out there may
   * still run after reconnecting; for a claim that only means the key reads
   * busy until its lease ends, as after a lost reply.
   */
  enableOfflineQueue: true
}

/** ioredis options but `replyMapping`: the service's client keeps ioredis' default reply shapes. */
export type ClientOptions = Omit<RedisOptions, "replyMapping">

export interface RedisClientOptions {
  /**
   * `redis://[[user]:password@]host[:port][/db]` or `rediss://` for TLS.
   * @default the `LOSSLESS_REDIS_URL` environment variable, else `redis://127.0.0.1:6379`
   */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /** ioredis options, applied over `defaults`. */
  readonly redis?: ClientOptions | undefined
}

const urlConfig = Config.Redacted(envVar).pipe(Config.withDefault(Redacted.make(defaultUrl)))

/**
 * Opens a client in the current scope; closing the scope quits it, waiting
 * for replies still outstanding. The connection is made in the background:
 * a Redis that is down at startup shows up as `StoreUnavailable` on the first
 * operations, not as a failure here.
 */
export const make = (
  url: string | Redacted.Redacted<string>,
  options: ClientOptions = {}
): Effect.Effect<Redis, InvalidUrl, Scope.Scope> =>
  Effect.gen(function* () {
    const parsed = yield* TransportUrl.parse(url)
    const { protocol } = Redacted.value(parsed)
    if (protocol !== "redis:" && protocol !== "rediss:") {
      return yield* new InvalidUrl({
        url: TransportUrl.display(Redacted.value(parsed)),
        reason: `expected a redis:// or rediss:// URL, not ${protocol}//`
      })
    }
    return yield* Effect.acquireRelease(
      Effect.sync(() => {
        const client = new Redis(Redacted.value(parsed).href, { ...defaults, ...options })
        // Without a listener ioredis prints every reconnect failure; failures reach
        // callers as `StoreUnavailable`, whose reason names the last one.
        client.on("error", (error: unknown) => rememberConnectionError(client, error))
        client.on("ready", () => forgetConnectionError(client))
        return client
      }),
      (client) =>
        Effect.promise(() => client.quit().then(noop, noop)).pipe(
          Effect.timeoutOption("2 seconds"),
          Effect.andThen(Effect.sync(() => client.disconnect()))
        )
    )
  })

const noop = (): void => {}

/** Why `layer` could not build a client: a malformed URL or unreadable configuration. */
export type LayerError = InvalidUrl | Config.ConfigError

/** A client from `options.url` or `LOSSLESS_REDIS_URL`, closed when the layer is released. */
export const layer = (options: RedisClientOptions = {}): Layer.Layer<RedisClient, LayerError> =>
  Layer.effect(
    RedisClient,
    Effect.flatMap(options.url === undefined ? urlConfig : Effect.succeed(options.url), (url) =>
      make(url, options.redis)
    )
  )
