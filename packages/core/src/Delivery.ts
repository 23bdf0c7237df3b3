/**
 * A delivery: one envelope handed to one consumer, with the three ways to
 * settle it.
 *
 * A delivery is settled at most once. Until it is settled the broker keeps
 * the message; when the subscription ends first, the broker redelivers it.
 * A settlement that the broker did not take (the channel is gone, it was
 * already settled) fails with `SettlementFailed`; it is never reported as a
 * success.
 *
 * @since 0.1.0
 */
import type { Duration, Effect } from "effect"
import type { Envelope } from "./Envelope.ts"
import type { SettlementFailed } from "./Errors.ts"

export interface RetryLaterOptions {
  /**
   * Whether the redelivery counts as a new attempt.
   * @default true
   */
  readonly countAttempt?: boolean | undefined
}

export interface Delivery {
  readonly envelope: Envelope
  /** The group this delivery was made to. */
  readonly group: string
  /** Processing attempt: 1 on first delivery, raised by one on each `retryLater`. */
  readonly attempt: number
  /** The broker handed this message out before and it was not settled (consumer crash, interruption). */
  readonly redelivered: boolean
  /**
   * Whether the delivery can still be settled. `false` once its channel or
   * subscription is gone: the broker will redeliver it, so running its handler
   * now would only repeat the work.
   */
  readonly settleable: () => boolean
  /** Done: the broker may forget the message. */
  readonly ack: Effect.Effect<void, SettlementFailed>
  /**
   * Redeliver after `delay`, with `attempt` raised by one — or unchanged with
   * `countAttempt: false`, for a hand-back that is not a failed attempt (a
   * delivery that came too early, a busy dedupe key).
   */
  readonly retryLater: (delay: Duration.Input, options?: RetryLaterOptions) => Effect.Effect<void, SettlementFailed>
  /** Move to the group's dead-letter destination with `reason`, then forget. */
  readonly deadLetter: (reason: string) => Effect.Effect<void, SettlementFailed>
}
