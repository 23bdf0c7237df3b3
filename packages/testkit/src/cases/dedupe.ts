import { expect } from "@effect/vitest"
import { Consumer, Dedupe, Topic } from "@lossless/core"
import { Effect, Schedule, Schema } from "effect"
import type { Suite } from "../Conformance.ts"
import { declare, envelope, eventually, publishAll, subscribe, uniqueName } from "../Harness.ts"

const Charge = Schema.Struct({ amount: Schema.Int })

export const dedupeCases = ({ it, receiveTimeout, quietPeriod }: Suite) => {
  it.effect(
    "with dedupe, two consumers racing on copies of one message give one effect, and both copies are acked",
    () =>
      Effect.gen(function* () {
        const topic = Topic.make(uniqueName("dedupe-race"), Charge)
        const group = uniqueName("g")
        yield* declare([topic.name], [[topic.name, group]])
        const store = yield* Dedupe.memoryStore()
        const effects: Array<string> = []
        let runs = 0
        const handler = (message: { id: string }) =>
          Effect.gen(function* () {
            runs++
            yield* Effect.sleep("50 millis")
            effects.push(message.id)
          })
        const options = {
          topic,
          group,
          ordering: "none" as const,
          dedupe: { store, busyDelay: "30 millis" as const },
          handler
        }
        yield* Consumer.start(options)
        yield* Consumer.start(options)
        const charge = envelope(topic.name, { payload: '{"amount":100}' })
        // The same message twice, as after a producer retry whose confirm was lost.
        yield* publishAll([charge, charge])
        const other = envelope(topic.name, { payload: '{"amount":7}' })
        yield* publishAll([other])
        yield* eventually("both messages handled", () => effects.length >= 2, receiveTimeout)
        yield* Effect.sleep(quietPeriod)
        expect(effects.sort()).toEqual([charge.id, other.id].sort())
        expect(runs).toBe(2)
        const sub = yield* subscribe(topic.name, group, { receiveTimeout })
        yield* sub.nothingWithin(quietPeriod)
      })
  )

  it.effect("with dedupe, a handler that failed after claiming releases the key so the retry runs it", () =>
    Effect.gen(function* () {
      const topic = Topic.make(uniqueName("dedupe-release"), Charge)
      const group = uniqueName("g")
      yield* declare([topic.name], [[topic.name, group]])
      const store = yield* Dedupe.memoryStore()
      const attempts: Array<number> = []
      const done: Array<number> = []
      yield* Consumer.start({
        topic,
        group,
        dedupe: { store },
        retry: { immediate: 0, delayed: Schedule.spaced("30 millis").pipe(Schedule.upTo({ times: 3 })) },
        handler: (_, context) =>
          Effect.suspend(() => {
            attempts.push(context.attempt)
            if (context.attempt === 1) return Effect.fail(new Error("database deadlock"))
            done.push(context.attempt)
            return Effect.void
          })
      })
      yield* publishAll([envelope(topic.name, { payload: '{"amount":1}' })])
      yield* eventually("the retry to succeed", () => done.length === 1, receiveTimeout)
      expect(attempts).toEqual([1, 2])
    })
  )
}
