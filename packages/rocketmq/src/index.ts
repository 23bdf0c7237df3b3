/**
 * @lossless/rocketmq: the RocketMQ 5 transport for Lossless, on
 * rocketmq-client-nodejs (gRPC proxy protocol).
 *
 * @since 0.1.0
 */

/** Settings: URL, strictness, FIFO, durations and bounds; from code, `Config` or the URL's query string. */
export * as RocketConfig from "./RocketConfig.ts"
/** Status codes and client exceptions as Lossless errors. */
export * as RocketError from "./RocketError.ts"
/** Native half messages: transactional producer, commit, rollback, check-back. */
export * as RocketHalfMessages from "./RocketHalfMessages.ts"
/** Consumer group and dead-letter names. */
export * as RocketTopology from "./RocketTopology.ts"
/** The transport, its layers and its `rocketmq://` URL plugin. */
export * as RocketTransport from "./RocketTransport.ts"
