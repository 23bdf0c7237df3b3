/**
 * Transactions that tell the store's failures from the caller's.
 *
 * A store runs the caller's effect inside its own transaction (the inbox's
 * handler, a half message's local work). Both can fail with a `SqlError`:
 * the store's statements, BEGIN and COMMIT mean the store is unavailable;
 * the caller's mean whatever the caller decides. The caller's failures are
 * wrapped on the way in and unwrapped on the way out, so neither is mistaken
 * for the other.
 */
import { StoreUnavailable } from "@lossless/core"
import { Effect } from "effect"
import { type SqlClient, SqlError } from "effect/sql"

/** A SQL failure of the store itself, as core reports it. */
export const unavailable =
  (store: string) =>
  (error: SqlError.SqlError): StoreUnavailable =>
    new StoreUnavailable({ store, reason: `${error.reason._tag}: ${error.message}` })

/** Maps a store statement's `SqlError` to `StoreUnavailable`. */
export const orUnavailable =
  (store: string) =>
  <A, R>(effect: Effect.Effect<A, SqlError.SqlError, R>): Effect.Effect<A, StoreUnavailable, R> =>
    Effect.mapError(effect, unavailable(store))

/** A failure of the caller's effect, carried through the store's transaction unchanged. */
class CallerFailure<E> {
  readonly error: E
  constructor(error: E) {
    this.error = error
  }
}

/** Marks the caller's effect inside `transaction`. */
export const caller = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, CallerFailure<E>, R> =>
  Effect.mapError(effect, (error) => new CallerFailure(error))

/**
 * Runs `body` in a transaction of `sql` (a savepoint inside one already
 * open): it commits when `body` succeeds and rolls back when it fails. The
 * caller's failures come out as they were; BEGIN or COMMIT failing becomes
 * `StoreUnavailable`.
 */
export const transaction = <A, E, R>(
  sql: SqlClient.SqlClient,
  store: string,
  body: Effect.Effect<A, CallerFailure<E> | StoreUnavailable | SqlError.SqlError, R>
): Effect.Effect<A, E | StoreUnavailable, R> =>
  sql.withTransaction(body).pipe(
    Effect.catch((failure): Effect.Effect<never, E | StoreUnavailable> => {
      if (failure instanceof CallerFailure) return Effect.fail(failure.error)
      if (SqlError.isSqlError(failure)) return Effect.fail(unavailable(store)(failure))
      return Effect.fail(failure)
    })
  ) as Effect.Effect<A, E | StoreUnavailable, R>
