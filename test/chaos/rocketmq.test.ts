/**
 * Chaos on RocketMQ, against the in-process emulator with the real client
 * over gRPC (the run itself: `InProcessChaos.ts`). 4,000 messages go out
 * while the proxy answers sends with flush and replica timeouts (the strict
 * transport retries them), refuses connections, ends every telemetry stream
 * and connection, and one of two consumers of the deduped group is killed in
 * the middle of its handlers (a replacement takes its place). Then, for every
 * confirmed send, the deduped group has exactly one effect and the loss
 * detector saw it and reports no gap.
 */
import { describe, expect, it } from "@effect/vitest"
import { RocketTransport } from "@lossless/rocketmq"
import * as RocketEmulator from "@lossless/testkit/rocketmq"
import { Effect } from "effect"
import { afterAll } from "vitest"
import * as InProcessChaos from "./InProcessChaos.ts"

const { Code } = RocketEmulator
const emulator = await RocketEmulator.start()
afterAll(() => emulator.close())

type Fault =
  | "flush timeouts"
  | "replica timeouts"
  | "connections refused"
  | "telemetry streams dropped"
  | "connections dropped"

const timeline = [
  { at: 400, fault: "flush timeouts" },
  { at: 900, fault: "telemetry streams dropped" },
  { at: 1_400, fault: "connections refused" },
  { at: 1_900, fault: InProcessChaos.killConsumer },
  { at: 2_500, fault: "connections dropped" },
  { at: 3_100, fault: "replica timeouts" }
] as const

const strike = (fault: Fault): Effect.Effect<string> =>
  Effect.sync(() => {
    switch (fault) {
      case "flush timeouts":
        emulator.faults.sendStatus(Code.MASTER_PERSISTENCE_TIMEOUT, 25)
        return "the next 25 sends stored without a confirmed flush"
      case "replica timeouts":
        emulator.faults.sendStatus(Code.SLAVE_PERSISTENCE_TIMEOUT, 25)
        return "the next 25 sends stored without a confirmed replica"
      case "connections refused":
        emulator.faults.sendStatus("unavailable", 10)
        return "the next 10 sends failed as unreachable"
      case "telemetry streams dropped":
        emulator.faults.dropStreams()
        return "every telemetry stream ended"
      case "connections dropped":
        emulator.faults.dropStreams({ connections: true })
        return "every stream and connection ended"
    }
  })

describe("chaos on RocketMQ (emulator), one group deduped through an inbox", () => {
  it.live(
    "4,000 sends through persistence timeouts, refused and dropped connections and a killed consumer: none lost, no effect doubled, no gap",
    () =>
      Effect.gen(function* () {
        const tally = yield* InProcessChaos.run<Fault>({
          total: 4_000,
          batchPause: "20 millis",
          timeline,
          strike,
          stored: (topic) => emulator.messages(topic).length
        })
        InProcessChaos.expectNoneLostOrDoubled(tally, timeline)
        // The persistence timeouts stored copies the strict transport did not count as sent: they were re-sent.
        expect(tally.resent).toBeGreaterThan(0)
        expect(tally.stored).toBeGreaterThan(tally.total)
      }).pipe(Effect.scoped, Effect.provide(RocketTransport.layer({ url: `rocketmq://${emulator.endpoint}` }))),
    180_000
  )
})
