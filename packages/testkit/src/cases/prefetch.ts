import { expect } from "@effect/vitest"
import { Effect } from "effect"
import type { Suite } from "../Conformance.ts"
import { declare, envelopes, publishAll, subscribe, uniqueName } from "../Harness.ts"

export const prefetchCases = ({ it, receiveTimeout, quietPeriod }: Suite) => {
  it.effect("a subscriber holds at most `prefetch` unsettled deliveries", () =>
    Effect.gen(function* () {
      const topic = uniqueName("prefetch")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      const batch = envelopes(topic, 10)
      yield* publishAll(batch)
      const sub = yield* subscribe(topic, group, { prefetch: 3, receiveTimeout })
      const held = yield* sub.take(3)
      // The bound holds while nothing is settled...
      yield* sub.nothingWithin(quietPeriod)
      // ...and each settlement frees exactly one place.
      yield* (held[0] as (typeof held)[number]).ack
      const fourth = yield* sub.next()
      yield* sub.nothingWithin(quietPeriod)
      const rest = [held[1], held[2], fourth]
      for (const d of rest) yield* d!.ack
      const remaining = yield* sub.consume(6)
      expect(new Set([...held, fourth, ...remaining].map((d) => d.envelope.id)).size).toBe(10)
    })
  )
}
