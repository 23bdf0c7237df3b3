/**
 * One layer that turns Lossless's spans and metrics on and exports them:
 * OTLP (JSON over HTTP) to an OpenTelemetry collector, a Prometheus scrape
 * endpoint, or both. Both are off unless configured.
 *
 * ```ts
 * const program = app.pipe(
 *   Effect.provide(Telemetry.layer({ otlp: { url: "http://127.0.0.1:4318", serviceName: "orders" } }))
 * )
 * ```
 *
 * From the environment (`layerConfig`): `OTEL_EXPORTER_OTLP_ENDPOINT` and
 * `OTEL_SERVICE_NAME` for OTLP, `LOSSLESS_PROMETHEUS_PORT` for the endpoint.
 *
 * @since 0.1.0
 */
import { Observability } from "@lossless/core"
import { Config, type Duration, Effect, Layer, Option } from "effect"
import { FetchHttpClient } from "effect/http"
import { Otlp } from "effect/observability"
import * as Prometheus from "./Prometheus.ts"

export interface OtlpOptions {
  /** The collector's base URL; signals go to `/v1/traces`, `/v1/metrics`, `/v1/logs` below it. */
  readonly url: string
  readonly serviceName?: string | undefined
  readonly serviceVersion?: string | undefined
  /** How often buffered spans and metrics are sent. @default 5 seconds */
  readonly exportInterval?: Duration.Input | undefined
}

export interface TelemetryOptions {
  readonly otlp?: OtlpOptions | undefined
  readonly prometheus?: Prometheus.PrometheusOptions | undefined
}

const otlpLayer = (options: OtlpOptions) => {
  const interval = options.exportInterval ?? "5 seconds"
  return Otlp.layerJson({
    baseUrl: options.url,
    resource: { serviceName: options.serviceName ?? "lossless", serviceVersion: options.serviceVersion },
    tracerExportInterval: interval,
    metricsExportInterval: interval,
    loggerExportInterval: interval
  }).pipe(Layer.provide(FetchHttpClient.layer))
}

/** Spans and metrics on, exported where the options say. */
export const layer = (options: TelemetryOptions = {}): Layer.Layer<never, Prometheus.PrometheusError> => {
  // The OTLP layer installs its tracer and metric reader in the context it builds: merged, not provided, so they stay.
  const otlp: Layer.Layer<never> = options.otlp === undefined ? Layer.empty : otlpLayer(options.otlp)
  const prometheus: Layer.Layer<never, Prometheus.PrometheusError> =
    options.prometheus === undefined ? Layer.empty : Prometheus.layer(options.prometheus)
  return Layer.mergeAll(Observability.layer, otlp, prometheus)
}

/** `layer` configured from the environment; nothing is exported when nothing is set. */
export const layerConfig: Layer.Layer<never, Prometheus.PrometheusError | Config.ConfigError> = Layer.unwrap(
  Effect.gen(function* () {
    const url = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_ENDPOINT"))
    const serviceName = yield* Config.option(Config.String("OTEL_SERVICE_NAME"))
    const port = yield* Config.option(Config.Port("LOSSLESS_PROMETHEUS_PORT"))
    return layer({
      otlp: Option.isSome(url) ? { url: url.value, serviceName: Option.getOrUndefined(serviceName) } : undefined,
      prometheus: Option.isSome(port) ? { port: port.value } : undefined
    })
  })
)
