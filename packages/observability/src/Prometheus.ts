/**
 * A Prometheus scrape endpoint for the metrics of the current Effect context
 * (Lossless's counters and histograms among them), on its own port.
 *
 * @since 0.1.0
 */
import { createServer, type Server } from "node:http"
import { Data, Effect, Layer } from "effect"
import { PrometheusMetrics } from "effect/observability"

export interface PrometheusOptions {
  /** @default 9464, the port OpenTelemetry's Prometheus exporter uses */
  readonly port?: number | undefined
  /** @default "127.0.0.1" */
  readonly host?: string | undefined
  /** @default "/metrics" */
  readonly path?: string | undefined
}

export class PrometheusError extends Data.TaggedError("PrometheusError")<{ readonly message: string }> {}

/** The endpoint that is listening; `url` is where to scrape it. */
export interface Endpoint {
  readonly url: string
}

/** Serves `/metrics` for the lifetime of the scope; fails when the port cannot be bound. */
export const serve = (options: PrometheusOptions = {}) =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const path = options.path ?? "/metrics"
    const context = yield* Effect.context<never>()
    const server = yield* Effect.acquireRelease(
      Effect.callback<Server, PrometheusError>((resume) => {
        const server = createServer((request, response) => {
          if (request.method !== "GET" || (request.url ?? "").split("?")[0] !== path) {
            response.writeHead(404).end()
            return
          }
          // Formatted from the context the endpoint started in: the registry the application's metrics live in.
          const body = PrometheusMetrics.formatUnsafe(context)
          response.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(body)
        })
        server.once("error", (error) =>
          resume(
            Effect.fail(
              new PrometheusError({ message: `cannot listen on ${host}:${options.port ?? 9464}: ${error.message}` })
            )
          )
        )
        server.listen(options.port ?? 9464, host, () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.callback<void>((resume) => {
          server.close(() => resume(Effect.void))
        })
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : (options.port ?? 9464)
    return { url: `http://${host}:${port}${path}` } satisfies Endpoint
  })

/** The endpoint as a layer. */
export const layer = (options: PrometheusOptions = {}): Layer.Layer<never, PrometheusError> =>
  Layer.effectDiscard(serve(options))
