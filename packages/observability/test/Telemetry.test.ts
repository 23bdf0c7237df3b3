import { createServer } from "node:http"
import { expect, it } from "@effect/vitest"
import { Consumer, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Prometheus, Telemetry } from "@lossless/observability"
import { Harness } from "@lossless/testkit"
import { Effect, Layer, Schema } from "effect"

const Order = Schema.Struct({ id: Schema.String })
const group = "billing"

interface ExportedSpan {
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
}

/** An OTLP/HTTP collector in memory: keeps the spans and metric names it is sent. */
const collector = Effect.acquireRelease(
  Effect.callback<{ url: string; spans: Array<ExportedSpan>; metrics: Set<string>; close: () => void }>((resume) => {
    const spans: Array<ExportedSpan> = []
    const metrics = new Set<string>()
    const server = createServer((request, response) => {
      let body = ""
      request.on("data", (chunk: Buffer) => {
        body += chunk.toString("utf8")
      })
      request.on("end", () => {
        const json = JSON.parse(body || "{}") as Record<string, Array<Record<string, unknown>>>
        if (request.url === "/v1/traces") {
          for (const resource of json.resourceSpans ?? []) {
            for (const scope of (resource.scopeSpans as Array<{ spans: Array<ExportedSpan> }>) ?? []) {
              spans.push(...scope.spans)
            }
          }
        }
        if (request.url === "/v1/metrics") {
          for (const resource of json.resourceMetrics ?? []) {
            for (const scope of (resource.scopeMetrics as Array<{ metrics: Array<{ name: string }> }>) ?? []) {
              for (const metric of scope.metrics) metrics.add(metric.name)
            }
          }
        }
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, spans, metrics, close: () => server.close() }))
    })
  }),
  (c) => Effect.sync(() => c.close())
)

const roundTrip = Effect.gen(function* () {
  const topic = Topic.make(Harness.uniqueName("telemetry"), Order)
  yield* Harness.declare([topic.name], [[topic.name, group]])
  let handled = 0
  yield* Consumer.start({
    topic,
    group,
    handler: () =>
      Effect.sync(() => {
        handled++
      })
  })
  yield* Publisher.sendBatch(topic, [{ payload: { id: "a" } }, { payload: { id: "b" } }])
  yield* Harness.eventually("both messages handled", () => handled === 2)
  return topic
})

it.live("spans and metrics reach an OTLP collector, the receive a child of the send", () =>
  Effect.gen(function* () {
    const otlp = yield* collector
    const app = Publisher.layer().pipe(
      Layer.provideMerge(MemoryTransport.layer()),
      Layer.provideMerge(
        Telemetry.layer({ otlp: { url: otlp.url, serviceName: "test", exportInterval: "100 millis" } })
      )
    )
    yield* Effect.scoped(Effect.provide(roundTrip, app))
    // Released layers flush what they buffered; wait for it to arrive.
    yield* Harness.eventually(
      "both receive spans exported",
      () => otlp.spans.filter((s) => s.name === "lossless.receive").length === 2
    )
    const send = otlp.spans.find((s) => s.name === "lossless.send")
    expect(send).toBeDefined()
    for (const receive of otlp.spans.filter((s) => s.name === "lossless.receive")) {
      expect(receive.traceId).toBe(send?.traceId)
      expect(receive.parentSpanId).toBe(send?.spanId)
    }
    expect(otlp.spans.filter((s) => s.name === "lossless.handle")).toHaveLength(2)
    yield* Harness.eventually(
      "the counters exported",
      () => otlp.metrics.has("lossless_messages_handled_total") && otlp.metrics.has("lossless_messages_confirmed_total")
    )
  })
)

it.live("the Prometheus endpoint serves Lossless's counters", () =>
  Effect.gen(function* () {
    const endpoint = yield* Prometheus.serve({ port: 0 })
    const app = Publisher.layer().pipe(
      Layer.provideMerge(MemoryTransport.layer()),
      Layer.provideMerge(Telemetry.layer())
    )
    const topic = yield* Effect.provide(roundTrip, app)
    const text = yield* Effect.promise(() => fetch(endpoint.url).then((r) => r.text()))
    const handled = text
      .split("\n")
      .find((line) => line.startsWith("lossless_messages_handled_total") && line.includes(topic.name))
    expect(handled).toBeDefined()
    expect(Number(handled?.split(" ").at(-1))).toBe(2)
    const missing = yield* Effect.promise(() => fetch(endpoint.url.replace("/metrics", "/nope")).then((r) => r.status))
    expect(missing).toBe(404)
  })
)

it.live("a port already taken fails the endpoint with a clear error", () =>
  Effect.gen(function* () {
    const first = yield* Prometheus.serve({ port: 0 })
    const port = Number(new URL(first.url).port)
    const error = yield* Effect.flip(Prometheus.serve({ port }))
    expect(error._tag).toBe("PrometheusError")
    expect(error.message).toContain(`127.0.0.1:${port}`)
  })
)
