/**
 * Chaos on Kafka, against the in-process emulator with the real kafkajs
 * client over TCP (the run itself: `InProcessChaos.ts`). 3,000 messages go
 * out while the broker fails produce requests (leader moved, replication
 * timed out), loses produce responses after storing the records, fails
 * offset commits, delays fetches, drops every connection, and one of two
 * consumers of the deduped group is killed in the middle of its handlers (a
 * replacement joins and the group rebalances). Then, for every confirmed
 * send, the deduped group has exactly one effect and the loss detector saw
 * it and reports no gap.
 */
import { describe, expect, it } from "@effect/vitest"
import { KafkaTransport } from "@lossless/kafka"
import * as KafkaEmulator from "@lossless/testkit/kafka"
import { Effect } from "effect"
import { afterAll } from "vitest"
import * as InProcessChaos from "./InProcessChaos.ts"

const emulator = await KafkaEmulator.start({ autoCreateTopics: false })
afterAll(() => emulator.close())

// Kafka error codes the broker answers with.
const NOT_LEADER_OR_FOLLOWER = 6
const REQUEST_TIMED_OUT = 7
const COORDINATOR_NOT_AVAILABLE = 15

type Fault =
  | "produce refused: leader moved"
  | "produce responses lost"
  | "commits refused"
  | "fetches delayed"
  | "connections dropped"
  | "produce refused: replication timed out"

const timeline = [
  { at: 300, fault: "produce refused: leader moved" },
  { at: 700, fault: "produce responses lost" },
  { at: 1_100, fault: InProcessChaos.killConsumer },
  { at: 1_500, fault: "commits refused" },
  { at: 1_900, fault: "fetches delayed" },
  { at: 2_200, fault: "connections dropped" },
  { at: 2_500, fault: "produce refused: replication timed out" }
] as const

const strike = (fault: Fault): Effect.Effect<string> =>
  Effect.sync(() => {
    switch (fault) {
      case "produce refused: leader moved":
        // More refusals than kafkajs retries one request: the publisher's schedule has to resend.
        emulator.faults.failNext("Produce", NOT_LEADER_OR_FOLLOWER, 8)
        return "the next 8 produce requests answered NOT_LEADER_OR_FOLLOWER"
      case "produce refused: replication timed out":
        emulator.faults.failNext("Produce", REQUEST_TIMED_OUT, 8)
        return "the next 8 produce requests answered REQUEST_TIMED_OUT"
      case "produce responses lost":
        emulator.faults.dropNext("Produce", { count: 5, applied: true })
        return "the next 5 produce requests stored, then their connections closed unanswered"
      case "commits refused":
        emulator.faults.failNext("OffsetCommit", COORDINATOR_NOT_AVAILABLE, 6)
        return "the next 6 offset commits answered COORDINATOR_NOT_AVAILABLE"
      case "fetches delayed":
        emulator.faults.delayNext("Fetch", 400, 6)
        return "the next 6 fetch responses delayed by 400 ms"
      case "connections dropped":
        emulator.faults.dropConnections()
        return "every client connection closed"
    }
  })

/** Records of every partition of the topic. */
const stored = (topic: string): number => {
  const partitions = emulator.topics().find((t) => t.name === topic)?.partitions ?? 0
  let records = 0
  for (let p = 0; p < partitions; p++) records += emulator.records(topic, p).length
  return records
}

describe("chaos on Kafka (emulator), one group deduped through an inbox", () => {
  it.live(
    "3,000 sends through refused and lost produce requests, refused commits, dropped connections and a killed consumer: none lost, no effect doubled, no gap",
    () =>
      Effect.gen(function* () {
        const tally = yield* InProcessChaos.run<Fault>({
          total: 3_000,
          batchPause: "40 millis",
          timeline,
          strike,
          stored
        })
        InProcessChaos.expectNoneLostOrDoubled(tally, timeline)
        // Refusals beyond kafkajs's own retries were resent by the publisher.
        expect(tally.resent).toBeGreaterThan(0)
        expect(tally.stored).toBeGreaterThanOrEqual(tally.total)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          KafkaTransport.layer({
            url: `kafka://${emulator.brokers.join(",")}`,
            heartbeatInterval: "300 millis",
            sessionTimeout: "6 seconds",
            maxWaitTime: "100 millis",
            requestTimeout: "5 seconds",
            logLevel: "nothing"
          })
        )
      ),
    180_000
  )
})
