/**
 * Choosing the transport from a URL.
 *
 * Each adapter exports a `TransportPlugin` naming the URL schemes it serves.
 * An application lists the plugins it ships with once; the URL, usually from
 * `LOSSLESS_URL`, picks one at startup. Moving to another broker is then a
 * configuration change, not a code change.
 *
 * ```ts
 * const TransportLive = TransportUrl.layerConfig([MemoryTransport.plugin, RabbitTransport.plugin])
 * ```
 *
 * @since 0.1.0
 */
import { Config, Effect, Layer, Redacted, type Scope } from "effect"
import { InvalidUrl, type TransportUnavailable, UnknownScheme } from "./Errors.ts"
import { Transport, type TransportShape } from "./Transport.ts"

/** An adapter's entry point: the schemes it serves and how to build it from a URL. */
export interface TransportPlugin {
  readonly name: string
  /** URL schemes without the colon, e.g. `["amqp", "amqps"]`. */
  readonly schemes: ReadonlyArray<string>
  /** Builds the transport. The URL may hold credentials: keep it redacted in logs and errors. */
  readonly layer: (url: Redacted.Redacted<URL>) => Layer.Layer<Transport, TransportUnavailable | InvalidUrl>
}

/** The environment variable naming the transport, read by `layerConfig`. */
export const envVar = "LOSSLESS_URL"

/** The transport used when `LOSSLESS_URL` is not set: the embedded in-process broker. */
export const defaultUrl = "memory://"

/** A URL with its password replaced, safe for logs and error messages. */
export const display = (url: string | URL): string => {
  if (url instanceof URL) {
    if (url.password === "") return url.href
    const copy = new URL(url.href)
    copy.password = "***"
    return copy.href
  }
  // Unparseable input: mask everything between "user:" and the last "@" of the authority,
  // as URL parsing does (passwords often contain a raw "@").
  return url.replace(/(\/\/[^/?#@:]*:)[^/?#]*@/, "$1***@")
}

/** Parses a transport URL, failing with `InvalidUrl` that names the problem. */
export const parse = (raw: string | Redacted.Redacted<string>): Effect.Effect<Redacted.Redacted<URL>, InvalidUrl> => {
  const text = (Redacted.isRedacted(raw) ? Redacted.value(raw) : raw).trim()
  if (text === "") return Effect.fail(new InvalidUrl({ url: "", reason: "the URL is empty" }))
  if (!/^[a-z][a-z0-9+.-]*:/i.test(text)) {
    return Effect.fail(
      new InvalidUrl({ url: display(text), reason: "the URL has no scheme (expected e.g. amqp://host)" })
    )
  }
  return Effect.try({
    try: () => Redacted.make(new URL(text)),
    catch: () => new InvalidUrl({ url: display(text), reason: "the URL cannot be parsed" })
  })
}

/** The scheme of a parsed URL, without the colon. */
export const scheme = (url: Redacted.Redacted<URL>): string => Redacted.value(url).protocol.replace(/:$/, "")

/** Finds the plugin serving the URL's scheme. */
export const resolve = (
  plugins: ReadonlyArray<TransportPlugin>,
  raw: string | Redacted.Redacted<string>
): Effect.Effect<
  { readonly plugin: TransportPlugin; readonly url: Redacted.Redacted<URL> },
  InvalidUrl | UnknownScheme
> =>
  Effect.flatMap(parse(raw), (url) => {
    const wanted = scheme(url)
    const plugin = plugins.find((p) => p.schemes.includes(wanted))
    return plugin === undefined
      ? Effect.fail(new UnknownScheme({ scheme: wanted, supported: plugins.flatMap((p) => p.schemes) }))
      : Effect.succeed({ plugin, url })
  })

/** The transport for `url`, built by the plugin that serves its scheme. */
export const layer = (
  plugins: ReadonlyArray<TransportPlugin>,
  url: string | Redacted.Redacted<string>
): Layer.Layer<Transport, InvalidUrl | UnknownScheme | TransportUnavailable> =>
  Layer.unwrap(Effect.map(resolve(plugins, url), ({ plugin, url }) => plugin.layer(url)))

/** The transport named by `LOSSLESS_URL`, or the in-process broker when it is unset. */
export const layerConfig = (
  plugins: ReadonlyArray<TransportPlugin>
): Layer.Layer<Transport, InvalidUrl | UnknownScheme | TransportUnavailable | Config.ConfigError> =>
  Layer.unwrap(
    Effect.map(Config.Redacted(envVar).pipe(Config.withDefault(Redacted.make(defaultUrl))), (url) =>
      layer(plugins, url)
    )
  )

/** How an adapter builds its transport: from its options, through its validated configuration. */
export interface AdapterSpec<Options extends { readonly url: unknown }, Settings> {
  readonly name: string
  readonly schemes: ReadonlyArray<string>
  /** Validates options into settings; a bad URL fails with `InvalidUrl`. */
  readonly configure: (options: Options) => Effect.Effect<Settings, InvalidUrl>
  /** Connects; the transport's resources close with the scope. */
  readonly build: (settings: Settings) => Effect.Effect<TransportShape, TransportUnavailable, Scope.Scope>
  /** The options read from the environment when `layerConfig` is given none. */
  readonly fromEnv: Config.Wrap<Options>
  /** The options for a URL that names the adapter's scheme (options may ride in its query). */
  readonly fromUrl: (url: Redacted.Redacted<URL>) => Options
}

/** The layers and URL plugin of an adapter. */
export interface Adapter<Options> {
  /** The transport from options; connected when built, closed when released. */
  readonly layer: (options: Options) => Layer.Layer<Transport, InvalidUrl | TransportUnavailable>
  /** The transport from `Config`: the adapter's environment variables by default, or any record of configs. */
  readonly layerConfig: (
    config?: Config.Wrap<Options>
  ) => Layer.Layer<Transport, InvalidUrl | TransportUnavailable | Config.ConfigError>
  /** Serves the adapter's URL schemes. */
  readonly plugin: TransportPlugin
}

/** The layers and URL plugin every adapter exports, written once. */
export const adapter = <Options extends { readonly url: unknown }, Settings>(
  spec: AdapterSpec<Options, Settings>
): Adapter<Options> => {
  const build = (options: Options) => Effect.flatMap(spec.configure(options), spec.build)
  const layer = (options: Options) => Layer.effect(Transport, build(options))
  return {
    layer,
    layerConfig: (config = spec.fromEnv) => Layer.effect(Transport, Effect.flatMap(Config.unwrap(config), build)),
    plugin: { name: spec.name, schemes: spec.schemes, layer: (url) => layer(spec.fromUrl(url)) }
  }
}
