/**
 * @lossless/rabbitmq: the RabbitMQ transport for Lossless, on amqplib.
 *
 * @since 0.1.0
 */

/** Settings: URL, queue type, bounds, schedules; from code, `Config` or the URL's query string. */
export * as RabbitConfig from "./RabbitConfig.ts"
/** Reply codes and amqplib errors as Lossless errors. */
export * as RabbitError from "./RabbitError.ts"
/** Exchange and queue names and arguments. */
export * as RabbitTopology from "./RabbitTopology.ts"
/** The transport, its layers and its `amqp://` / `amqps://` URL plugin. */
export * as RabbitTransport from "./RabbitTransport.ts"
