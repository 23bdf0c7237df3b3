/**
 * The transport contract: the few primitives an adapter implements. Core
 * builds every guarantee (retries, dead-letter policy, dedupe, outbox, loss
 * detection) on top of them, once.
 *
 * Rules every implementation keeps:
 * - `publish` resolves an envelope as confirmed only when the broker durably
 *   accepted it; a message the broker could not route is a failure, never a
 *   success. No fire-and-forget.
 * - `subscribe` is a scoped stream: deliveries still unsettled when the stream
 *   ends are returned to the broker for redelivery. At most `prefetch`
 *   deliveries are unsettled at once.
 * - A settlement the broker did not take fails; it is never reported as a success.
 * - `ensureTopology` is idempotent.
 *
 * @since 0.1.0
 */
import { Context, Effect, Result, type Stream } from "effect"
import type { Capabilities } from "./Capabilities.ts"
import type { Delivery } from "./Delivery.ts"
import type { Envelope } from "./Envelope.ts"
import type { PublishError, SubscribeError, TopologyError } from "./Errors.ts"

/** Topics and the groups consuming them, declared before use. */
export interface Topology {
  readonly topics: ReadonlyArray<string>
  readonly groups: ReadonlyArray<{ readonly topic: string; readonly group: string }>
}

export interface SubscribeOptions {
  /** Most deliveries unsettled at once on this subscription. */
  readonly prefetch: number
}

/** The outcome of publishing one envelope: confirmed, or why not. */
export type PublishResult = Result.Result<void, PublishError>

export interface TransportShape {
  /** The adapter's name, as in logs and metrics ("memory", "rabbitmq"). */
  readonly name: string
  readonly capabilities: Capabilities
  /** Declares topics, groups and whatever they need (retry and dead-letter destinations). Idempotent. */
  readonly ensureTopology: (topology: Topology) => Effect.Effect<void, TopologyError>
  /**
   * Publishes a batch. Resolves once every envelope is settled by the broker,
   * with one result per envelope in input order: success only when the broker
   * confirmed durable storage.
   */
  readonly publish: (envelopes: ReadonlyArray<Envelope>) => Effect.Effect<ReadonlyArray<PublishResult>>
  /** Deliveries of `topic` to `group`, at most `prefetch` unsettled at once. */
  readonly subscribe: (
    topic: string,
    group: string,
    options: SubscribeOptions
  ) => Stream.Stream<Delivery, SubscribeError>
  /** Deliveries from `group`'s dead-letter destination for `topic`, for inspection and re-drive. */
  readonly subscribeDeadLetters: (
    topic: string,
    group: string,
    options: SubscribeOptions
  ) => Stream.Stream<Delivery, SubscribeError>
}

/** The transport in use, chosen by URL (see `TransportUrl`) or provided directly. */
export class Transport extends Context.Service<Transport, TransportShape>()("@lossless/core/Transport") {}

/** Publishes one envelope, failing with why it was not confirmed. */
export const publishOne = (envelope: Envelope): Effect.Effect<void, PublishError, Transport> =>
  Transport.use((transport) =>
    Effect.flatMap(transport.publish([envelope]), (results) => {
      const result = results[0]
      if (result === undefined) return Effect.die(new Error(`${transport.name}.publish returned no result`))
      return Result.isSuccess(result) ? Effect.void : Effect.fail(result.failure)
    })
  )

/** One failure result per envelope, for a failure that hit the whole batch. */
export const failAll = (envelopes: ReadonlyArray<Envelope>, error: PublishError): ReadonlyArray<PublishResult> =>
  envelopes.map(() => Result.fail(error))
