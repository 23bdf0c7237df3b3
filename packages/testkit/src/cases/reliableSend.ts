import { expect } from "@effect/vitest"
import { BrokerRejected, ConnectionLost, Publisher, SendFailed, Topic, Unroutable } from "@lossless/core"
import { Effect, Schedule, Schema } from "effect"
import type { Suite } from "../Conformance.ts"
import * as Faulty from "../Faulty.ts"
import { declare, subscribe, uniqueName } from "../Harness.ts"

const Payment = Schema.Struct({ id: Schema.String, cents: Schema.Int })

export const reliableSendCases = ({ it, receiveTimeout, quietPeriod }: Suite) => {
  it.effect("send retries through transient failures with the same id, and the message arrives once", () =>
    Effect.gen(function* () {
      const topic = Topic.make(uniqueName("send-retry"), Payment)
      const group = uniqueName("g")
      yield* declare([topic.name], [[topic.name, group]])
      const faulty = Faulty.make({
        publish: (call) =>
          call === 1
            ? { _tag: "Fail", error: () => new ConnectionLost({ transport: "test", reason: "planted" }) }
            : call === 2
              ? {
                  _tag: "Fail",
                  error: (e) => new BrokerRejected({ topic: e.topic, messageId: e.id, reason: "planted nack" })
                }
              : Faulty.pass
      })
      const sent = yield* Publisher.send(topic, { id: "p-1", cents: 500 }).pipe(
        Effect.provide(Publisher.layer({ retry: Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 5 })) })),
        Effect.provide(faulty.layer)
      )
      expect(sent.attempts).toBe(3)
      const sub = yield* subscribe(topic.name, group, { receiveTimeout })
      const got = yield* sub.next()
      expect(got.envelope.id).toBe(sent.id)
      yield* got.ack
      yield* sub.nothingWithin(quietPeriod)
    })
  )

  it.effect("send stops at a permanent failure and returns the unsent message", () =>
    Effect.gen(function* () {
      const topic = Topic.make(uniqueName("send-permanent"), Payment)
      yield* declare([topic.name], [[topic.name, uniqueName("g")]])
      const faulty = Faulty.make({
        publish: () => ({ _tag: "Fail", error: (e) => new Unroutable({ topic: e.topic, messageId: e.id }) })
      })
      const error = yield* Publisher.send(topic, { id: "p-2", cents: 1 }).pipe(
        Effect.provide(Publisher.layer({ retry: Schedule.recurs(5) })),
        Effect.provide(faulty.layer),
        Effect.flip
      )
      expect(error).toBeInstanceOf(SendFailed)
      expect(faulty.control.publishCalls()).toBe(1)
      const failed = (error as SendFailed).failures[0]
      expect(failed?.error._tag).toBe("Unroutable")
      expect(failed?.envelope.topic).toBe(topic.name)
    })
  )
}
