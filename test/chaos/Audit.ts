/**
 * The chaos tests' audit group: every message, in the test's own process,
 * through a loss detector, counting what it handled. It starts before the
 * senders, so each stream must begin at sequence 1; the detector's default
 * grace window (30 s) decides when an open gap is called lost.
 */
import { Consumer, LossDetector, type Transport } from "@lossless/core"
import { Effect, type Scope } from "effect"
import type { jobTopic } from "./shared.ts"

export const startAudit = (
  topic: ReturnType<typeof jobTopic>,
  group: string,
  prefetch: number
): Effect.Effect<
  {
    readonly detector: LossDetector.LossDetector
    readonly gapsReported: ReadonlyArray<LossDetector.Gap>
    /** Times each message id was handled. */
    readonly audited: ReadonlyMap<string, number>
  },
  unknown,
  Transport.Transport | Scope.Scope
> =>
  Effect.gen(function* () {
    const gapsReported: Array<LossDetector.Gap> = []
    const detector = yield* LossDetector.make({
      sweepInterval: "1 second",
      onLoss: (gap) => Effect.sync(() => gapsReported.push(gap))
    })
    const audited = new Map<string, number>()
    yield* Consumer.start({
      topic,
      group,
      lossDetector: detector,
      concurrency: 4,
      prefetch,
      ordering: "none",
      handler: (message) => Effect.sync(() => audited.set(message.id, (audited.get(message.id) ?? 0) + 1))
    })
    return { detector, gapsReported, audited }
  })
