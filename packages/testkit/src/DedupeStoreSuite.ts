/**
 * The shared suite for dedupe stores: every `DedupeStore` (memory, Redis,
 * SQL) runs it, so the claim protocol means the same thing on each.
 *
 * ```ts
 * DedupeStoreSuite.run({ name: "memory", make: Dedupe.memoryStore() })
 * ```
 *
 * Expiry cases run on the real clock with short leases, because a store such
 * as Redis keeps time itself.
 *
 * @since 0.1.0
 */
import { describe, expect, it } from "@effect/vitest"
import { Dedupe } from "@lossless/core"
import { Duration, Effect, type Scope } from "effect"
import { uniqueName } from "./Harness.ts"

export interface DedupeStoreSuiteOptions {
  readonly name: string
  /** A store; built afresh for each case, in the case's scope. */
  readonly make: Effect.Effect<Dedupe.DedupeStore, unknown, Scope.Scope>
}

const lease = Duration.seconds(30)
const ttl = Duration.minutes(1)

const acquired = (claim: Dedupe.Claim): string => {
  if (claim._tag !== "Acquired") throw new Error(`expected Acquired, got ${claim._tag}`)
  return claim.token
}

/** Registers the dedupe store suite. */
export const run = ({ name, make }: DedupeStoreSuiteOptions): void => {
  describe(`dedupe store conformance: ${name}`, () => {
    const key = () => uniqueName("key")

    it.live("the first claim acquires, a second is busy, and once completed every claim is done", () =>
      Effect.gen(function* () {
        const store = yield* make
        const k = key()
        const token = acquired(yield* store.claim(k, lease))
        expect(yield* store.claim(k, lease)).toEqual({ _tag: "Busy" })
        expect(yield* store.complete(k, token, ttl)).toBe(true)
        expect(yield* store.claim(k, lease)).toEqual({ _tag: "Done" })
        expect(yield* store.claim(k, lease)).toEqual({ _tag: "Done" })
        acquired(yield* store.claim(key(), lease))
      })
    )

    it.live("only the holder's token releases or completes a claim", () =>
      Effect.gen(function* () {
        const store = yield* make
        const k = key()
        const token = acquired(yield* store.claim(k, lease))
        yield* store.release(k, "someone-else")
        expect(yield* store.claim(k, lease)).toEqual({ _tag: "Busy" })
        expect(yield* store.complete(k, "someone-else", ttl)).toBe(false)
        expect(yield* store.claim(k, lease)).toEqual({ _tag: "Busy" })
        yield* store.release(k, token)
        const next = acquired(yield* store.claim(k, lease))
        expect(next).not.toBe(token)
        // The old holder can no longer complete what the new one holds.
        expect(yield* store.complete(k, token, ttl)).toBe(false)
        expect(yield* store.complete(k, next, ttl)).toBe(true)
        // Releasing a done key leaves it done.
        yield* store.release(k, next)
        expect(yield* store.claim(k, lease)).toEqual({ _tag: "Done" })
      })
    )

    it.live("an unreleased claim (a crashed consumer) expires after its lease", () =>
      Effect.gen(function* () {
        const store = yield* make
        const k = key()
        const crashed = acquired(yield* store.claim(k, Duration.millis(200)))
        expect(yield* store.claim(k, lease)).toEqual({ _tag: "Busy" })
        yield* Effect.sleep("300 millis")
        const retaken = acquired(yield* store.claim(k, lease))
        expect(yield* store.complete(k, crashed, ttl)).toBe(false)
        expect(yield* store.complete(k, retaken, ttl)).toBe(true)
      })
    )

    it.live("a done key is forgotten after its ttl", () =>
      Effect.gen(function* () {
        const store = yield* make
        const k = key()
        const token = acquired(yield* store.claim(k, lease))
        expect(yield* store.complete(k, token, Duration.millis(200))).toBe(true)
        expect(yield* store.claim(k, lease)).toEqual({ _tag: "Done" })
        yield* Effect.sleep("300 millis")
        acquired(yield* store.claim(k, lease))
      })
    )

    it.live("of many concurrent claims on one key, exactly one acquires", () =>
      Effect.gen(function* () {
        const store = yield* make
        const k = key()
        const claims = yield* Effect.forEach(Array.from({ length: 200 }), () => store.claim(k, lease), {
          concurrency: "unbounded"
        })
        expect(claims.filter((c) => c._tag === "Acquired")).toHaveLength(1)
        expect(claims.filter((c) => c._tag === "Busy")).toHaveLength(199)
      })
    )

    it.live("batch claims and completions answer per key, in order, like the single operations", () =>
      Effect.gen(function* () {
        const store = yield* make
        const [held, handled, fresh] = [key(), key(), key()]
        const heldToken = acquired(yield* store.claim(held, lease))
        const handledToken = acquired(yield* store.claim(handled, lease))
        expect(yield* store.complete(handled, handledToken, ttl)).toBe(true)

        // The batch form when the store has one, otherwise core's one-by-one fallback.
        const claims = yield* Dedupe.claimAll(store, [fresh, held, handled], lease)
        expect(claims.map((c) => c._tag)).toEqual(["Acquired", "Busy", "Done"])
        const freshToken = acquired(claims[0] as Dedupe.Claim)

        const completed = yield* Dedupe.completeAll(
          store,
          [
            { key: fresh, token: freshToken },
            { key: held, token: "not-the-holder" }
          ],
          ttl
        )
        expect(completed).toEqual([true, false])
        expect(yield* store.claim(fresh, lease)).toEqual({ _tag: "Done" })
        // The wrong token changed nothing: the holder still completes its claim.
        expect(yield* store.complete(held, heldToken, ttl)).toBe(true)
      })
    )

    it.live("a key given twice in one batch is acquired once", () =>
      Effect.gen(function* () {
        const store = yield* make
        const k = key()
        const claims = yield* Dedupe.claimAll(store, [k, k], lease)
        expect(claims.filter((c) => c._tag === "Acquired")).toHaveLength(1)
        expect(claims.filter((c) => c._tag === "Busy")).toHaveLength(1)
      })
    )

    it.live("a batch of a thousand claims acquires every key once", () =>
      Effect.gen(function* () {
        const store = yield* make
        const keys = Array.from({ length: 1000 }, () => key())
        const first = yield* Dedupe.claimAll(store, keys, lease)
        expect(first.every((c) => c._tag === "Acquired")).toBe(true)
        const again = yield* Dedupe.claimAll(store, keys, lease)
        expect(again.every((c) => c._tag === "Busy")).toBe(true)
        const done = yield* Dedupe.completeAll(
          store,
          keys.map((k, i) => ({ key: k, token: acquired(first[i] as Dedupe.Claim) })),
          ttl
        )
        expect(done.every((ok) => ok)).toBe(true)
        const last = yield* Dedupe.claimAll(store, keys, lease)
        expect(last.every((c) => c._tag === "Done")).toBe(true)
      })
    )

    it.live("keys may hold any character, and batches mixing claims of several tokens answer each in order", () =>
      Effect.gen(function* () {
        const store = yield* make
        const base = key()
        // Separators, multi-byte characters and an empty suffix: each must stay a key of its own.
        const odd = ["", ",", "\n", "1,2", "ä€😀", " \u0000 ", "x".repeat(300)].map((suffix) => `${base}:${suffix}`)
        const first = yield* Dedupe.claimAll(store, odd.slice(0, 4), lease)
        const second = yield* Dedupe.claimAll(store, odd.slice(4), lease)
        const claims = [...first, ...second]
        expect(claims.map((c) => c._tag)).toEqual(odd.map(() => "Acquired"))
        // Interleaved tokens, and one wrong token in the middle.
        const completions = odd.map((k, i) => ({ key: k, token: acquired(claims[i] as Dedupe.Claim) })).reverse()
        completions.splice(3, 0, { key: odd[0] as string, token: "not-the-holder" })
        const done = yield* Dedupe.completeAll(store, completions, ttl)
        expect(done).toEqual(completions.map((c) => c.token !== "not-the-holder"))
        const after = yield* Dedupe.claimAll(store, [...odd, `${base}:other`], lease)
        expect(after.map((c) => c._tag)).toEqual([...odd.map(() => "Done"), "Acquired"])
      })
    )
  })
}
