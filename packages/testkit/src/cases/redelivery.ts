import { expect } from "@effect/vitest"
import { SettlementFailed } from "@lossless/core"
import { Effect } from "effect"
import type { Suite } from "../Conformance.ts"
import { assertExactlyOnce, declare, envelope, envelopes, publishAll, subscribe, uniqueName } from "../Harness.ts"

export const redeliveryCases = ({ it, capabilities, receiveTimeout, quietPeriod }: Suite) => {
  it.effect("a delivery left unsettled is redelivered after its subscriber is interrupted", () =>
    Effect.gen(function* () {
      const topic = uniqueName("crash")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      const sent = envelope(topic, { payload: "in flight" })
      yield* publishAll([sent])
      const crashed = yield* subscribe(topic, group, { receiveTimeout })
      const got = yield* crashed.next()
      expect(got.envelope.id).toBe(sent.id)
      yield* crashed.close // the handler never settled
      const survivor = yield* subscribe(topic, group, { receiveTimeout })
      const again = yield* survivor.next()
      expect(again.envelope.id).toBe(sent.id)
      // A crash is not a retry: the attempt count is unchanged.
      expect(again.attempt).toBe(1)
      if (capabilities.redeliveryFlag) expect(again.redelivered).toBe(true)
      yield* again.ack
      yield* survivor.nothingWithin(quietPeriod)
    })
  )

  it.effect("a settlement after the subscription ended fails and the message is redelivered", () =>
    Effect.gen(function* () {
      const topic = uniqueName("stale")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      const sent = envelope(topic)
      yield* publishAll([sent])
      const gone = yield* subscribe(topic, group, { receiveTimeout })
      const got = yield* gone.next()
      expect(got.settleable()).toBe(true)
      yield* gone.close
      expect(got.settleable()).toBe(false)
      const error = yield* Effect.flip(got.ack)
      expect(error).toBeInstanceOf(SettlementFailed)
      expect(error.messageId).toBe(sent.id)
      const next = yield* subscribe(topic, group, { receiveTimeout })
      const again = yield* next.next()
      expect(again.envelope.id).toBe(sent.id)
      yield* again.ack
    })
  )

  it.effect("closing and re-subscribing continues without loss or repeats of settled messages", () =>
    Effect.gen(function* () {
      const topic = uniqueName("resubscribe")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      const batch = envelopes(topic, 100)
      yield* publishAll(batch)
      const acked: Array<string> = []
      const first = yield* subscribe(topic, group, { prefetch: 10, receiveTimeout })
      for (const d of yield* first.consume(30)) acked.push(d.envelope.id)
      yield* first.take(5) // taken, never settled
      yield* first.close
      const second = yield* subscribe(topic, group, { prefetch: 10, receiveTimeout })
      for (const d of yield* second.consume(70)) acked.push(d.envelope.id)
      yield* second.nothingWithin(quietPeriod)
      assertExactlyOnce(
        batch.map((e) => e.id),
        acked
      )
    })
  )
}
