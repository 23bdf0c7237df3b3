/**
 * The cli against a real RabbitMQ: dead letters read without being consumed
 * and re-driven once, and a planted sequence gap found by peeking at a group.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Consumer, Dedupe, LossDetector, RetryPolicy, Topic } from "@lossless/core"
import { RabbitTransport } from "@lossless/rabbitmq"
import { Harness, Services } from "@lossless/testkit"
import { Effect, Schema } from "effect"
import * as Rabbit from "../../rabbitmq/test/support.ts"
import { json, run } from "./support.ts"

// Some RabbitMQ suites restart the broker: take turns with them, then check that it answers.
const release = await Rabbit.exclusiveBroker()
afterAll(release)
const rabbit = await Services.require("rabbitmq")

const Order = Schema.Struct({ n: Schema.Int })

describe("lossless against RabbitMQ", () => {
  if (!rabbit.available) {
    it.skip(`RabbitMQ unavailable: ${rabbit.reason}`, () => {})
    return
  }
  const transport = () => Rabbit.tidy(RabbitTransport.layer(Rabbit.options()))
  const url = Rabbit.url

  it.live(
    "dlq list leaves the dead letters; redrive brings the selected back, handled once each",
    () =>
      Effect.gen(function* () {
        const topic = Topic.make(Harness.uniqueName("orders"), Order)
        let broken = true
        const billingRuns = new Map<number, number>()
        const auditRuns = new Map<number, number>()
        const count = (runs: Map<number, number>, n: number) => runs.set(n, (runs.get(n) ?? 0) + 1)
        const dedupe = { store: yield* Dedupe.memoryStore() }
        yield* Harness.declare(
          [topic.name],
          [
            [topic.name, "billing"],
            [topic.name, "audit"]
          ]
        )
        yield* Consumer.start({
          topic,
          group: "billing",
          retry: RetryPolicy.none,
          dedupe,
          handler: (m) =>
            broken
              ? Effect.fail(m.payload.n < 4 ? "timeout calling bank" : "invalid iban")
              : Effect.sync(() => count(billingRuns, m.payload.n))
        })
        yield* Consumer.start({
          topic,
          group: "audit",
          dedupe,
          handler: (m) => Effect.sync(() => count(auditRuns, m.payload.n))
        })
        const sent = Array.from({ length: 6 }, (_, n) =>
          Harness.envelope(topic.name, { payload: JSON.stringify({ n }) })
        )
        yield* Harness.publishAll(sent)
        yield* Harness.eventually("audit handled 6", () => auditRuns.size === 6)

        const where = ["--url", url, "--topic", topic.name, "--group", "billing", "--wait", "1s"]
        const listed = { read: 0 }
        yield* Effect.gen(function* () {
          // Dead-lettering is asynchronous: read until all six are there.
          for (let i = 0; i < 20 && listed.read < 6; i++) {
            listed.read = json(yield* run(["--json", "dlq", "list", ...where])).read
          }
        })
        expect(listed.read).toBe(6)
        // Listing again finds the same six: nothing was consumed.
        const again = json(yield* run(["--json", "dlq", "list", ...where]))
        expect(again.read).toBe(6)

        broken = false
        const done = yield* run(["dlq", "redrive", ...where, "--error", "timeout"])
        expect(done.code).toBe(0)
        expect(done.stdout).toBe(`redrove 4 of 6 dead letters from ${topic.name}/billing to ${topic.name}`)
        yield* Harness.eventually("billing handled the 4 re-driven", () => billingRuns.size === 4)
        yield* Effect.sleep("500 millis")
        expect([...billingRuns.entries()].sort()).toEqual([
          [0, 1],
          [1, 1],
          [2, 1],
          [3, 1]
        ])
        expect([...auditRuns.values()]).toEqual([1, 1, 1, 1, 1, 1])
        const rest = json(yield* run(["--json", "dlq", "list", ...where]))
        expect(rest.read).toBe(2)
        for (const d of rest.deadLetters) expect(d.error).toContain("invalid iban")
      }).pipe(Effect.scoped, Effect.provide(transport())),
    60_000
  )

  it.live(
    "loss report finds a planted gap without taking the messages from the group",
    () =>
      Effect.gen(function* () {
        const topic = Harness.uniqueName("readings")
        yield* Harness.declare([topic], [[topic, "sensors"]])
        const stamp = yield* LossDetector.stamp({ name: "meter", partitions: 1 })
        const stamped = yield* stamp.interceptor(Harness.envelopes(topic, 12))
        yield* Harness.publishAll(stamped.filter((_, i) => i !== 6 && i !== 7))
        const out = yield* run([
          "--url",
          url,
          "loss",
          "report",
          "--topic",
          topic,
          "--group",
          "sensors",
          "--window",
          "1500ms"
        ])
        expect(out.code).toBe(0)
        expect(out.stdout).toContain("2 messages missing in 1 gap")
        expect(out.stdout).toMatch(new RegExp(`${stamp.producerId}\\s+${topic}\\[0\\]\\s+10\\s+1\\.\\.12\\s+7\\.\\.8`))
        const got = yield* Effect.scoped(
          Effect.flatMap(Harness.subscribe(topic, "sensors", { prefetch: 20 }), (s) => s.consume(10))
        )
        expect(got.map((d) => d.envelope.id).sort()).toEqual(
          stamped
            .filter((_, i) => i !== 6 && i !== 7)
            .map((e) => e.id)
            .sort()
        )
      }).pipe(Effect.scoped, Effect.provide(transport())),
    60_000
  )
})
