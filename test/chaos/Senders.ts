/**
 * The chaos tests' senders: several of them share one running count, each
 * taking the next batch of numbered jobs (keys spread over 32) until the
 * total is sent, and recording what the publisher reports: confirmed ids,
 * sends that needed more than one attempt, and failures.
 */
import type { Publisher } from "@lossless/core"
import { type Duration, Effect } from "effect"
import type { jobTopic } from "./shared.ts"

/** What the senders did so far; `next` is the number of the next job to send. */
export interface Sends {
  readonly confirmed: Set<string>
  failed: number
  resent: number
  next: number
}

export const makeSends = (): Sends => ({ confirmed: new Set<string>(), failed: 0, resent: 0, next: 0 })

/** One sender: batches of `batchSize` through `publisher`, a pause after each, until `total` jobs are taken. */
export const sender = (options: {
  readonly publisher: Publisher.PublisherShape
  readonly topic: ReturnType<typeof jobTopic>
  readonly sends: Sends
  readonly total: number
  readonly batchSize: number
  readonly pause: Duration.Input
}): Effect.Effect<void> =>
  Effect.gen(function* () {
    const { publisher, topic, sends, total, batchSize } = options
    while (sends.next < total) {
      const from = sends.next
      const size = Math.min(batchSize, total - from)
      sends.next += size
      const batch = Array.from({ length: size }, (_, i) => ({ payload: { n: from + i }, key: `k${(from + i) % 32}` }))
      yield* publisher.sendBatch(topic, batch).pipe(
        Effect.flatMap((sent) =>
          Effect.sync(() => {
            for (const s of sent) {
              sends.confirmed.add(s.id)
              if (s.attempts > 1) sends.resent++
            }
          })
        ),
        Effect.catchTag("SendFailed", (failed) =>
          Effect.sync(() => {
            for (const id of failed.confirmed) sends.confirmed.add(id)
            sends.failed += failed.failures.length
          })
        ),
        Effect.orDie
      )
      yield* Effect.sleep(options.pause)
    }
  })
