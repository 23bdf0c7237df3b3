import { Consumer, LossDetector, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Effect, Layer, Schema } from "effect"

const Trades = Topic.make("trades", Schema.Struct({ id: Schema.String }))

// #region detector
// Producers stamp a producer id and a sequence per key partition on every message.
const PublisherLive = Publisher.layer({ lossDetection: { name: "trading-api" } })

const audit = Effect.gen(function* () {
  // Consumers feed the stamps to a detector: a gap older than the grace window is a lost message.
  const detector = yield* LossDetector.make({
    graceWindow: "30 seconds",
    onLoss: (gap) => Effect.logError(`lost ${gap.to - gap.from + 1} message(s) of ${gap.producerId} on ${gap.topic}`)
  })
  yield* Consumer.start({ topic: Trades, group: "settlement", lossDetector: detector, handler: () => Effect.void })
  return detector
})
// #endregion

export const main: Effect.Effect<void, unknown> = Effect.gen(function* () {
  const detector = yield* audit
  yield* Publisher.sendBatch(
    Trades,
    Array.from({ length: 100 }, (_, i) => ({ payload: { id: `t-${i}` } }))
  )
  yield* Effect.sleep("200 millis")
  // #region report
  const report = yield* detector.report
  yield* Effect.log(`${report.observed} observed, ${report.lost} lost, ${report.duplicates} duplicated`)
  // #endregion
  if (report.observed !== 100 || report.lost !== 0) return yield* Effect.die(new Error(JSON.stringify(report)))
}).pipe(Effect.scoped, Effect.provide(PublisherLive.pipe(Layer.provideMerge(MemoryTransport.layer()))))
