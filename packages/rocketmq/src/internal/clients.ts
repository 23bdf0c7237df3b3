/**
 * Starting and stopping rocketmq-client-nodejs clients inside a scope, with
 * the client's log lines routed to Effect's logger instead of its default
 * log file.
 */

import { format } from "node:util"
import { type Context, Duration, Effect, type Scope } from "effect"
import {
  Producer,
  type ProducerOptions,
  SimpleConsumer,
  type SimpleConsumerOptions,
  type TransactionChecker
} from "rocketmq-client-nodejs"
import * as RocketConfig from "../RocketConfig.ts"
import * as RocketError from "../RocketError.ts"

/** The client's logger: warnings and errors become debug lines of the Effect logger (the transport reports failures itself). */
const logger = (context: Context.Context<never>) => {
  const emit = (level: string, args: ReadonlyArray<unknown>) => {
    Effect.runForkWith(context)(Effect.logDebug(`rocketmq client ${level}: ${format(...(args as Array<unknown>))}`))
  }
  return {
    info: () => {},
    debug: () => {},
    warn: (...args: Array<unknown>) => emit("warn", args),
    error: (...args: Array<unknown>) => emit("error", args),
    close: () => {}
  }
}

const base = (config: RocketConfig.RocketConfig, context: Context.Context<never>) => {
  const credentials = RocketConfig.credentials(config)
  return {
    endpoints: config.endpoints,
    namespace: config.namespace,
    sslEnabled: config.ssl,
    requestTimeout: Math.ceil(Duration.toMillis(config.requestTimeout)),
    logger: logger(context),
    ...(credentials === undefined ? {} : { sessionCredentials: credentials })
  }
}

/** Why a client could not start: the failure as a core error. */
export type StartError = ReturnType<typeof RocketError.subscribeFailure>

/**
 * Starts a client on the connect schedule; shuts it down with the scope.
 * A missing topic or group is not retried.
 */
const started = <C extends { startup(): Promise<void>; shutdown(): Promise<void> }>(
  config: RocketConfig.RocketConfig,
  create: () => C,
  names: { readonly topic: string; readonly group: string }
): Effect.Effect<C, StartError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async (signal) => {
        const client = create()
        // A startup cut short (its timeout) must not leave the client's timers and streams behind.
        const abandon = () => void client.shutdown().catch(() => {})
        signal.addEventListener("abort", abandon, { once: true })
        try {
          await client.startup()
        } catch (error) {
          await client.shutdown().catch(() => {})
          throw error
        } finally {
          signal.removeEventListener("abort", abandon)
        }
        return client
      },
      catch: (error) => RocketError.subscribeFailure(error, names)
    }).pipe(
      // The client waits for the proxy's first settings without a deadline of its own.
      Effect.timeoutOrElse({
        duration: config.connectTimeout,
        orElse: () =>
          Effect.fail(
            RocketError.connectionLost(
              `no answer from the proxy within ${Duration.format(config.connectTimeout)} while starting a client`
            )
          )
      }),
      Effect.retry({
        schedule: config.connectSchedule,
        while: (error) => error._tag === "ConnectionLost"
      }),
      Effect.mapError((error) =>
        error._tag === "ConnectionLost"
          ? RocketError.unavailable(`cannot start a client at ${RocketConfig.display(config)}: ${error.reason}`)
          : error
      )
    ),
    (client) => Effect.promise(() => client.shutdown().catch(() => {})).pipe(Effect.timeoutOption("5 seconds"))
  )

/** A producer that sends each message once (core owns retries), optionally transactional for `topics`. */
export const producer = (
  config: RocketConfig.RocketConfig,
  options: { readonly topics?: ReadonlyArray<string>; readonly checker?: TransactionChecker } = {}
): Effect.Effect<Producer, StartError, Scope.Scope> =>
  Effect.flatMap(Effect.context<never>(), (context) =>
    started(
      config,
      () => {
        const producerOptions: ProducerOptions = { ...base(config, context), maxAttempts: 1 }
        if (options.topics !== undefined && options.topics.length > 0) producerOptions.topics = [...options.topics]
        if (options.checker !== undefined) producerOptions.checker = options.checker
        return new Producer(producerOptions)
      },
      { topic: options.topics?.[0] ?? "", group: "" }
    )
  )

/** A simple consumer of `topic` in `consumerGroup`, all tags. */
export const consumer = (
  config: RocketConfig.RocketConfig,
  names: { readonly topic: string; readonly group: string; readonly consumerGroup: string }
): Effect.Effect<SimpleConsumer, StartError, Scope.Scope> =>
  Effect.flatMap(Effect.context<never>(), (context) =>
    started(
      config,
      () => {
        const consumerOptions: SimpleConsumerOptions = {
          ...base(config, context),
          consumerGroup: names.consumerGroup,
          subscriptions: new Map([[names.topic, "*"]]),
          awaitDuration: Math.ceil(Duration.toMillis(config.longPolling)),
          // Receives are retried by the transport on its own schedule.
          maxRetryAttempts: 1
        }
        return new SimpleConsumer(consumerOptions)
      },
      names
    )
  )
