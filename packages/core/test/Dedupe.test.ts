import { expect, it } from "@effect/vitest"
import { Dedupe, StoreUnavailable } from "@lossless/core"
import { DedupeStoreSuite } from "@lossless/testkit"
import { Duration, Effect } from "effect"

DedupeStoreSuite.run({ name: "memory", make: Dedupe.memoryStore() })

it.effect("the memory store keeps at most `capacity` keys, dropping the oldest", () =>
  Effect.gen(function* () {
    const store = yield* Dedupe.memoryStore({ capacity: 2 })
    const lease = Duration.minutes(1)
    for (const k of ["a", "b", "c"]) {
      const claim = yield* store.claim(k, lease)
      if (claim._tag === "Acquired") yield* store.complete(k, claim.token, Duration.hours(1))
    }
    expect((yield* store.claim("c", lease))._tag).toBe("Done")
    expect((yield* store.claim("b", lease))._tag).toBe("Done")
    // "a" was the oldest and was dropped: it may run again.
    expect((yield* store.claim("a", lease))._tag).toBe("Acquired")
  })
)

it.effect("the always-down store fails every operation with StoreUnavailable", () =>
  Effect.gen(function* () {
    const store = Dedupe.unavailableStore("maintenance")
    const error = yield* Effect.flip(store.claim("k", Duration.seconds(1)))
    expect(error).toBeInstanceOf(StoreUnavailable)
    expect(error.message).toContain("maintenance")
  })
)

it("keys are scoped by group, so every group handles every message", () => {
  expect(Dedupe.storeKey("billing", "m-1")).not.toBe(Dedupe.storeKey("shipping", "m-1"))
})
