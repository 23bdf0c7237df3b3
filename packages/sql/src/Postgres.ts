/**
 * A PostgreSQL client for the outbox and inbox: `@effect/sql-pg`'s pooled
 * `PgClient`, which also provides the generic `SqlClient.SqlClient` and the
 * `LISTEN` the relay wakes up with.
 *
 * `layerConfig()` reads `LOSSLESS_POSTGRES_URL` (required, kept `Redacted`
 * so it never reaches a log) and `LOSSLESS_POSTGRES_MAX_CONNECTIONS`. Each
 * running relay keeps one pooled connection for its `LISTEN`; size the pool
 * for that plus the application's own transactions.
 *
 * @since 0.1.0
 */
import { PgClient } from "@effect/sql-pg"
import { Config, type Layer } from "effect"
import type { SqlClient, SqlError } from "effect/sql"

export type PgPoolConfig = PgClient.PgPoolConfig

/** Environment variables read by `config`. */
export const envVars = {
  url: "LOSSLESS_POSTGRES_URL",
  maxConnections: "LOSSLESS_POSTGRES_MAX_CONNECTIONS"
} as const

/** Settings from the environment; the application name is `lossless`. */
export const config: Config.Config<PgPoolConfig> = Config.all({
  url: Config.Redacted(envVars.url),
  maxConnections: Config.Int(envVars.maxConnections).pipe(Config.withDefault(10)),
  applicationName: Config.succeed("lossless")
})

/** A pooled client: provides `PgClient` and `SqlClient.SqlClient`, closed with the layer. */
export const layer = (options: PgPoolConfig): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError.SqlError> =>
  PgClient.layer(options)

/** A pooled client with its settings from configuration: `config` (environment variables) by default. */
export const layerConfig = (
  settings: Config.Wrap<PgPoolConfig> = config
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError.SqlError | Config.ConfigError> =>
  PgClient.layerConfig(settings)
