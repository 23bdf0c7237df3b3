/**
 * What a transport does natively. Core reads these to emulate what is
 * missing (for example delayed delivery) instead of every adapter doing it,
 * and the conformance suite reads them to skip, visibly, the cases a
 * transport cannot serve.
 *
 * @since 0.1.0
 */

/** The scope within which a broker keeps messages in publish order. */
export type Ordering =
  /** No order is promised. */
  | "none"
  /** One queue per group keeps order for a single consumer (RabbitMQ, memory). */
  | "queue"
  /** Messages with one key keep order even across competing consumers (Kafka partitions, RocketMQ FIFO groups). */
  | "key"

export interface Capabilities {
  /** Accepted messages survive a broker restart. */
  readonly durable: boolean
  /** `deliverAt` on publish is honoured by the broker; otherwise core delays delivery itself. */
  readonly delayedDelivery: boolean
  /** Dead-lettering uses a broker feature (DLX, DLQ) rather than publish-then-ack. */
  readonly nativeDeadLetter: boolean
  /** Prepared (half) messages with commit, rollback and check-back. */
  readonly halfMessages: boolean
  /** Ordering scope, see `Ordering`. */
  readonly ordering: Ordering
  /** The broker tells whether a delivery was delivered before. */
  readonly redeliveryFlag: boolean
  /** Largest payload the broker accepts, when it has a fixed limit. */
  readonly maxMessageBytes: number | undefined
}

export const make = (capabilities: Capabilities): Capabilities => capabilities
