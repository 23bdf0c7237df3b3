/**
 * @lossless/kafka: the Kafka transport for Lossless, on kafkajs.
 *
 * @since 0.1.0
 */

/** Settings: brokers, topic creation, timings; from code, `Config` or the URL's query string. */
export * as KafkaConfig from "./KafkaConfig.ts"
/** Broker error codes and kafkajs errors as Lossless errors. */
export * as KafkaError from "./KafkaError.ts"
/** Topic and consumer group names. */
export * as KafkaTopology from "./KafkaTopology.ts"
/** The transport, its layers and its `kafka://` / `kafkas://` URL plugin. */
export * as KafkaTransport from "./KafkaTransport.ts"
