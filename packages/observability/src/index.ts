/**
 * @lossless/observability: export Lossless's spans and metrics.
 *
 * @since 0.1.0
 */

/** A Prometheus scrape endpoint. */
export * as Prometheus from "./Prometheus.ts"
/** Spans and metrics on, exported over OTLP and/or Prometheus. */
export * as Telemetry from "./Telemetry.ts"
