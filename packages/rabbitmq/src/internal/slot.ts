/**
 * A lazily made, shared resource that is made again once it dies (a channel
 * whose connection dropped). Concurrent callers share one creation instead of
 * each opening their own.
 */
import { Deferred, Effect, Exit } from "effect"

export interface Slot<A, E> {
  /** The live resource, made now if there is none. */
  readonly get: Effect.Effect<A, E>
  /** The live resource, if there is one, without making it. */
  readonly peek: () => A | undefined
}

type State<A, E> =
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Making"; readonly deferred: Deferred.Deferred<A, E> }
  | { readonly _tag: "Ready"; readonly value: A }

export const make = <A, E>(create: Effect.Effect<A, E>, alive: (value: A) => boolean): Slot<A, E> => {
  let state: State<A, E> = { _tag: "Empty" }
  const get: Effect.Effect<A, E> = Effect.suspend(() => {
    if (state._tag === "Ready" && alive(state.value)) return Effect.succeed(state.value)
    if (state._tag === "Making") return Deferred.await(state.deferred)
    const deferred = Deferred.makeUnsafe<A, E>()
    const making: State<A, E> = { _tag: "Making", deferred }
    state = making
    // Uninterruptible: others wait on this creation, so it must finish whoever started it.
    return create.pipe(
      Effect.exit,
      Effect.tap((exit) =>
        Effect.sync(() => {
          if (state === making) state = Exit.isSuccess(exit) ? { _tag: "Ready", value: exit.value } : { _tag: "Empty" }
          Deferred.doneUnsafe(deferred, exit)
        })
      ),
      Effect.uninterruptible,
      Effect.flatten
    )
  })
  return {
    get,
    peek: () => (state._tag === "Ready" && alive(state.value) ? state.value : undefined)
  }
}
