/**
 * @lossless/client: Lossless for plain Promise code. A client from a URL
 * with confirmed sends, transactional sends and consumers whose handlers are
 * async functions; the same core underneath, no Effect required.
 *
 * ```ts
 * import { createClient } from "@lossless/client"
 * import { MemoryTransport } from "@lossless/memory"
 *
 * const client = await createClient({ plugins: [MemoryTransport.plugin] })
 * ```
 *
 * @since 0.1.0
 */

/** The adapter package for a URL's scheme, loaded when no plugins are passed. */
export * as Adapters from "./Adapters.ts"
export {
  type CheckBack,
  type Client,
  type ClientOptions,
  type ConsumeOptions,
  type Consumer,
  checkBack,
  createClient,
  type DeadLetter,
  type Decision,
  type DedupeSettings,
  type DurationInput,
  type Handler,
  type HandlerContext,
  type LossDetectionSettings,
  type Outgoing,
  type ReceivedMessage,
  type RetrySettings,
  type SendOptions,
  type SendSettings,
  type Sent,
  type TransactionalSettings
} from "./Client.ts"
export * from "./ClientError.ts"
export { type TopicLike, type TopicSchema, topic, type Validator } from "./Topics.ts"
