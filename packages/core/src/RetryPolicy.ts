/**
 * What the consumer does when a handler fails.
 *
 * 1. Immediate retries: the handler runs again at once, up to `immediate`
 *    times, within the same delivery (for blips such as a lock timeout).
 * 2. Delayed retries: the message goes back to the broker with `retryLater`;
 *    the delay before attempt n+1 is the n-th step of `delayed`. The attempt
 *    count travels with the message, so the policy holds across consumer
 *    restarts and instances.
 * 3. Dead letter: when `delayed` ends, or the error is permanent, the message
 *    is moved to the group's dead letters with the error and attempt count.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Exit, Option, Pull, Schedule } from "effect"
import { PermanentFailure } from "./Errors.ts"

export interface RetryPolicy {
  /** Re-runs of the handler within one delivery before a delayed retry. */
  readonly immediate: number
  /** Delays of successive delayed retries; its input is the handler's error. When it ends, the message is dead-lettered. */
  readonly delayed: Schedule.Schedule<unknown, unknown>
  /** Errors no retry can fix: dead-lettered at once, without retries. */
  readonly isPermanent: (error: unknown) => boolean
}

/** Delayed retries after 1 s, 2 s, 4 s ... capped at 5 minutes, jittered, 8 in all. */
export const defaultDelayed: Schedule.Schedule<unknown, unknown> = Schedule.min([
  Schedule.exponential("1 second", 2),
  Schedule.spaced("5 minutes")
]).pipe(Schedule.jittered, Schedule.upTo({ times: 8 }))

/** Permanent: a `PermanentFailure`, or any error whose `retryable` flag is false on purpose. */
export const defaultIsPermanent = (error: unknown): boolean => error instanceof PermanentFailure

/** Two immediate retries, then `defaultDelayed`, then the dead letter. */
export const defaults: RetryPolicy = {
  immediate: 2,
  delayed: defaultDelayed,
  isPermanent: defaultIsPermanent
}

/** A policy from the defaults and overrides. */
export const make = (overrides: Partial<RetryPolicy> = {}): RetryPolicy => ({ ...defaults, ...overrides })

/** No retries at all: the first failure dead-letters. */
export const none: RetryPolicy = { immediate: 0, delayed: Schedule.recurs(0), isPermanent: () => true }

/**
 * The delay a schedule gives for its `step`-th recurrence (1-based), or none
 * when it has ended by then. The schedule is replayed from the start, so the
 * step count alone (carried by the message) says where a retry stands; use
 * schedules bounded by count, not by elapsed time.
 */
export const nthDelay = (
  schedule: Schedule.Schedule<unknown, unknown>,
  step: number,
  input: unknown
): Effect.Effect<Option.Option<Duration.Duration>> =>
  Effect.gen(function* () {
    const next = yield* Schedule.toStep(schedule)
    let delay: Duration.Duration = Duration.zero
    for (let n = 1; n <= step; n++) {
      const exit = yield* Effect.exit(next(0, input))
      if (Exit.isFailure(exit)) {
        if (Pull.isDoneCause(exit.cause)) return Option.none()
        return yield* Effect.failCause(exit.cause)
      }
      delay = exit.value[1]
    }
    return Option.some(delay)
  }).pipe(Effect.orDie)

/**
 * The delay before the next attempt of a message whose `attempt`-th attempt
 * failed with `error`, or none when the schedule has ended (dead-letter it).
 */
export const delayAfter = (
  policy: RetryPolicy,
  attempt: number,
  error: unknown
): Effect.Effect<Option.Option<Duration.Duration>> => nthDelay(policy.delayed, attempt, error)
