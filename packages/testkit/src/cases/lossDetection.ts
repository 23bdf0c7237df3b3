import { expect } from "@effect/vitest"
import { Consumer, LossDetector, Publisher, Topic } from "@lossless/core"
import { Effect, Schema } from "effect"
import type { Suite } from "../Conformance.ts"
import * as Faulty from "../Faulty.ts"
import { declare, eventually, uniqueName } from "../Harness.ts"

const Reading = Schema.Struct({ n: Schema.Int })

export const lossDetectionCases = ({ it, receiveTimeout }: Suite) => {
  it.effect("the loss detector reports a planted gap, and nothing else", () =>
    Effect.gen(function* () {
      const topic = Topic.make(uniqueName("loss"), Reading)
      const group = uniqueName("audit")
      yield* declare([topic.name], [[topic.name, group]])
      // Publish call 7 is confirmed but never stored: a broker losing an acknowledged message.
      const faulty = Faulty.make({ publish: (call) => (call === 7 ? { _tag: "Drop" } : Faulty.pass) })
      const detector = yield* LossDetector.make({ graceWindow: "300 millis" })
      const handled: Array<number> = []
      yield* Consumer.start({
        topic,
        group,
        concurrency: 4,
        lossDetector: detector,
        handler: (message) => Effect.sync(() => handled.push(message.payload.n))
      })
      yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (n) => Publisher.send(topic, { n }, { key: `sensor-${n % 3}` }),
        { discard: true }
      ).pipe(
        Effect.provide(Publisher.layer({ lossDetection: { name: "sensors", partitions: 1 } })),
        Effect.provide(faulty.layer)
      )
      yield* eventually("29 readings handled", () => handled.length === 29, receiveTimeout)
      yield* Effect.sleep("400 millis")
      const report = yield* detector.report
      expect(report.lost).toBe(1)
      expect(report.gaps).toHaveLength(1)
      expect(report.gaps[0]).toMatchObject({ topic: topic.name, from: 7, to: 7 })
      expect(report.duplicates).toBe(0)
      expect(report.observed).toBe(29)
      expect(handled).not.toContain(6)
    })
  )
}
