import { expect } from "@effect/vitest"
import { Clock, Effect } from "effect"
import type { Suite } from "../Conformance.ts"
import { declare, envelope, publishAll, since, subscribe, text, uniqueName } from "../Harness.ts"

export const retryLaterCases = ({ it, receiveTimeout }: Suite) => {
  it.effect("retryLater redelivers the same message after the delay with the attempt raised", () =>
    Effect.gen(function* () {
      const topic = uniqueName("retry")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      const sent = envelope(topic, { payload: "try me", key: "k1", headers: { "x-trace": "abc" } })
      yield* publishAll([sent])
      const sub = yield* subscribe(topic, group, { receiveTimeout })
      const first = yield* sub.next()
      expect(first.attempt).toBe(1)
      const delayMillis = 400
      const start = yield* Clock.currentTimeMillis
      yield* first.retryLater(delayMillis)
      const second = yield* sub.next()
      const waited = yield* since(start)
      // A small allowance for timer granularity; an immediate redelivery fails this.
      expect(waited).toBeGreaterThanOrEqual(delayMillis - 25)
      expect(second.envelope.id).toBe(sent.id)
      expect(second.attempt).toBe(2)
      expect(text(second.envelope.payload)).toBe("try me")
      expect(second.envelope.key).toBe("k1")
      expect(second.envelope.headers["x-trace"]).toBe("abc")
      yield* second.retryLater(50)
      const third = yield* sub.next()
      expect(third.envelope.id).toBe(sent.id)
      expect(third.attempt).toBe(3)
      yield* third.ack
    })
  )

  it.effect("retryLater that does not count an attempt redelivers with the attempt unchanged", () =>
    Effect.gen(function* () {
      const topic = uniqueName("retry-uncounted")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      const sent = envelope(topic)
      yield* publishAll([sent])
      const sub = yield* subscribe(topic, group, { receiveTimeout })
      const first = yield* sub.next()
      yield* first.retryLater(50)
      const second = yield* sub.next()
      expect(second.attempt).toBe(2)
      yield* second.retryLater(50, { countAttempt: false })
      const third = yield* sub.next()
      expect(third.envelope.id).toBe(sent.id)
      expect(third.attempt).toBe(2)
      yield* third.ack
    })
  )

  it.effect("a message waiting in retryLater does not hold up the messages behind it", () =>
    Effect.gen(function* () {
      const topic = uniqueName("retry-nonblocking")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      const slow = envelope(topic, { payload: "slow" })
      const fast = envelope(topic, { payload: "fast" })
      yield* publishAll([slow, fast])
      const sub = yield* subscribe(topic, group, { prefetch: 1, receiveTimeout })
      const first = yield* sub.next()
      expect(first.envelope.id).toBe(slow.id)
      yield* first.retryLater("2 seconds")
      const second = yield* sub.next("1500 millis")
      expect(second.envelope.id).toBe(fast.id)
      yield* second.ack
      const again = yield* sub.next()
      expect(again.envelope.id).toBe(slow.id)
      yield* again.ack
    })
  )
}
