/**
 * One trace across the whole path on a real RabbitMQ: a send through the SQL
 * outbox, the relay publishing it, the consumer receiving and handling it.
 */
import { afterAll, expect, it } from "@effect/vitest"
import { Consumer, Observability, Publisher, Topic } from "@lossless/core"
import { RabbitTransport } from "@lossless/rabbitmq"
import { SqliteClient, SqlOutbox } from "@lossless/sql"
import { Harness, Services } from "@lossless/testkit"
import { Effect, Layer, Metric, Schema, Tracer } from "effect"
import { describe } from "vitest"
import * as Support from "../../rabbitmq/test/support.ts"

const rabbit = await Services.require("rabbitmq")

const Order = Schema.Struct({ id: Schema.String })

const counter = (metric: Metric.Counter<number>, tags: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, tags)), (state) => Number(state.count))

const releaseBroker = rabbit.available ? await Support.exclusiveBroker() : () => {}

describe.skipIf(!rabbit.available)(`tracing on RabbitMQ (${rabbit.url})`, () => {
  afterAll(releaseBroker)

  it.live("send → relay → receive → handle is one linked trace, and the counters add up", () => {
    const spans: Array<Tracer.NativeSpan> = []
    const tracer = Tracer.make({
      span(options) {
        const span = new Tracer.NativeSpan(options)
        spans.push(span)
        return span
      }
    })
    const topic = Topic.make(Harness.uniqueName("traced"), Order)
    const group = "shipping"
    const live = SqlOutbox.layer({ relay: { sweepInterval: "100 millis", statsInterval: "50 millis" } }).pipe(
      Layer.provideMerge(Support.tidy(RabbitTransport.layer(Support.options()))),
      Layer.provideMerge(SqliteClient.layer({ filename: ":memory:" })),
      Layer.provideMerge(Observability.layer),
      Layer.provideMerge(Layer.succeed(Tracer.Tracer, tracer))
    )
    return Effect.gen(function* () {
      let handled = 0
      yield* Consumer.start({
        topic,
        group,
        handler: () =>
          Effect.sync(() => {
            handled++
          })
      })
      yield* Publisher.send(topic, { id: "o-1" })
      yield* Harness.eventually("the message handled", () => handled === 1)
      yield* Harness.eventually("the handle span ended", () =>
        spans.some((s) => s.name === "lossless.handle" && s.status._tag === "Ended")
      )

      const one = (name: string) => {
        const found = spans.filter((s) => s.name === name)
        expect(found, name).toHaveLength(1)
        return found[0] as Tracer.NativeSpan
      }
      const send = one("lossless.send")
      const relay = one("lossless.relay")
      const receive = one("lossless.receive")
      const handle = one("lossless.handle")
      const parentId = (span: Tracer.NativeSpan) => (span.parent._tag === "Some" ? span.parent.value.spanId : undefined)
      expect(parentId(relay)).toBe(send.spanId)
      expect(parentId(receive)).toBe(relay.spanId)
      expect(parentId(handle)).toBe(receive.spanId)
      for (const span of [relay, receive, handle]) expect(span.traceId).toBe(send.traceId)
      expect(send.kind).toBe("producer")
      expect(relay.kind).toBe("producer")
      expect(receive.kind).toBe("consumer")
      expect(receive.attributes.get("messaging.system")).toBe("rabbitmq")

      const { metrics } = Observability
      expect(yield* counter(metrics.sent, { topic: topic.name })).toBe(1)
      expect(yield* counter(metrics.handled, { topic: topic.name, group })).toBe(1)
      // The relay's gauges were sampled: nothing is left waiting.
      // The relay sampled the outbox's counts into its gauges.
      const sampled = yield* Metric.snapshot
      expect(sampled.some((m) => m.id === "lossless_outbox_depth")).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(live))
  })
})
