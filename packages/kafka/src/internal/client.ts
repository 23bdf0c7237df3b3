/**
 * The kafkajs client of a transport: brokers, TLS, SASL and timeouts from the
 * settings, and kafkajs's log lines routed to the Effect logger.
 */
import { Duration, Effect, Redacted } from "effect"
import { Kafka, type KafkaConfig as KafkajsConfig, type LogEntry, logLevel, type SASLOptions } from "kafkajs"
import type { KafkaConfig, LogLevel } from "../KafkaConfig.ts"

const levels: Record<LogLevel, logLevel> = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG
}

const millis = (duration: Duration.Duration): number => Math.max(1, Math.round(Duration.toMillis(duration)))

/** Builds the client; its log lines run as Effect log calls in `context` (logger, annotations). */
export const make = (config: KafkaConfig, runLog: (effect: Effect.Effect<void>) => void): Kafka => {
  const options: KafkajsConfig = {
    clientId: config.clientId,
    brokers: [...config.brokers],
    connectionTimeout: millis(config.connectTimeout),
    requestTimeout: millis(config.requestTimeout),
    // Reconnects and metadata refreshes; the operations themselves are retried by their own settings.
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
    logLevel: levels[config.logLevel],
    logCreator:
      () =>
      ({ level, namespace, log }: LogEntry) => {
        const { message, ...extra } = log
        const text = `lossless: kafkajs ${namespace}: ${message}`
        const details = Object.keys(extra).length === 0 ? [] : [extra]
        if (level <= logLevel.ERROR) runLog(Effect.logError(text, ...details))
        else if (level === logLevel.WARN) runLog(Effect.logWarning(text, ...details))
        else if (level === logLevel.INFO) runLog(Effect.logInfo(text, ...details))
        else runLog(Effect.logDebug(text, ...details))
      }
  }
  if (config.ssl !== false) options.ssl = config.ssl === true ? true : { ...config.ssl }
  if (config.sasl !== undefined) {
    options.sasl = {
      mechanism: config.sasl.mechanism,
      username: config.sasl.username,
      password: Redacted.value(config.sasl.password)
    } as SASLOptions
  }
  return new Kafka(options)
}
