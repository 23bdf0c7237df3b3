import { expect } from "@effect/vitest"
import { TopicNotFound, Transport } from "@lossless/core"
import { Effect, Result } from "effect"
import type { Suite } from "../Conformance.ts"
import { declare, envelope, subscribe, uniqueName } from "../Harness.ts"

export const destinationCases = ({ it, capabilities, receiveTimeout }: Suite) => {
  it.effect("publishing to an undeclared topic fails with TopicNotFound; the rest of the batch is confirmed", () =>
    Effect.gen(function* () {
      const known = uniqueName("known")
      const unknown = uniqueName("never-declared")
      const group = uniqueName("g")
      yield* declare([known], [[known, group]])
      const good = envelope(known)
      const bad = envelope(unknown)
      const results = yield* Transport.Transport.use((t) => t.publish([good, bad]))
      expect(results).toHaveLength(2)
      expect(Result.isSuccess(results[0]!)).toBe(true)
      const failure = results[1]!
      expect(Result.isFailure(failure)).toBe(true)
      if (Result.isFailure(failure)) {
        expect(failure.failure).toBeInstanceOf(TopicNotFound)
        expect(failure.failure.retryable).toBe(false)
      }
      const sub = yield* subscribe(known, group, { receiveTimeout })
      expect((yield* sub.next()).envelope.id).toBe(good.id)
    })
  )

  const maxBytes = capabilities.maxMessageBytes
  ;(maxBytes !== undefined && maxBytes <= 64 * 1024 * 1024 ? it.effect : it.effect.skip)(
    "a message over the broker's size limit fails with MessageTooLarge and is not delivered",
    () =>
      Effect.gen(function* () {
        const topic = uniqueName("too-large")
        const group = uniqueName("g")
        yield* declare([topic], [[topic, group]])
        const big = { ...envelope(topic), payload: new Uint8Array((maxBytes ?? 0) + 1) }
        const [result] = yield* Transport.Transport.use((t) => t.publish([big]))
        expect(result !== undefined && Result.isFailure(result) ? result.failure._tag : "confirmed").toBe(
          "MessageTooLarge"
        )
        const sub = yield* subscribe(topic, group, { receiveTimeout })
        yield* sub.nothingWithin("200 millis")
      })
  )
}
