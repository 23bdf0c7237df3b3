/**
 * Dedupe: handle each message once per group, even when the broker delivers
 * it again (a producer retry after a lost confirm, a redelivery after a crash).
 *
 * The consumer asks the store to `claim` the message's key before running the
 * handler:
 * - `Acquired` → run the handler; on success `complete` the key (kept for
 *   `ttl`) and ack; on failure `release` it so the retry runs the handler again.
 * - `Done` → the message was handled before: ack without running the handler.
 * - `Busy` → another consumer holds the claim right now: retry later.
 *
 * A consumer that crashes mid-handler leaves its claim to expire after
 * `lease`; the redelivered message is then processed again. The key is
 * recorded only after the handler succeeded, so a failed handler's message is
 * never mistaken for a duplicate. The guarantee is at-least-once with
 * duplicates suppressed; an exactly-once effect needs the key written in the
 * same transaction as the handler's own writes (the SQL inbox).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Schedule } from "effect"
import { StoreUnavailable } from "./Errors.ts"
import type { Message } from "./Message.ts"
import * as MessageId from "./MessageId.ts"

/** The answer to a claim. */
export type Claim =
  /** Yours until the lease ends; `token` proves it to `complete` and `release`. */
  | { readonly _tag: "Acquired"; readonly token: string }
  /** Handled before; ack without handling. */
  | { readonly _tag: "Done" }
  /** Another consumer is handling it now. */
  | { readonly _tag: "Busy" }

/** Where claims and completed keys are kept. Every operation is atomic per key. */
export interface DedupeStore {
  readonly name: string
  /** Claims `key` for `lease` unless it is done or claimed by someone else. */
  readonly claim: (key: string, lease: Duration.Duration) => Effect.Effect<Claim, StoreUnavailable>
  /**
   * Marks a claimed key done for `ttl`. `false` when the claim was no longer
   * held (its lease ran out and another consumer claimed it).
   */
  readonly complete: (key: string, token: string, ttl: Duration.Duration) => Effect.Effect<boolean, StoreUnavailable>
  /** Gives a claim up so the message can be handled again; only the holder's token releases it. */
  readonly release: (key: string, token: string) => Effect.Effect<void, StoreUnavailable>
  /**
   * `claim` for several distinct keys in one round trip, answers in order.
   * Optional: without it `claimAll` claims the keys one by one, concurrently.
   */
  readonly claimMany?: (
    keys: ReadonlyArray<string>,
    lease: Duration.Duration
  ) => Effect.Effect<ReadonlyArray<Claim>, StoreUnavailable>
  /** `complete` for several distinct claims in one round trip, answers in order. Optional, like `claimMany`. */
  readonly completeMany?: (
    claims: ReadonlyArray<Completion>,
    ttl: Duration.Duration
  ) => Effect.Effect<ReadonlyArray<boolean>, StoreUnavailable>
}

/** A held claim to mark done. */
export interface Completion {
  readonly key: string
  readonly token: string
}

/** Claims distinct `keys` in one round trip where the store can (`claimMany`), else concurrently one by one. */
export const claimAll = (
  store: DedupeStore,
  keys: ReadonlyArray<string>,
  lease: Duration.Duration
): Effect.Effect<ReadonlyArray<Claim>, StoreUnavailable> =>
  store.claimMany !== undefined
    ? store.claimMany(keys, lease)
    : Effect.forEach(keys, (key) => store.claim(key, lease), { concurrency: "unbounded" })

/** Completes distinct claims in one round trip where the store can (`completeMany`), else concurrently one by one. */
export const completeAll = (
  store: DedupeStore,
  claims: ReadonlyArray<Completion>,
  ttl: Duration.Duration
): Effect.Effect<ReadonlyArray<boolean>, StoreUnavailable> =>
  store.completeMany !== undefined
    ? store.completeMany(claims, ttl)
    : Effect.forEach(claims, (claim) => store.complete(claim.key, claim.token, ttl), { concurrency: "unbounded" })

/**
 * A dedupe record kept in the same transaction as the handler's own writes
 * (the SQL inbox): the record and the handler's effects commit or roll back
 * together, which gives an exactly-once effect on at-least-once delivery —
 * for effects inside that database.
 */
export interface Inbox {
  readonly name: string
  /**
   * Runs `handle` in a transaction that also records `key`. Answers `false`
   * without running it when `key` was recorded before. Concurrent calls with
   * one key run `handle` at most once between them.
   */
  readonly once: <A, E, R>(
    key: string,
    handle: Effect.Effect<A, E, R>
  ) => Effect.Effect<boolean, E | StoreUnavailable, R>
}

/** Whether a dedupe store is a transactional inbox. */
export const isInbox = (store: DedupeStore | Inbox): store is Inbox => "once" in store

export interface DedupeOptions {
  /** A claim store (memory, Redis), or an `Inbox` that joins the handler's transaction. */
  readonly store: DedupeStore | Inbox
  /**
   * The dedupe key of a message; the message id by default. A business key
   * (an order id) also catches a message re-sent under a new id.
   */
  readonly key?: ((message: Message<unknown>) => string) | undefined
  /**
   * How long a claim holds before a crashed consumer's message may run again.
   * Make it longer than the slowest handler.
   * @default 5 minutes
   */
  readonly lease?: Duration.Input | undefined
  /**
   * How long a completed key is remembered; redeliveries later than this run again.
   * @default 24 hours
   */
  readonly ttl?: Duration.Input | undefined
  /**
   * Delay before retrying a message whose key another consumer holds.
   * @default 1 second
   */
  readonly busyDelay?: Duration.Input | undefined
  /**
   * When the store is unreachable: `"retry"` hands the message back to the
   * broker (not acked, not dead-lettered) with delays from `storeRetry`;
   * `"process"` runs the handler without dedupe. Each hand-back counts as an
   * attempt, so its delays grow; it never dead-letters the message.
   * @default "retry"
   */
  readonly onStoreUnavailable?: "retry" | "process" | undefined
  /**
   * Delays while the store is unreachable, by attempt. Never ends in the dead letters.
   * @default exponential from 1 second, capped at 1 minute
   */
  readonly storeRetry?: Schedule.Schedule<unknown, unknown> | undefined
}

/** Options with defaults applied. */
export interface Resolved {
  readonly store: DedupeStore | Inbox
  readonly key: (message: Message<unknown>) => string
  /** The key is the message id: known without decoding the payload. */
  readonly byId: boolean
  readonly lease: Duration.Duration
  readonly ttl: Duration.Duration
  readonly busyDelay: Duration.Duration
  readonly onStoreUnavailable: "retry" | "process"
  readonly storeRetry: Schedule.Schedule<unknown, unknown>
}

export const resolve = (options: DedupeOptions): Resolved => ({
  store: options.store,
  key: options.key ?? ((message) => message.id),
  byId: options.key === undefined,
  lease: Duration.fromInputUnsafe(options.lease ?? "5 minutes"),
  ttl: Duration.fromInputUnsafe(options.ttl ?? "24 hours"),
  busyDelay: Duration.fromInputUnsafe(options.busyDelay ?? "1 second"),
  onStoreUnavailable: options.onStoreUnavailable ?? "retry",
  storeRetry: options.storeRetry ?? Schedule.min([Schedule.exponential("1 second", 2), Schedule.spaced("1 minute")])
})

/** The store key of a message for a group: groups dedupe independently, as each must handle every message. */
export const storeKey = (group: string, key: string): string => `${group}:${key}`

const done: Claim = { _tag: "Done" }
const busy: Claim = { _tag: "Busy" }

type Entry =
  | { readonly state: "busy"; readonly token: string; readonly until: number }
  | { readonly state: "done"; readonly until: number }

/**
 * An in-process store, bounded to `capacity` keys (oldest dropped first) with
 * expiry on the Effect clock. It dedupes only within one process: use it for
 * a single consumer process or tests, and a shared store (Redis, SQL) otherwise.
 */
export const memoryStore = (options: { readonly capacity?: number | undefined } = {}): Effect.Effect<DedupeStore> =>
  Effect.gen(function* () {
    const capacity = Math.max(1, options.capacity ?? 100_000)
    // Insertion order is expiry order for done keys, so dropping the oldest drops the first to expire.
    const entries = new Map<string, Entry>()
    const live = (key: string, now: number): Entry | undefined => {
      const entry = entries.get(key)
      if (entry !== undefined && entry.until <= now) {
        entries.delete(key)
        return undefined
      }
      return entry
    }
    // Evicting one key at a time walks the deleted slots V8 leaves at the front of a
    // Map on every call (quadratic once full); a batch walks them once.
    const evictBatch = Math.max(1, Math.ceil(capacity / 128))
    const put = (key: string, entry: Entry) => {
      entries.delete(key)
      entries.set(key, entry)
      if (entries.size > capacity) {
        let excess = entries.size - capacity + evictBatch - 1
        for (const oldest of entries.keys()) {
          entries.delete(oldest)
          if (--excess <= 0) break
        }
      }
    }
    // Each operation is synchronous: nothing can interleave with it, so no lock is needed.
    const atomically = <A>(f: (now: number) => A) =>
      Effect.clockWith((clock) => Effect.sync(() => f(clock.currentTimeMillisUnsafe())))
    const claimOne = (key: string, token: string, until: number, now: number): Claim => {
      const entry = live(key, now)
      if (entry?.state === "done") return done
      if (entry?.state === "busy") return busy
      put(key, { state: "busy", token, until })
      return { _tag: "Acquired", token }
    }
    const completeOne = (key: string, token: string, until: number, now: number): boolean => {
      const entry = live(key, now)
      if (entry?.state !== "busy" || entry.token !== token) return false
      put(key, { state: "done", until })
      return true
    }
    return {
      name: "memory",
      claim: (key, lease) =>
        Effect.flatMap(MessageId.make, (token) =>
          atomically((now) => claimOne(key, token, now + Duration.toMillis(lease), now))
        ),
      // One token serves the whole batch: each key is claimed once, and a token only proves a claim on its own key.
      claimMany: (keys, lease) =>
        Effect.flatMap(MessageId.make, (token) =>
          atomically((now) => {
            const until = now + Duration.toMillis(lease)
            return keys.map((key) => claimOne(key, token, until, now))
          })
        ),
      complete: (key, token, ttl) => atomically((now) => completeOne(key, token, now + Duration.toMillis(ttl), now)),
      completeMany: (claims, ttl) =>
        atomically((now) => {
          const until = now + Duration.toMillis(ttl)
          return claims.map((claim) => completeOne(claim.key, claim.token, until, now))
        }),
      release: (key, token) =>
        atomically((now) => {
          const entry = live(key, now)
          if (entry?.state === "busy" && entry.token === token) entries.delete(key)
        })
    } satisfies DedupeStore
  })

/** Fails every operation: for tests of the store-down policy. */
export const unavailableStore = (reason = "store is down"): DedupeStore => {
  const down = Effect.fail(new StoreUnavailable({ store: "unavailable", reason }))
  return { name: "unavailable", claim: () => down, complete: () => down, release: () => down }
}
