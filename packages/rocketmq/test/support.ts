/**
 * Shared pieces of the RocketMQ suites: transport options for an emulator,
 * and native half messages that "crash" right after the local transaction.
 */
import { type Envelope, HalfMessage } from "@lossless/core"
import { RocketConfig, RocketHalfMessages } from "@lossless/rocketmq"
import type { RocketEmulator } from "@lossless/testkit/rocketmq"
import { Effect, Layer } from "effect"

/** Transport options for an emulator, with durations short enough for tests. */
export const options = (
  emulator: RocketEmulator,
  overrides: Partial<RocketConfig.RocketOptions> = {}
): RocketConfig.RocketOptions => ({
  url: `rocketmq://${emulator.endpoint}`,
  invisibleDuration: "5 seconds",
  longPolling: "5 seconds",
  ...overrides
})

/** Creates topics on the emulator as an operator's admin call would. */
export const createTopicsOn =
  (emulator: RocketEmulator) =>
  (topics: ReadonlyArray<string>): Effect.Effect<void> =>
    Effect.sync(() => {
      for (const topic of topics) emulator.createTopic(topic)
    })

/**
 * Half messages that prepare, run the local transaction, and then stop as a
 * dying process would: no commit, no rollback. Each send has a producer of
 * its own that is gone afterwards, so only the check-back can decide.
 */
export const crashingAfterLocal = (
  options: RocketConfig.RocketOptions
): Layer.Layer<HalfMessage.HalfMessages, unknown> =>
  Layer.effect(
    HalfMessage.HalfMessages,
    Effect.map(RocketConfig.make(options), (config) => ({
      interceptors: [],
      transact: <A, E, R>(envelope: Envelope.Envelope, local: Effect.Effect<A, E, R>) =>
        Effect.scoped(
          Effect.gen(function* () {
            const native = yield* RocketHalfMessages.make(config, {
              checkBacks: [{ topic: envelope.topic, check: () => Effect.succeed("unknown" as const) }]
            }).pipe(Effect.orDie)
            yield* native.prepare(envelope)
            return yield* local
          })
        )
    }))
  )
