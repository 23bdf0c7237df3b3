import { expect } from "@effect/vitest"
import { DeadLetter, Headers, SettlementFailed } from "@lossless/core"
import { Effect } from "effect"
import type { Suite } from "../Conformance.ts"
import { declare, envelope, publishAll, subscribe, text, uniqueName } from "../Harness.ts"

export const deadLetterCases = ({ it, receiveTimeout, quietPeriod }: Suite) => {
  it.effect("deadLetter moves the message to the group's dead letters with the reason", () =>
    Effect.gen(function* () {
      const topic = uniqueName("dlq")
      const group = uniqueName("g")
      const other = uniqueName("other")
      yield* declare(
        [topic],
        [
          [topic, group],
          [topic, other]
        ]
      )
      const sent = envelope(topic, { payload: "poison ☠", key: "k", headers: { "x-tenant": "t1" } })
      yield* publishAll([sent])
      const sub = yield* subscribe(topic, group, { receiveTimeout })
      const got = yield* sub.next()
      yield* got.retryLater(10)
      const again = yield* sub.next()
      yield* again.deadLetter("handler failed: amount must be positive (ünïcode)")
      // Gone from the work queue: not redelivered.
      yield* sub.nothingWithin(quietPeriod)

      const dead = yield* subscribe(topic, group, { source: "dead-letters", receiveTimeout })
      const letter = yield* dead.next()
      expect(letter.envelope.id).toBe(sent.id)
      expect(text(letter.envelope.payload)).toBe("poison ☠")
      expect(letter.envelope.key).toBe("k")
      expect(letter.envelope.headers["x-tenant"]).toBe("t1")
      const reason = DeadLetter.reason(letter.envelope)
      expect(reason).toBeDefined()
      expect(reason?.originalTopic).toBe(topic)
      expect(reason?.group).toBe(group)
      expect(reason?.error).toBe("handler failed: amount must be positive (ünïcode)")
      expect(reason?.attempt).toBe(2)
      expect(Number.isNaN(Date.parse(reason?.failedAt ?? ""))).toBe(false)
      expect(letter.envelope.headers[Headers.FailedAt]).toBe(reason?.failedAt)
      yield* letter.ack
      yield* dead.nothingWithin(quietPeriod)

      // Another group's copy is untouched by this group's dead-lettering.
      const otherSub = yield* subscribe(topic, other, { receiveTimeout })
      const copy = yield* otherSub.next()
      expect(copy.envelope.id).toBe(sent.id)
      expect(copy.attempt).toBe(1)
      yield* copy.ack
      const otherDead = yield* subscribe(topic, other, { source: "dead-letters", receiveTimeout })
      yield* otherDead.nothingWithin(quietPeriod)
    })
  )

  it.effect("a delivery settles once: a second settlement fails and changes nothing", () =>
    Effect.gen(function* () {
      const topic = uniqueName("settle-once")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      yield* publishAll([envelope(topic)])
      const sub = yield* subscribe(topic, group, { receiveTimeout })
      const got = yield* sub.next()
      yield* got.ack
      expect(got.settleable()).toBe(false)
      const second = yield* Effect.flip(got.deadLetter("too late"))
      expect(second).toBeInstanceOf(SettlementFailed)
      expect(second.settlement).toBe("deadLetter")
      const third = yield* Effect.flip(got.retryLater(10))
      expect(third).toBeInstanceOf(SettlementFailed)
      yield* sub.nothingWithin(quietPeriod)
      const dead = yield* subscribe(topic, group, { source: "dead-letters", receiveTimeout })
      yield* dead.nothingWithin(quietPeriod)
    })
  )
}
