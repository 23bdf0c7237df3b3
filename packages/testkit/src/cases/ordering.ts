import { expect } from "@effect/vitest"
import { Effect } from "effect"
import type { Suite } from "../Conformance.ts"
import { declare, envelopes, publishAll, subscribe, text, uniqueName } from "../Harness.ts"

export const orderingCases = ({ requiring, capabilities, receiveTimeout }: Suite) => {
  requiring(capabilities.ordering !== "none", "transport promises no ordering")(
    "a single consumer receives each key's messages in publish order",
    () =>
      Effect.gen(function* () {
        const topic = uniqueName("order")
        const group = uniqueName("g")
        yield* declare([topic], [[topic, group]])
        const keys = ["alpha", "beta", "gamma", "delta", "epsilon"]
        const batch = envelopes(topic, 200, (i) => keys[i % keys.length] as string)
        // Published in several batches so order must hold across publish calls too.
        for (let i = 0; i < batch.length; i += 25) yield* publishAll(batch.slice(i, i + 25))
        const sub = yield* subscribe(topic, group, { prefetch: 10, receiveTimeout })
        const lastByKey = new Map<string, number>()
        for (let i = 0; i < batch.length; i++) {
          const d = yield* sub.next()
          const n = Number(text(d.envelope.payload))
          const key = d.envelope.key as string
          expect(key).toBe(keys[n % keys.length])
          expect(n, `message ${n} of key ${key} arrived after ${lastByKey.get(key)}`).toBeGreaterThan(
            lastByKey.get(key) ?? -1
          )
          lastByKey.set(key, n)
          yield* d.ack
        }
        expect([...lastByKey.keys()].sort()).toEqual([...keys].sort())
      })
  )
}
