import { Consumer, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Prometheus, Telemetry } from "@lossless/observability"
import { Effect, Layer, Schema } from "effect"

const Orders = Topic.make("orders", Schema.Struct({ id: Schema.String }))

// #region layer
// Spans (send → relay → receive → handle, linked through the lossless-traceparent header) and counters.
const TelemetryLive = Telemetry.layer({
  otlp: { url: "http://otel-collector:4318", serviceName: "orders" },
  prometheus: { port: 9464 } // GET /metrics
})
// Or from the environment: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, LOSSLESS_PROMETHEUS_PORT.
const FromEnv = Telemetry.layerConfig
// #endregion

export const main: Effect.Effect<void, unknown> = Effect.gen(function* () {
  let handled = 0
  yield* Consumer.start({
    topic: Orders,
    group: "shipping",
    handler: () =>
      Effect.sync(() => {
        handled++
      })
  })
  yield* Publisher.send(Orders, { id: "o-1" })
  // The example scrapes its own endpoint (on a free port) rather than exporting anywhere.
  const endpoint = yield* Prometheus.serve({ port: 0 })
  while (handled === 0) yield* Effect.sleep("10 millis")
  const text = yield* Effect.promise(() => fetch(endpoint.url).then((r) => r.text()))
  if (!text.includes("lossless_messages_handled_total")) return yield* Effect.die(new Error(text))
  return [TelemetryLive, FromEnv]
}).pipe(
  Effect.scoped,
  Effect.provide(
    Publisher.layer().pipe(Layer.provideMerge(MemoryTransport.layer()), Layer.provideMerge(Telemetry.layer()))
  )
)
