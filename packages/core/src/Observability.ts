/**
 * Spans and metrics for sends, relays, receives and handlers, with the trace
 * carried from producer to consumer in the `lossless-traceparent` header
 * (W3C trace context), so one trace follows a message across processes.
 *
 * Off by default and then free: publishers and consumers read `Enabled` once,
 * when they start, and skip all of it. Turn it on with `layer` (or provide
 * `Enabled` yourself) and export with Effect's tracer and metric exporters —
 * `@lossless/observability` wires OTLP and a Prometheus endpoint.
 *
 * Spans: `lossless.send` (producer), `lossless.relay` (outbox relay, one per
 * message, a child of its send), `lossless.receive` (consumer, a child of the
 * send or relay that published it), `lossless.handle` (the handler, a child
 * of the receive).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Metric, Tracer } from "effect"
import type { Envelope } from "./Envelope.ts"
import * as Headers from "./Headers.ts"
import type { Interceptor } from "./Publisher.ts"

/** Whether Lossless records spans and metrics; read by publishers and consumers when they start. */
export const Enabled = Context.Reference<boolean>("@lossless/core/Observability/Enabled", {
  defaultValue: () => false
})

/** Turns spans and metrics on for what is built under it. */
export const layer: Layer.Layer<never> = Layer.succeed(Enabled, true)

// W3C trace context: version 00, 32 hex trace id, 16 hex parent id, 2 hex flags.
const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The `traceparent` value of a span. */
export const formatTraceparent = (span: Tracer.AnySpan): string =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

/** The remote span a `traceparent` value names; `undefined` when it is missing or malformed. */
export const parseTraceparent = (value: string | undefined): Tracer.ExternalSpan | undefined => {
  if (value === undefined) return undefined
  const match = traceparentPattern.exec(value.trim().toLowerCase())
  if (match === null) return undefined
  const [, traceId, spanId, flags] = match as unknown as [string, string, string, string]
  // All-zero ids are invalid by the specification.
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined
  return Tracer.externalSpan({ traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 })
}

/** The span a delivered envelope's producer left in its headers. */
export const parentOf = (envelope: Envelope): Tracer.ExternalSpan | undefined =>
  parseTraceparent(envelope.headers[Headers.Traceparent])

/**
 * Stamps the current span as each envelope's `traceparent`, unless it already
 * carries one (a re-send keeps the trace it started in).
 */
export const traceparentInterceptor: Interceptor = (envelopes) =>
  Effect.map(Effect.option(Effect.currentSpan), (span) => {
    if (span._tag === "None") return envelopes
    const value = formatTraceparent(span.value)
    return envelopes.map((envelope) =>
      envelope.headers[Headers.Traceparent] !== undefined
        ? envelope
        : { ...envelope, headers: { ...envelope.headers, [Headers.Traceparent]: value } }
    )
  })

/** Attributes shared by every span of a topic, following the OpenTelemetry messaging conventions. */
export const attributes = (
  transport: string,
  topic: string,
  extra: Record<string, unknown> = {}
): Record<string, unknown> => ({
  "messaging.system": transport,
  "messaging.destination.name": topic,
  ...extra
})

const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })

/** The counters Lossless keeps, each with `topic` (and `group` on the consumer side) attributes. */
export const metrics = {
  sent: counter("lossless_messages_sent_total", "Messages handed to a publisher to send"),
  confirmed: counter("lossless_messages_confirmed_total", "Messages the broker confirmed"),
  sendRetries: counter("lossless_send_retries_total", "Publish attempts after the first"),
  sendFailed: counter("lossless_messages_send_failed_total", "Messages a send gave up on"),
  handled: counter("lossless_messages_handled_total", "Messages whose handler succeeded and that were acked"),
  handlerFailures: counter("lossless_handler_failures_total", "Handler runs that failed"),
  retried: counter("lossless_messages_retried_total", "Messages handed back for a delayed retry"),
  deadLettered: counter("lossless_messages_dead_lettered_total", "Messages sent to a dead-letter destination"),
  deduped: counter(
    "lossless_messages_deduplicated_total",
    "Deliveries acked without running the handler: handled before"
  )
} as const

/** Adds `n` to a counter with the given attributes. */
export const count = (
  metric: Metric.Metric<number, unknown>,
  n: number,
  tags: Record<string, string>
): Effect.Effect<void> => (n === 0 ? Effect.void : Metric.update(Metric.withAttributes(metric, tags), n))
