import { expect, it } from "@effect/vitest"
import { ConnectionLost, Consumer, Envelope, Headers, LossDetector, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Faulty } from "@lossless/testkit"
import { Effect, Layer, Schedule, Schema } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"

const grace = 1_000

/** Stamps `count` messages of one topic across `keys` with a fresh producer epoch. */
const produce = (name: string, topic: string, count: number, keys: number) =>
  Effect.runSync(
    Effect.gen(function* () {
      const { interceptor } = yield* LossDetector.stamp({ name, partitions: 4 })
      const envelopes = Array.from({ length: count }, (_, i) =>
        Envelope.make({
          id: `${name}-${i}`,
          topic,
          payload: new Uint8Array(),
          timestamp: 0,
          key: `k${i % keys}`
        })
      )
      return yield* interceptor(envelopes)
    })
  )

const streamOf = (e: Envelope.Envelope) =>
  `${e.headers[Headers.ProducerId]}|${e.topic}|${(e.headers[Headers.Sequence] as string).split(":")[0]}`
const seqOf = (e: Envelope.Envelope) => Number((e.headers[Headers.Sequence] as string).split(":")[1])

const fresh = { attempt: 1, redelivered: false }

it("the stamp numbers each producer, topic and key partition from 1, and keeps an existing stamp", () => {
  const [a, b, c] = produce("p", "orders", 3, 1)
  expect(a?.headers[Headers.Sequence]).toMatch(/^\d+:1$/)
  expect(b?.headers[Headers.Sequence]).toMatch(/^\d+:2$/)
  expect(c?.headers[Headers.ProducerId]).toMatch(/^p\//)
  const again = Effect.runSync(
    Effect.flatMap(LossDetector.stamp({ name: "p" }), (s) => s.interceptor([a as Envelope.Envelope]))
  )
  expect(again[0]?.headers).toEqual(a?.headers)
})

it("each restart of a producer gets a new epoch", () => {
  const first = produce("p", "orders", 1, 1)[0]
  const second = produce("p", "orders", 1, 1)[0]
  expect(first?.headers[Headers.ProducerId]).not.toBe(second?.headers[Headers.ProducerId])
  expect(second?.headers[Headers.Sequence]).toMatch(/:1$/)
})

it("reports exactly the dropped sequences, whatever the reordering, duplicates and producer restarts", () => {
  const scenario = fc.record({
    epochs: fc.array(fc.record({ count: fc.integer({ min: 1, max: 40 }), keys: fc.integer({ min: 1, max: 5 }) }), {
      minLength: 1,
      maxLength: 4
    }),
    fate: fc.array(
      fc.record({
        drop: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
        copies: fc.integer({ min: 1, max: 3 }),
        delays: fc.array(fc.integer({ min: 0, max: grace - 1 }), { minLength: 3, maxLength: 3 })
      }),
      { minLength: 160, maxLength: 160 }
    ),
    sweeps: fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 10 })
  })
  fc.assert(
    fc.property(scenario, ({ epochs, fate, sweeps }) => {
      const start = Date.now() - 10_000
      const tracker = new LossDetector.Tracker(start, { graceWindow: grace })
      const sent = epochs.flatMap((epoch, i) =>
        produce(`p${i % 2}`, i % 3 === 0 ? "orders" : "payments", epoch.count, epoch.keys)
      )
      const arrivals: Array<{ at: number; envelope: Envelope.Envelope }> = []
      const dropped = new Set<string>()
      const delivered = new Map<string, number>() // stream -> highest delivered sequence
      let duplicates = 0
      sent.forEach((envelope, i) => {
        const f = fate[i % fate.length]!
        const id = `${streamOf(envelope)}#${seqOf(envelope)}`
        if (f.drop) {
          dropped.add(id)
          return
        }
        const sentAt = start + 1 + i * 10
        for (let c = 0; c < f.copies; c++) arrivals.push({ at: sentAt + f.delays[c]!, envelope })
        duplicates += f.copies - 1
        delivered.set(streamOf(envelope), Math.max(delivered.get(streamOf(envelope)) ?? 0, seqOf(envelope)))
      })
      arrivals.sort((x, y) => x.at - y.at)
      const sweepAt = new Set(sweeps.map((s) => s % Math.max(arrivals.length, 1)))
      arrivals.forEach(({ at, envelope }, i) => {
        if (sweepAt.has(i)) tracker.sweep(at)
        tracker.observe(envelope, fresh, at)
      })
      const end = (arrivals.at(-1)?.at ?? start) + grace
      tracker.sweep(end)
      const report = tracker.report()
      const reported = new Set<string>()
      for (const gap of report.gaps) {
        for (let s = gap.from; s <= gap.to; s++) reported.add(`${gap.producerId}|${gap.topic}|${gap.partition}#${s}`)
      }
      // A drop after the last delivered message of its stream leaves no trace to detect.
      const detectable = [...dropped].filter((id) => {
        const [stream, seq] = id.split("#") as [string, string]
        return Number(seq) < (delivered.get(stream) ?? 0)
      })
      expect([...reported].sort()).toEqual(detectable.sort())
      expect(report.lost).toBe(detectable.length)
      expect(report.duplicates).toBe(duplicates)
      expect(report.pending).toBe(0)
      expect(report.late).toBe(0)
    }),
    { numRuns: 300 }
  )
})

it("redelivered and retried messages are not duplicates; a fresh repeat is", () => {
  const tracker = new LossDetector.Tracker(0)
  const [a, b] = produce("p", "orders", 2, 1) as [Envelope.Envelope, Envelope.Envelope]
  tracker.observe(a, fresh, 1)
  tracker.observe(a, { attempt: 1, redelivered: true }, 2)
  tracker.observe(a, { attempt: 2, redelivered: false }, 3)
  expect(tracker.report().duplicates).toBe(0)
  tracker.observe(a, fresh, 4)
  tracker.observe(b, fresh, 5)
  expect(tracker.report()).toMatchObject({ duplicates: 1, observed: 5, lost: 0 })
})

it("a sequence that arrives after being declared lost is counted late and no longer lost", () => {
  const tracker = new LossDetector.Tracker(Date.now() - 1000, { graceWindow: 100 })
  const [a, b, c] = produce("p", "orders", 3, 1) as [Envelope.Envelope, Envelope.Envelope, Envelope.Envelope]
  tracker.observe(a, fresh, 0)
  tracker.observe(c, fresh, 10)
  expect(tracker.sweep(50)).toHaveLength(0)
  expect(tracker.report().pending).toBe(1)
  expect(tracker.sweep(110)).toMatchObject([{ from: 2, to: 2 }])
  tracker.observe(b, fresh, 500)
  expect(tracker.report()).toMatchObject({ lost: 0, late: 1, duplicates: 0 })
})

it("a producer that started before the detector is joined mid-stream: earlier sequences are not lost", () => {
  const sent = produce("p", "orders", 50, 1)
  const tracker = new LossDetector.Tracker(Date.now() + 60_000, { graceWindow: 100 })
  const t0 = Date.now() + 60_000
  // The detector starts watching at sequence 40; 38 arrives late (reordered), 39 is lost.
  tracker.observe(sent[39]!, fresh, t0)
  tracker.observe(sent[37]!, fresh, t0 + 5)
  for (let i = 40; i < 50; i++) tracker.observe(sent[i]!, fresh, t0 + 10 + i)
  tracker.sweep(t0 + 1000)
  expect(tracker.report().gaps.map((g) => [g.from, g.to])).toEqual([[39, 39]])
  expect(tracker.report().lost).toBe(1)
})

it("messages without a stamp are ignored", () => {
  const tracker = new LossDetector.Tracker(0)
  tracker.observe(Envelope.make({ id: "x", topic: "t", payload: new Uint8Array(), timestamp: 0 }), fresh, 1)
  expect(tracker.report()).toMatchObject({ observed: 0, streams: 0 })
})

const Orders = Topic.make("orders", Schema.Struct({ n: Schema.Number }))

it.effect("end to end: a message the broker lost after confirming is reported, and nothing else", () => {
  const faulty = Faulty.make({ publish: (call) => (call === 5 ? { _tag: "Drop" } : Faulty.pass) })
  const layer = Publisher.layer({ lossDetection: { name: "checkout" } }).pipe(
    Layer.provideMerge(faulty.layer),
    Layer.provideMerge(MemoryTransport.layerWithBroker())
  )
  return Effect.gen(function* () {
    const detector = yield* LossDetector.make({ graceWindow: "10 seconds" })
    let handled = 0
    yield* Consumer.start({
      topic: Orders,
      group: "audit",
      lossDetector: detector,
      handler: () => Effect.sync(() => handled++)
    })
    for (let n = 1; n <= 10; n++) yield* Publisher.send(Orders, { n })
    for (let i = 0; i < 20; i++) yield* Effect.yieldNow
    expect(handled).toBe(9)
    expect((yield* detector.report).lost).toBe(0)
    yield* TestClock.adjust("10 seconds")
    const report = yield* detector.report
    expect(report.lost).toBe(1)
    expect(report.gaps).toMatchObject([{ topic: "orders", from: 5, to: 5 }])
    expect(report.gaps[0]?.producerId).toMatch(/^checkout\//)
    expect(report.duplicates).toBe(0)
  }).pipe(Effect.provide(layer))
})

it.effect("end to end: a duplicate publish (lost confirm) is reported as a duplicate, not a loss", () => {
  const faulty = Faulty.make({
    publish: (call) =>
      call === 3
        ? {
            _tag: "LoseConfirm",
            error: (e) => new ConnectionLost({ transport: "memory", reason: `lost confirm of ${e.id}` })
          }
        : Faulty.pass
  })
  const layer = Publisher.layer({ lossDetection: true, retry: Schedule.recurs(2) }).pipe(
    Layer.provideMerge(faulty.layer),
    Layer.provideMerge(MemoryTransport.layerWithBroker())
  )
  return Effect.gen(function* () {
    const detector = yield* LossDetector.make({ graceWindow: "1 second" })
    yield* Consumer.start({ topic: Orders, group: "audit", lossDetector: detector, handler: () => Effect.void })
    for (let n = 1; n <= 5; n++) yield* Publisher.send(Orders, { n })
    for (let i = 0; i < 20; i++) yield* Effect.yieldNow
    yield* TestClock.adjust("2 seconds")
    expect(yield* detector.report).toMatchObject({ lost: 0, duplicates: 1, observed: 6 })
  }).pipe(Effect.provide(layer))
})
