/**
 * The adapter for a URL when the application passes no plugins: each
 * scheme's conventional package, loaded on first use, so
 * `createClient({ url: "amqp://..." })` works once `@lossless/rabbitmq` is
 * installed.
 *
 * @since 0.1.0
 */
import { type InvalidUrl, TransportUrl, UnknownScheme } from "@lossless/core"
import { Effect, Redacted } from "effect"
import { AdapterMissing } from "./ClientError.ts"

/** The package that serves each scheme. */
export const packages: Readonly<Record<string, string>> = {
  memory: "@lossless/memory",
  amqp: "@lossless/rabbitmq",
  amqps: "@lossless/rabbitmq",
  kafka: "@lossless/kafka",
  kafkas: "@lossless/kafka",
  rocketmq: "@lossless/rocketmq"
}

const isPlugin = (value: unknown): value is TransportUrl.TransportPlugin =>
  typeof value === "object" &&
  value !== null &&
  Array.isArray((value as { schemes?: unknown }).schemes) &&
  typeof (value as { layer?: unknown }).layer === "function"

/** The plugins exported by a loaded adapter package (each module namespace's `plugin`). */
const pluginsOf = (module: Record<string, unknown>): Array<TransportUrl.TransportPlugin> =>
  Object.values(module).flatMap((member) => {
    const plugin = typeof member === "object" && member !== null ? (member as { plugin?: unknown }).plugin : undefined
    return isPlugin(plugin) ? [plugin] : []
  })

/** Loads the plugin for `url`'s scheme from its conventional package. */
export const forUrl = (
  url: string,
  table: Readonly<Record<string, string>> = packages
): Effect.Effect<TransportUrl.TransportPlugin, AdapterMissing | UnknownScheme | InvalidUrl> =>
  Effect.gen(function* () {
    const scheme = TransportUrl.scheme(yield* TransportUrl.parse(Redacted.make(url)))
    const name = table[scheme]
    if (name === undefined) return yield* new UnknownScheme({ scheme, supported: Object.keys(table) })
    const module = yield* Effect.tryPromise({
      try: () => import(name) as Promise<Record<string, unknown>>,
      catch: () => new AdapterMissing({ scheme, package: name })
    })
    const plugin = pluginsOf(module).find((p) => p.schemes.includes(scheme))
    if (plugin === undefined) return yield* new AdapterMissing({ scheme, package: name })
    return plugin
  })
