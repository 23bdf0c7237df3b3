/**
 * @lossless/core: reliable, broker-agnostic messaging on Effect.
 *
 * The model: a `Topic` is a named, typed stream; a `Message` is encoded into
 * an `Envelope` (bytes and headers) that a `Transport` carries. Transports
 * are chosen by URL (`TransportUrl`) from the plugins the adapters export.
 *
 * @since 0.1.0
 */

/** What a transport does natively. */
export * as Capabilities from "./Capabilities.ts"
/** Payload codecs (JSON by default). */
export * as Codec from "./Codec.ts"
/** The consumer runtime: ack after success, retry, dead letter, graceful shutdown. */
export * as Consumer from "./Consumer.ts"
/** Dead-letter envelopes and their reason headers. */
export * as DeadLetter from "./DeadLetter.ts"
/** Handle each message once per group: claim, complete, release over a store. */
export * as Dedupe from "./Dedupe.ts"
/** A delivery and its settlements: ack, retryLater, deadLetter. */
export * as Delivery from "./Delivery.ts"
/** What crosses the wire, and the one mapping to broker headers. */
export * as Envelope from "./Envelope.ts"
/** Every typed error, each saying whether it is retryable. */
export * from "./Errors.ts"
/** Half messages: delivered if and only if a local transaction commits. */
export * as HalfMessage from "./HalfMessage.ts"
/** Reserved header names. */
export * as Headers from "./Headers.ts"
/** Sequence stamps on send and a detector of lost and duplicated messages on receive. */
export * as LossDetector from "./LossDetector.ts"
/** Typed messages; the encode/decode boundary. */
export * as Message from "./Message.ts"
/** UUIDv7 message ids. */
export * as MessageId from "./MessageId.ts"
/** Portable topic and group names. */
export * as Names from "./Names.ts"
/** Spans, metrics and trace context across processes; off by default. */
export * as Observability from "./Observability.ts"
/** The transactional outbox: rows, statuses and the store contract. */
export * as Outbox from "./Outbox.ts"
/** The relay that publishes the outbox. */
export * as OutboxRelay from "./OutboxRelay.ts"
/** Reliable publish: confirmed sends with retries, timeouts and backpressure. */
export * as Publisher from "./Publisher.ts"
/** What the consumer does when a handler fails. */
export * as RetryPolicy from "./RetryPolicy.ts"
/** Named, typed topics. */
export * as Topic from "./Topic.ts"
/** The transport contract adapters implement. */
export * as Transport from "./Transport.ts"
/** Choosing a transport from a URL (`LOSSLESS_URL`). */
export * as TransportUrl from "./TransportUrl.ts"
