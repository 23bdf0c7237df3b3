import { describe, expect, it } from "@effect/vitest"
import { Consumer, DeadLetter, Dedupe, LossDetector, RetryPolicy, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Harness } from "@lossless/testkit"
import { Effect, Schema } from "effect"
import { json, run } from "./support.ts"

/** A named in-process broker: the cli's `memory://<name>` run meets the test's transport. */
const broker = () => {
  const name = Harness.uniqueName("cli").toLowerCase()
  return { url: `memory://${name}`, layer: MemoryTransport.layerWithBroker({ name }) }
}

const Order = Schema.Struct({ n: Schema.Int })

/** Publishes `n` messages and dead-letters each through a group subscription, with `reason(i)`. */
const plantDeadLetters = (topic: string, group: string, n: number, reason: (i: number) => string) =>
  Effect.gen(function* () {
    yield* Harness.declare([topic], [[topic, group]])
    const sent = Harness.envelopes(topic, n)
    yield* Harness.publishAll(sent)
    const sub = yield* Harness.subscribe(topic, group, { prefetch: n })
    for (const delivery of yield* sub.take(n)) {
      yield* delivery.deadLetter(reason(Number(Harness.text(delivery.envelope.payload))))
    }
    return sent
  }).pipe(Effect.scoped)

describe("lossless dlq (memory transport)", () => {
  it.live("list shows dead letters with their reason and consumes none", () => {
    const { url, layer } = broker()
    return Effect.gen(function* () {
      const topic = Harness.uniqueName("orders")
      const sent = yield* plantDeadLetters(topic, "billing", 3, (i) => `card declined #${i}`)
      const args = ["--url", url, "dlq", "list", "--topic", topic, "--group", "billing", "--wait", "300ms"]
      const first = yield* run(args)
      expect(first.code).toBe(0)
      expect(first.stdout).toContain(`3 dead letters in ${topic}/billing`)
      expect(first.stdout).toContain("card declined #1")
      for (const e of sent) expect(first.stdout).toContain(e.id)
      const again = json(yield* run(["--json", ...args]))
      expect(again.read).toBe(3)
      expect(again.deadLetters.map((d: { id: string }) => d.id).sort()).toEqual(sent.map((e) => e.id).sort())
      const broker = yield* MemoryTransport.Broker
      expect(broker.stats(topic, "billing")?.deadLetters).toBe(3)
    }).pipe(Effect.scoped, Effect.provide(layer))
  })

  it.live("show prints one dead letter's headers and payload", () => {
    const { url, layer } = broker()
    return Effect.gen(function* () {
      const topic = Harness.uniqueName("orders")
      const sent = yield* plantDeadLetters(topic, "billing", 2, (i) => `bad amount ${i}`)
      const target = sent[1] as (typeof sent)[number]
      const out = yield* run([
        "--url",
        url,
        "dlq",
        "show",
        target.id,
        "--topic",
        topic,
        "--group",
        "billing",
        "--wait",
        "300ms"
      ])
      expect(out.code).toBe(0)
      expect(out.stdout).toContain(`message id:     ${target.id}`)
      expect(out.stdout).toContain("error:          bad amount 1")
      expect(out.stdout).toContain(`original topic: ${topic}`)
      const missing = yield* run([
        "--url",
        url,
        "dlq",
        "show",
        "nope",
        "--topic",
        topic,
        "--group",
        "billing",
        "--wait",
        "300ms"
      ])
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain(`no dead letter with id nope in ${topic}/billing`)
    }).pipe(Effect.scoped, Effect.provide(layer))
  })

  it.live("redrive republishes the selected dead letters once each, keeps their ids, and leaves the rest", () => {
    const { url, layer } = broker()
    return Effect.gen(function* () {
      const topic = Topic.make(Harness.uniqueName("orders"), Order)
      // billing fails on every message while `broken`; audit handles everything at once.
      let broken = true
      const billingRuns = new Map<number, number>()
      const auditRuns = new Map<number, number>()
      const count = (runs: Map<number, number>, n: number) => runs.set(n, (runs.get(n) ?? 0) + 1)
      const dedupe = { store: yield* Dedupe.memoryStore() }
      yield* Consumer.start({
        topic,
        group: "billing",
        retry: RetryPolicy.none,
        dedupe,
        handler: (m) =>
          broken
            ? Effect.fail(m.payload.n % 2 === 0 ? "timeout calling bank" : "invalid iban")
            : Effect.sync(() => count(billingRuns, m.payload.n))
      })
      yield* Consumer.start({
        topic,
        group: "audit",
        dedupe,
        handler: (m) => Effect.sync(() => count(auditRuns, m.payload.n))
      })
      const encode = (n: number) => Harness.envelope(topic.name, { payload: JSON.stringify({ n }) })
      const sent = Array.from({ length: 6 }, (_, n) => encode(n))
      yield* Harness.publishAll(sent)
      const brokerState = yield* MemoryTransport.Broker
      yield* Harness.eventually("6 dead letters", () => brokerState.stats(topic.name, "billing")?.deadLetters === 6)
      yield* Harness.eventually("audit handled 6", () => auditRuns.size === 6)

      const common = ["--url", url, "dlq", "redrive", "--topic", topic.name, "--group", "billing", "--wait", "300ms"]
      const dry = yield* run([...common, "--error", "TIMEOUT", "--dry-run"])
      expect(dry.code).toBe(0)
      expect(dry.stdout).toContain(`would redrive 3 of 6 dead letters from ${topic.name}/billing to ${topic.name}`)
      expect(brokerState.stats(topic.name, "billing")?.deadLetters).toBe(6)

      broken = false
      const done = yield* run([...common, "--error", "timeout", "--rate", "100/s"])
      expect(done.code).toBe(0)
      expect(done.stdout).toBe(`redrove 3 of 6 dead letters from ${topic.name}/billing to ${topic.name}`)
      yield* Harness.eventually("billing handled the 3 re-driven", () => billingRuns.size === 3)
      yield* Effect.sleep("200 millis")
      expect([...billingRuns.entries()].sort()).toEqual([
        [0, 1],
        [2, 1],
        [4, 1]
      ])
      // audit got the re-published copies too (same ids): dedupe kept its handler from running again.
      expect([...auditRuns.values()]).toEqual([1, 1, 1, 1, 1, 1])
      expect(brokerState.stats(topic.name, "billing")?.deadLetters).toBe(3)

      const rest = json(
        yield* run([
          "--json",
          "--url",
          url,
          "dlq",
          "list",
          "--topic",
          topic.name,
          "--group",
          "billing",
          "--wait",
          "300ms"
        ])
      )
      expect(rest.read).toBe(3)
      for (const d of rest.deadLetters) expect(d.error).toContain("invalid iban")
    }).pipe(Effect.scoped, Effect.provide(layer))
  })

  it.live("redrive strips the dead-letter reason headers", () => {
    const { url, layer } = broker()
    return Effect.gen(function* () {
      const topic = Harness.uniqueName("orders")
      yield* plantDeadLetters(topic, "billing", 1, () => "boom")
      const out = yield* run([
        "--url",
        url,
        "dlq",
        "redrive",
        "--topic",
        topic,
        "--group",
        "billing",
        "--wait",
        "300ms",
        "--limit",
        "1"
      ])
      expect(out.stdout).toBe(`redrove 1 of 1 dead letter from ${topic}/billing to ${topic}`)
      const back = yield* Effect.scoped(Effect.flatMap(Harness.subscribe(topic, "billing"), (sub) => sub.next()))
      expect(DeadLetter.reason(back.envelope)).toBeUndefined()
      expect(back.attempt).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(layer))
  })
})

describe("lossless loss report (memory transport)", () => {
  it.live("reports a planted gap per producer and stream, and leaves the messages to the group", () => {
    const { url, layer } = broker()
    return Effect.gen(function* () {
      const topic = Harness.uniqueName("readings")
      yield* Harness.declare([topic], [[topic, "sensors"]])
      const stamp = yield* LossDetector.stamp({ name: "meter", partitions: 1 })
      const stamped = yield* stamp.interceptor(Harness.envelopes(topic, 10))
      // Sequence 5 never reaches the broker.
      yield* Harness.publishAll(stamped.filter((_, i) => i !== 4))
      const report = json(
        yield* run([
          "--json",
          "--url",
          url,
          "loss",
          "report",
          "--topic",
          topic,
          "--group",
          "sensors",
          "--window",
          "500ms"
        ])
      )
      expect(report.mode).toBe("peek")
      expect(report.stamped).toBe(9)
      expect(report.missing).toBe(1)
      expect(report.gaps).toEqual([{ producerId: stamp.producerId, topic, partition: 0, from: 5, to: 5, count: 1 }])
      expect(report.streams).toHaveLength(1)
      expect(report.streams[0]).toMatchObject({ producerId: stamp.producerId, observed: 9, first: 1, last: 10 })
      // Peeking settled nothing: the group still gets all nine.
      const got = yield* Effect.scoped(
        Effect.flatMap(Harness.subscribe(topic, "sensors", { prefetch: 20 }), (s) => s.consume(9))
      )
      expect(got).toHaveLength(9)

      const human = yield* run([
        "--url",
        url,
        "loss",
        "report",
        "--topic",
        topic,
        "--group",
        "sensors",
        "--window",
        "200ms"
      ])
      expect(human.code).toBe(0)
      expect(human.stdout).toContain("no gaps")
    }).pipe(Effect.scoped, Effect.provide(layer))
  })

  it.live("--audit declares its own group and sees the whole stream", () => {
    const { url, layer } = broker()
    return Effect.gen(function* () {
      const topic = Harness.uniqueName("readings")
      yield* Harness.declare([topic], [[topic, "sensors"]])
      const first = yield* run([
        "--url",
        url,
        "loss",
        "report",
        "--audit",
        "--topic",
        topic,
        "--group",
        "loss-audit",
        "--window",
        "100ms"
      ])
      expect(first.code).toBe(0)
      const stamp = yield* LossDetector.stamp({ name: "meter", partitions: 1 })
      const stamped = yield* stamp.interceptor(Harness.envelopes(topic, 6))
      yield* Harness.publishAll(stamped.filter((_, i) => i !== 2 && i !== 3))
      const out = yield* run([
        "--url",
        url,
        "loss",
        "report",
        "--audit",
        "--topic",
        topic,
        "--group",
        "loss-audit",
        "--window",
        "400ms"
      ])
      expect(out.code).toBe(0)
      expect(out.stdout).toContain("2 messages missing in 1 gap")
      expect(out.stdout).toMatch(new RegExp(`${stamp.producerId}\\s+${topic}\\[0\\]\\s+4\\s+1\\.\\.6\\s+3\\.\\.4`))
      // The application's group is untouched.
      const broker = yield* MemoryTransport.Broker
      expect(broker.stats(topic, "sensors")?.ready).toBe(4)
    }).pipe(Effect.scoped, Effect.provide(layer))
  })
})

describe("lossless topology apply (memory transport)", () => {
  it.live("declares topics and groups from flags and from a file", () => {
    const { url, layer } = broker()
    return Effect.gen(function* () {
      const topic = Harness.uniqueName("orders")
      const out = yield* run([
        "--url",
        url,
        "topology",
        "apply",
        "--topic",
        topic,
        "--group",
        "billing",
        "--group",
        "shipping"
      ])
      expect(out.code).toBe(0)
      expect(out.stdout).toContain("declared 1 topic and 2 groups")
      const broker = yield* MemoryTransport.Broker
      expect(broker.stats(topic, "billing")).toBeDefined()
      expect(broker.stats(topic, "shipping")).toBeDefined()

      const other = Harness.uniqueName("payments")
      const file = `${process.env.TMPDIR ?? "/tmp"}/${other}.json`
      yield* Effect.promise(() =>
        import("node:fs/promises").then((fs) =>
          fs.writeFile(file, JSON.stringify({ groups: [{ topic: other, group: "ledger" }] }))
        )
      )
      const fromFile = json(yield* run(["--json", "--url", url, "topology", "apply", "--file", file]))
      expect(fromFile.applied).toEqual({ topics: [other], groups: [{ topic: other, group: "ledger" }] })
      expect(broker.stats(other, "ledger")).toBeDefined()
    }).pipe(Effect.scoped, Effect.provide(layer))
  })
})

describe("bad arguments and unreachable services", () => {
  it.live("a missing required flag exits 2 naming it", () =>
    Effect.gen(function* () {
      const out = yield* run(["dlq", "list", "--topic", "orders"])
      expect(out.code).toBe(2)
      expect(out.stderr).toContain("Missing required flag: --group")
    })
  )

  it.live("a bad value exits 2 saying what is wrong with it", () =>
    Effect.gen(function* () {
      const duration = yield* run(["dlq", "list", "--topic", "orders", "--group", "g", "--older-than", "soon"])
      expect(duration.code).toBe(2)
      expect(duration.stderr).toContain('"soon" is not a duration')
      const topic = yield* run(["dlq", "list", "--topic", "orders.eu", "--group", "g"])
      expect(topic.code).toBe(2)
      expect(topic.stderr).toContain('invalid topic name "orders.eu"')
      const limit = yield* run(["outbox", "list", "--limit", "0"])
      expect(limit.code).toBe(2)
      expect(limit.stderr).toContain("must be at least 1, got 0")
      const unknown = yield* run(["dlq", "purge"])
      expect(unknown.code).toBe(2)
      expect(unknown.stderr).toContain("purge")
    })
  )

  it.live("contradictory or missing operands exit 1 with the problem", () =>
    Effect.gen(function* () {
      const both = yield* run(["--store", "/nonexistent.db", "outbox", "retry", "abc", "--all-parked"])
      expect(both.code).toBe(1)
      expect(both.stderr).toContain("give either ids or --all-parked, not both")
      const none = yield* run(["outbox", "status"])
      expect(none.code).toBe(1)
      expect(none.stderr).toContain("no outbox database: pass --store")
      const nothing = yield* run(["topology", "apply"])
      expect(nothing.code).toBe(1)
      expect(nothing.stderr).toContain("nothing to declare")
    })
  )

  it.live("a transport URL nobody serves, or that cannot be parsed, is named", () =>
    Effect.gen(function* () {
      const scheme = yield* run(["dlq", "list", "--topic", "a", "--group", "b"], {
        LOSSLESS_URL: "kafka://broker:9092"
      })
      expect(scheme.code).toBe(1)
      expect(scheme.stderr).toContain('no transport registered for scheme "kafka:"')
      const bad = yield* run(["--url", "not a url", "topology", "apply", "--topic", "a"])
      expect(bad.code).toBe(1)
      expect(bad.stderr).toContain("--url: invalid transport URL")
    })
  )

  it.live("an unreachable broker exits 1 naming the host, never the password", () =>
    Effect.gen(function* () {
      const out = yield* run(["--url", "amqp://ops:hunter2@127.0.0.1:1", "topology", "apply", "--topic", "orders"])
      expect(out.code).toBe(1)
      expect(out.stderr).toContain("cannot reach the broker at amqp://ops:***@127.0.0.1:1")
      expect(out.stderr + out.stdout).not.toContain("hunter2")
    })
  )
})
