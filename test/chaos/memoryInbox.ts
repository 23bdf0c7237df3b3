/**
 * An inbox in memory for the emulator chaos tests, standing in for the SQL
 * inbox: the effect and the key are recorded in one uninterruptible step, one
 * key at a time.
 */
import type { Dedupe } from "@lossless/core"
import { Effect } from "effect"

export const memoryInbox = (): Dedupe.Inbox & { readonly found: () => number } => {
  const keys = new Set<string>()
  const running = new Map<string, Promise<void>>()
  let found = 0
  return {
    name: "memory inbox",
    found: () => found,
    once: (key, handle) =>
      Effect.gen(function* () {
        while (running.has(key)) yield* Effect.promise(() => running.get(key) as Promise<void>)
        if (keys.has(key)) {
          found++
          return false
        }
        let release = () => {}
        running.set(
          key,
          new Promise<void>((resolve) => {
            release = resolve
          })
        )
        return yield* Effect.uninterruptible(Effect.map(handle, () => keys.add(key) !== undefined)).pipe(
          Effect.ensuring(
            Effect.sync(() => {
              running.delete(key)
              release()
            })
          )
        )
      })
  }
}
