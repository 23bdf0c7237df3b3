/**
 * Where the cli connects: the transport from `--url` (else `LOSSLESS_URL`,
 * else `memory://`) and the outbox database from `--store` (else
 * `LOSSLESS_POSTGRES_URL`, else `LOSSLESS_OUTBOX_URL`).
 *
 * Each command opens what it needs for its own run and closes it at the end.
 * Failures to connect name the host and never the password.
 *
 * @since 0.1.0
 */
import { existsSync } from "node:fs"
import type { Transport } from "@lossless/core"
import { TransportUrl } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { RabbitTransport } from "@lossless/rabbitmq"
import { OutboxAdmin, OutboxSchema, Postgres, SqliteClient } from "@lossless/sql"
import { Config, Context, Duration, Effect, type Layer, Option, Redacted, Schedule } from "effect"
import type { Command } from "effect/cli"
import type { SqlClient, SqlError } from "effect/sql"
import { lossless } from "./Args.ts"
import { CommandFailed, fail } from "./Output.ts"

/** The transports the cli can use, by URL scheme. */
export const Plugins = Context.Reference<ReadonlyArray<TransportUrl.TransportPlugin>>("@lossless/cli/Plugins", {
  defaultValue: () => [MemoryTransport.plugin, rabbitPlugin]
})

// An operator waits at a prompt: give up on an unreachable broker after a few seconds.
const rabbitPlugin: TransportUrl.TransportPlugin = {
  ...RabbitTransport.plugin,
  layer: (url) =>
    RabbitTransport.layer({
      url,
      connectionName: "lossless-cli",
      connectTimeout: "3 seconds",
      connectSchedule: Schedule.spaced("300 millis").pipe(Schedule.upTo({ times: 2 })),
      reconnectWait: "3 seconds"
    })
}

const optionalEnv = (name: string) =>
  Config.Redacted(name).pipe(
    Config.option,
    Effect.map(Option.filter((value) => Redacted.value(value).trim() !== "")),
    Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>())
  )

/** The transport URL in use (redacted: it may carry a password). */
export const transportUrl = Effect.gen(function* () {
  const flags = yield* lossless
  if (Option.isSome(flags.url)) return Redacted.make(flags.url.value)
  const env = yield* optionalEnv(TransportUrl.envVar)
  return Option.getOrElse(env, () => Redacted.make(TransportUrl.defaultUrl))
})

const describe = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)

/**
 * Runs `use` with the transport the URL names, closed afterwards. Failures
 * to reach the broker, and failures of `use` that are not already the
 * command's own, become `CommandFailed` naming the broker's address.
 */
export const withTransport = <A, E, R>(
  use: Effect.Effect<A, E, R>
): Effect.Effect<A, CommandFailed, Exclude<R, Transport.Transport> | Command.CommandContext<"lossless">> =>
  Effect.gen(function* () {
    const url = yield* transportUrl
    const plugins = yield* Plugins
    const shown = TransportUrl.display(Redacted.value(url))
    const resolved = yield* TransportUrl.resolve(plugins, url).pipe(
      Effect.mapError((error) =>
        error._tag === "InvalidUrl"
          ? new CommandFailed({ reason: `--url: ${error.message}` })
          : new CommandFailed({ reason: `--url ${shown}: ${error.message}` })
      )
    )
    return yield* use.pipe(
      Effect.mapError((error) =>
        error instanceof CommandFailed ? error : new CommandFailed({ reason: `${shown}: ${describe(error)}` })
      ),
      Effect.provide(resolved.plugin.layer(resolved.url)),
      // What is not already a CommandFailed came from building the transport.
      Effect.mapError((error) =>
        error instanceof CommandFailed
          ? error
          : new CommandFailed({ reason: `cannot reach the broker at ${shown}: ${describe(error)}` })
      )
    )
  })

/** The outbox database URL in use, if any (redacted). */
export const storeUrl = Effect.gen(function* () {
  const flags = yield* lossless
  if (Option.isSome(flags.store)) return Option.some(Redacted.make(flags.store.value))
  const pg = yield* optionalEnv(Postgres.envVars.url)
  if (Option.isSome(pg)) return pg
  return yield* optionalEnv("LOSSLESS_OUTBOX_URL")
})

const isPostgres = (raw: string) => /^postgres(ql)?:\/\//i.test(raw.trim())

/** `sqlite:path`, `file:path` or a plain path → the file path. */
const sqlitePath = (raw: string): string => {
  const text = raw.trim()
  if (/^file:\/\//i.test(text)) return new URL(text).pathname
  return text.replace(/^(sqlite|file):(\/\/)?/i, "")
}

/**
 * Runs `use` with the outbox operations on the configured database, closed
 * afterwards. Fails naming the database (password masked) when it cannot be
 * reached or has no outbox table.
 */
export const withOutbox = <A, E>(use: (admin: OutboxAdmin.OutboxAdmin) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const configured = yield* storeUrl
    if (Option.isNone(configured)) {
      return yield* fail(
        `no outbox database: pass --store postgres://... (or a SQLite file), or set ${Postgres.envVars.url} or LOSSLESS_OUTBOX_URL`
      )
    }
    const raw = Redacted.value(configured.value)
    let client: Layer.Layer<SqlClient.SqlClient, SqlError.SqlError>
    let shown: string
    if (isPostgres(raw)) {
      shown = TransportUrl.display(raw)
      client = Postgres.layer({
        url: Redacted.make(raw),
        maxConnections: 2,
        connectTimeout: Duration.seconds(5),
        applicationName: "lossless-cli"
      })
    } else {
      const filename = sqlitePath(raw)
      shown = filename
      if (!existsSync(filename)) return yield* fail(`--store: no SQLite database at ${filename}`)
      client = SqliteClient.layer({ filename })
    }
    const { tablePrefix } = yield* lossless
    const tables = yield* Effect.try({
      try: () => OutboxSchema.withPrefix(tablePrefix),
      catch: (error) => new CommandFailed({ reason: `--table-prefix: ${describe(error)}` })
    })
    const run = Effect.gen(function* () {
      const admin = yield* OutboxAdmin.make({ tables })
      if (!(yield* admin.exists)) {
        return yield* fail(
          `${shown} has no table ${admin.tables.outbox}: the application creates it when it starts with the SQL outbox (OutboxSchema.migrate)`
        )
      }
      return yield* use(admin)
    })
    return yield* run.pipe(
      Effect.mapError((error) =>
        error instanceof CommandFailed
          ? error
          : error !== null && typeof error === "object" && "_tag" in error && error._tag === "StoreUnavailable"
            ? new CommandFailed({
                reason: `cannot use the outbox database at ${shown}: ${"reason" in error ? String(error.reason) : describe(error)}`
              })
            : new CommandFailed({ reason: `${shown}: ${describe(error)}` })
      ),
      Effect.provide(client),
      Effect.mapError((error) =>
        error instanceof CommandFailed
          ? error
          : new CommandFailed({ reason: `cannot open the outbox database at ${shown}: ${describe(error)}` })
      )
    )
  })
