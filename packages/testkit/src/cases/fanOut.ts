import { expect } from "@effect/vitest"
import { Effect } from "effect"
import type { Suite } from "../Conformance.ts"
import { assertExactlyOnce, declare, envelopes, publishAll, subscribe, uniqueName } from "../Harness.ts"

export const fanOutCases = ({ it, receiveTimeout, quietPeriod }: Suite) => {
  it.effect("every group receives every message", () =>
    Effect.gen(function* () {
      const topic = uniqueName("fanout")
      const billing = uniqueName("billing")
      const shipping = uniqueName("shipping")
      yield* declare(
        [topic],
        [
          [topic, billing],
          [topic, shipping]
        ]
      )
      const batch = envelopes(topic, 50)
      yield* publishAll(batch)
      for (const group of [billing, shipping]) {
        const sub = yield* subscribe(topic, group, { receiveTimeout })
        const got = yield* sub.consume(batch.length)
        assertExactlyOnce(
          batch.map((e) => e.id),
          got.map((d) => d.envelope.id)
        )
        yield* sub.nothingWithin(quietPeriod)
      }
    })
  )

  it.effect("competing consumers in one group split the work, none lost or doubled", () =>
    Effect.gen(function* () {
      const topic = uniqueName("compete")
      const group = uniqueName("workers")
      yield* declare([topic], [[topic, group]])
      const batch = envelopes(topic, 200, (i) => `k${i % 16}`)
      const first = yield* subscribe(topic, group, { prefetch: 4, receiveTimeout })
      const second = yield* subscribe(topic, group, { prefetch: 4, receiveTimeout })
      yield* publishAll(batch)
      const seen: Array<Array<string>> = [[], []]
      // Both consumers drain concurrently; each acks what it takes.
      const drain = (index: 0 | 1) =>
        Effect.gen(function* () {
          const sub = index === 0 ? first : second
          for (;;) {
            if (seen[0]!.length + seen[1]!.length >= batch.length) return
            const d = yield* sub.poll("1500 millis")
            if (d._tag === "None") return
            seen[index]!.push(d.value.envelope.id)
            yield* d.value.ack
          }
        })
      yield* Effect.all([drain(0), drain(1)], { concurrency: 2 })
      assertExactlyOnce(
        batch.map((e) => e.id),
        [...seen[0]!, ...seen[1]!]
      )
      expect(seen[0]!.length).toBeGreaterThan(0)
      expect(seen[1]!.length).toBeGreaterThan(0)
      yield* first.nothingWithin(quietPeriod)
      yield* second.nothingWithin(quietPeriod)
    })
  )
}
