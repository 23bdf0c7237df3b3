import { expect } from "@effect/vitest"
import { Clock, Effect } from "effect"
import type { Suite } from "../Conformance.ts"
import {
  assertExactlyOnce,
  declare,
  envelope,
  envelopes,
  publishAll,
  since,
  subscribe,
  text,
  uniqueName
} from "../Harness.ts"

export const noLossCases = ({ it, requiring, receiveTimeout, quietPeriod }: Suite) => {
  it.effect("many concurrent publishers: every message arrives exactly once", () =>
    Effect.gen(function* () {
      const topic = uniqueName("concurrent")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      const publishers = 8
      const perPublisher = 125
      const batches = Array.from({ length: publishers }, (_, p) =>
        envelopes(topic, perPublisher, (i) => `p${p}-k${i % 5}`)
      )
      const consumer = yield* subscribe(topic, group, { prefetch: 64, receiveTimeout })
      const received: Array<string> = []
      const consume = Effect.gen(function* () {
        while (received.length < publishers * perPublisher) {
          const d = yield* consumer.next()
          received.push(d.envelope.id)
          yield* d.ack
        }
      })
      // Each publisher sends in uneven batches (1..7) so single and batched publishes interleave.
      const publish = (batch: ReadonlyArray<ReturnType<typeof envelope>>) =>
        Effect.gen(function* () {
          let i = 0
          let size = 1
          while (i < batch.length) {
            yield* publishAll(batch.slice(i, i + size))
            i += size
            size = (size % 7) + 1
          }
        })
      yield* Effect.all([consume, Effect.forEach(batches, publish, { concurrency: "unbounded" })], {
        concurrency: 2
      })
      assertExactlyOnce(
        batches.flat().map((e) => e.id),
        received
      )
      yield* consumer.nothingWithin(quietPeriod)
    })
  )

  requiring("delayedDelivery")("a message with deliverAt is held until that time, without blocking others", () =>
    Effect.gen(function* () {
      const topic = uniqueName("delayed")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      const start = yield* Clock.currentTimeMillis
      const later = envelope(topic, { payload: "later", deliverAt: start + 600 })
      const now = envelope(topic, { payload: "now" })
      yield* publishAll([later, now])
      const sub = yield* subscribe(topic, group, { receiveTimeout })
      const first = yield* sub.next()
      expect(text(first.envelope.payload)).toBe("now")
      yield* first.ack
      const second = yield* sub.next()
      expect(text(second.envelope.payload)).toBe("later")
      expect(yield* since(start)).toBeGreaterThanOrEqual(600 - 25)
      yield* second.ack
    })
  )
}
