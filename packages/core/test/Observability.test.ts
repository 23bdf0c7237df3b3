import { expect, it } from "@effect/vitest"
import { Consumer, Headers, Observability, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Harness } from "@lossless/testkit"
import { Effect, Layer, Metric, Schedule, Schema, Tracer } from "effect"

const Order = Schema.Struct({ id: Schema.String })
const group = "billing"

/** A tracer that keeps every span it starts. */
const recordingTracer = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, layer: Layer.succeed(Tracer.Tracer, tracer) }
}

const settle = Effect.gen(function* () {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow
})

const counterValue = (metric: Metric.Counter<number>, tags: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, tags)), (state) => Number(state.count))

const roundTrip = (topic: Topic.Topic<{ readonly id: string }>, fail: ReadonlySet<string>) =>
  Effect.gen(function* () {
    yield* Harness.declare([topic.name], [[topic.name, group]])
    const handled: Array<string> = []
    yield* Consumer.start({
      topic,
      group,
      retry: { immediate: 0, isPermanent: () => true },
      handler: (message) =>
        fail.has(message.payload.id)
          ? Effect.fail("refused")
          : Effect.sync(() => {
              handled.push(message.payload.id)
            })
    })
    yield* Publisher.send(topic, { id: "a" })
    yield* Publisher.sendBatch(topic, [{ payload: { id: "b" } }, { payload: { id: "c" } }])
    yield* settle
    return handled
  })

it.effect("with observability on, a round trip is one trace: send → receive → handle, and counted", () => {
  const { spans, layer: tracing } = recordingTracer()
  const topic = Topic.make(Harness.uniqueName("observed"), Order)
  const layer = Publisher.layer({ retry: Schedule.recurs(0) }).pipe(
    Layer.provideMerge(MemoryTransport.layer()),
    Layer.provideMerge(Observability.layer),
    Layer.provideMerge(tracing)
  )
  return Effect.gen(function* () {
    const handled = yield* roundTrip(topic, new Set(["c"]))
    expect(handled.sort()).toEqual(["a", "b"])

    const byName = (name: string) => spans.filter((s) => s.name === name)
    const sends = byName("lossless.send")
    const receives = byName("lossless.receive")
    const handles = byName("lossless.handle")
    expect(sends).toHaveLength(2)
    expect(sends.every((s) => s.kind === "producer")).toBe(true)
    expect(receives).toHaveLength(3)
    expect(receives.every((s) => s.kind === "consumer")).toBe(true)
    expect(handles).toHaveLength(3)
    for (const receive of receives) {
      // The receive continues the trace its send started, as a child of that send span.
      const parent = receive.parent
      expect(parent._tag).toBe("Some")
      const send = sends.find((s) => parent._tag === "Some" && s.spanId === parent.value.spanId)
      expect(send).toBeDefined()
      expect(receive.traceId).toBe(send?.traceId)
      expect(receive.attributes.get("messaging.destination.name")).toBe(topic.name)
      expect(receive.attributes.get("messaging.consumer.group.name")).toBe(group)
    }
    for (const handle of handles) {
      const parent = handle.parent
      expect(parent._tag === "Some" && receives.some((r) => r.spanId === parent.value.spanId)).toBe(true)
    }
    // The failed handler's span ended in failure.
    expect(handles.filter((s) => s.status._tag === "Ended" && s.status.exit._tag === "Failure")).toHaveLength(1)

    const tags = { topic: topic.name }
    const consumed = { topic: topic.name, group }
    const { metrics } = Observability
    expect(yield* counterValue(metrics.sent, tags)).toBe(3)
    expect(yield* counterValue(metrics.confirmed, tags)).toBe(3)
    expect(yield* counterValue(metrics.handled, consumed)).toBe(2)
    expect(yield* counterValue(metrics.handlerFailures, consumed)).toBe(1)
    expect(yield* counterValue(metrics.deadLettered, consumed)).toBe(1)
  }).pipe(Effect.provide(layer))
})

it.effect("with observability off (the default), no span is started and no trace header is sent", () => {
  const { spans, layer: tracing } = recordingTracer()
  const topic = Topic.make(Harness.uniqueName("unobserved"), Order)
  const layer = Publisher.layer({ retry: Schedule.recurs(0) }).pipe(
    Layer.provideMerge(MemoryTransport.layerWithBroker()),
    Layer.provideMerge(tracing)
  )
  return Effect.gen(function* () {
    const seen: Array<string | undefined> = []
    yield* Harness.declare([topic.name], [[topic.name, group]])
    yield* Consumer.start({
      topic,
      group,
      handler: (message) => Effect.sync(() => seen.push(message.headers[Headers.Traceparent]))
    })
    yield* Publisher.send(topic, { id: "a" })
    yield* settle
    expect(seen).toEqual([undefined])
    expect(spans.filter((s) => s.name.startsWith("lossless."))).toEqual([])
  }).pipe(Effect.provide(layer))
})

it("traceparent values round-trip and malformed ones are ignored", () => {
  const span = Tracer.externalSpan({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" })
  const value = Observability.formatTraceparent(span)
  expect(value).toBe("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
  expect(Observability.parseTraceparent(value)).toMatchObject({ traceId: span.traceId, spanId: span.spanId })
  for (const bad of [
    undefined,
    "",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "xx-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
  ]) {
    expect(Observability.parseTraceparent(bad)).toBeUndefined()
  }
})
