import { describe, expect, it } from "@effect/vitest"
import { type Delivery, Envelope, Headers, MessageId, Transport, TransportUrl } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Harness } from "@lossless/testkit"
import { Effect, Exit, Fiber, Layer, Queue, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"

const text = Harness.text

/** Lets forked fibers (the broker's timer, subscription pumps) run until they block again. */
const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

/** An envelope made on the Effect clock, so virtual time sets its timestamp. */
const envelope = (topic: string, payload: string, fields: { readonly deliverAt?: number } = {}) =>
  Effect.map(MessageId.make, (id) =>
    Envelope.make({
      id,
      topic,
      payload: Harness.bytes(payload),
      timestamp: MessageId.timestampOf(id),
      deliverAt: fields.deliverAt
    })
  )

const publish = (topic: string, payloads: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const batch = yield* Effect.forEach(payloads, (p) => envelope(topic, p))
    yield* Harness.publishAll(batch)
    return batch
  })

/** A subscription read without waiting on any clock: what has arrived, after the fibers had their turn. */
const open = (
  topic: string,
  group: string,
  options: { readonly prefetch?: number; readonly source?: "main" | "dead" } = {}
) =>
  Effect.gen(function* () {
    const transport = yield* Transport.Transport
    const settings = { prefetch: options.prefetch ?? 16 }
    const stream =
      options.source === "dead"
        ? transport.subscribeDeadLetters(topic, group, settings)
        : transport.subscribe(topic, group, settings)
    const inbox = yield* Queue.unbounded<Delivery.Delivery>()
    const fiber = yield* Effect.forkScoped(Stream.runForEach(stream, (d) => Queue.offer(inbox, d)))
    yield* settle
    /** Everything delivered so far. */
    const arrived = Effect.andThen(settle, Queue.clear(inbox))
    /** Exactly one delivery has arrived; returns it. */
    const one = Effect.map(arrived, (ds) => {
      expect(ds.map((d) => text(d.envelope.payload))).toHaveLength(1)
      return ds[0] as Delivery.Delivery
    })
    return { arrived, one, close: Effect.andThen(Fiber.interrupt(fiber), settle) }
  })

const payloads = (deliveries: ReadonlyArray<Delivery.Delivery>) => deliveries.map((d) => text(d.envelope.payload))

const statsOf = (topic: string, group: string) =>
  MemoryTransport.Broker.use((b) => Effect.succeed(b.stats(topic, group)))

describe("MemoryBroker", () => {
  describe("retryLater on virtual time", () => {
    it.effect("redelivers after the delay, not before, with attempt 2", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        const [sent] = yield* publish("orders", ["o-1"])
        const sub = yield* open("orders", "billing")
        const first = yield* sub.one
        expect(first.attempt).toBe(1)
        expect(Envelope.attempt(first.envelope)).toBe(1)

        yield* first.retryLater("10 minutes")
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 0, inflight: 0, delayed: 1, deadLetters: 0 })

        yield* TestClock.adjust("599 seconds")
        expect(yield* sub.arrived).toEqual([])

        yield* TestClock.adjust("1 second")
        const second = yield* sub.one
        expect(second.envelope.id).toBe(sent?.id)
        expect(text(second.envelope.payload)).toBe("o-1")
        expect(second.attempt).toBe(2)
        expect(Envelope.attempt(second.envelope)).toBe(2)
        expect(second.redelivered).toBe(false)

        yield* second.retryLater("1 minute")
        yield* TestClock.adjust("1 minute")
        expect((yield* sub.one).attempt).toBe(3)
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )
  })

  describe("delayed delivery", () => {
    it.effect("holds a message with a future deliverAt until the clock reaches it", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        const sub = yield* open("orders", "billing")
        const delayed = yield* envelope("orders", "later", { deliverAt: 5 * 60_000 })
        yield* Harness.publishAll([delayed])
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 0, inflight: 0, delayed: 1, deadLetters: 0 })

        yield* TestClock.adjust("299 seconds")
        expect(yield* sub.arrived).toEqual([])

        yield* TestClock.adjust("1 second")
        const got = yield* sub.one
        expect(got.envelope.id).toBe(delayed.id)
        expect(got.envelope.deliverAt).toBe(5 * 60_000)
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("delivers a deliverAt that is already due at once", () =>
      Effect.gen(function* () {
        yield* TestClock.adjust("1 hour")
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        const sub = yield* open("orders", "billing")
        yield* Harness.publishAll([yield* envelope("orders", "due", { deliverAt: 60_000 })])
        expect(payloads(yield* sub.arrived)).toEqual(["due"])
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("releases several delayed messages in the order they fall due, not the order sent", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        const sub = yield* open("orders", "billing")
        const dueIn = { "3m": 3 * 60_000, "1m": 60_000, "2m": 2 * 60_000, "4m": 4 * 60_000 }
        for (const [name, at] of Object.entries(dueIn)) {
          yield* Harness.publishAll([yield* envelope("orders", name, { deliverAt: at })])
        }
        yield* publish("orders", ["now"])
        expect(payloads(yield* sub.arrived)).toEqual(["now"])

        yield* TestClock.adjust("1 minute")
        expect(payloads(yield* sub.arrived)).toEqual(["1m"])
        yield* TestClock.adjust("150 seconds")
        expect(payloads(yield* sub.arrived)).toEqual(["2m", "3m"])
        yield* TestClock.adjust("30 seconds")
        expect(payloads(yield* sub.arrived)).toEqual(["4m"])
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("releases delayed messages due together in due-time order when the clock jumps past them", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        const sub = yield* open("orders", "billing")
        for (const [name, at] of [
          ["c", 30_000],
          ["a", 10_000],
          ["d", 40_000],
          ["b", 20_000]
        ] as const) {
          yield* Harness.publishAll([yield* envelope("orders", name, { deliverAt: at })])
        }
        yield* TestClock.adjust("1 hour")
        expect(payloads(yield* sub.arrived)).toEqual(["a", "b", "c", "d"])
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )
  })

  describe("missing destinations", () => {
    it.effect("fails a publish to a declared topic without groups with Unroutable", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["lonely"], [])
        const sent = yield* envelope("lonely", "x")
        const error = yield* Effect.flip(Transport.publishOne(sent))
        expect(error).toMatchObject({ _tag: "Unroutable", topic: "lonely", messageId: sent.id })
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("fails a publish to an undeclared topic with TopicNotFound", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Transport.publishOne(yield* envelope("nowhere", "x")))
        expect(error).toMatchObject({ _tag: "TopicNotFound", topic: "nowhere" })
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("fails a subscription to an undeclared topic with TopicNotFound", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const error = yield* Effect.flip(Stream.runHead(transport.subscribe("nowhere", "billing", { prefetch: 1 })))
        expect(error).toMatchObject({ _tag: "TopicNotFound", topic: "nowhere" })
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("fails a subscription to an undeclared group with GroupNotFound", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        const transport = yield* Transport.Transport
        const error = yield* Effect.flip(Stream.runHead(transport.subscribe("orders", "shipping", { prefetch: 1 })))
        expect(error).toMatchObject({ _tag: "GroupNotFound", topic: "orders", group: "shipping" })
        const dead = yield* Effect.flip(
          Stream.runHead(transport.subscribeDeadLetters("orders", "shipping", { prefetch: 1 }))
        )
        expect(dead).toMatchObject({ _tag: "GroupNotFound", topic: "orders", group: "shipping" })
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("rejects invalid names when declaring", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Harness.declare(["orders.v1"], []))
        expect(error).toMatchObject({ _tag: "InvalidName", kind: "topic", name: "orders.v1" })
        const group = yield* Effect.flip(Harness.declare(["orders"], [["orders", "bad group"]]))
        expect(group).toMatchObject({ _tag: "InvalidName", kind: "group", name: "bad group" })
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )
  })

  describe("Broker stats", () => {
    it.effect("count ready, in-flight, delayed and dead-lettered messages of a group", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 0, inflight: 0, delayed: 0, deadLetters: 0 })
        expect(yield* statsOf("orders", "shipping")).toBeUndefined()
        expect(yield* statsOf("nowhere", "billing")).toBeUndefined()

        yield* publish("orders", ["a", "b", "c", "d"])
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 4, inflight: 0, delayed: 0, deadLetters: 0 })

        const sub = yield* open("orders", "billing", { prefetch: 2 })
        const [a, b] = yield* sub.arrived
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 2, inflight: 2, delayed: 0, deadLetters: 0 })

        yield* (a as Delivery.Delivery).retryLater("1 minute")
        yield* (b as Delivery.Delivery).deadLetter("poison")
        const [c, d] = yield* sub.arrived
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 0, inflight: 2, delayed: 1, deadLetters: 1 })

        yield* (c as Delivery.Delivery).ack
        yield* (d as Delivery.Delivery).ack
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 0, inflight: 0, delayed: 1, deadLetters: 1 })

        yield* TestClock.adjust("1 minute")
        const [again] = yield* sub.arrived
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 0, inflight: 1, delayed: 0, deadLetters: 1 })
        yield* (again as Delivery.Delivery).ack
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 0, inflight: 0, delayed: 0, deadLetters: 1 })
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("keep each group's counts apart", () =>
      Effect.gen(function* () {
        yield* Harness.declare(
          ["orders"],
          [
            ["orders", "billing"],
            ["orders", "shipping"]
          ]
        )
        yield* publish("orders", ["a", "b"])
        const sub = yield* open("orders", "billing", { prefetch: 1 })
        yield* sub.one
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 1, inflight: 1, delayed: 0, deadLetters: 0 })
        expect(yield* statsOf("orders", "shipping")).toEqual({ ready: 2, inflight: 0, delayed: 0, deadLetters: 0 })
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )
  })

  describe("dead letters", () => {
    it.effect("moves a dead-lettered message to the group's dead letters with its reason", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        const [sent] = yield* publish("orders", ["poison"])
        const sub = yield* open("orders", "billing")
        yield* (yield* sub.one).deadLetter("cannot parse")
        const dead = yield* open("orders", "billing", { source: "dead" })
        const got = yield* dead.one
        expect(got.envelope.id).toBe(sent?.id)
        expect(text(got.envelope.payload)).toBe("poison")
        expect(got.envelope.headers[Headers.ErrorMessage]).toBe("cannot parse")
        expect(got.envelope.headers[Headers.OriginalTopic]).toBe("orders")
        yield* got.ack
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 0, inflight: 0, delayed: 0, deadLetters: 0 })
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )
  })

  describe("named brokers", () => {
    it.effect("two layers with the same name, built separately, share messages", () =>
      Effect.gen(function* () {
        const name = Harness.uniqueName("shared")
        const producer = yield* Layer.build(MemoryTransport.layer({ name }))
        const consumer = yield* Layer.build(MemoryTransport.layer({ name }))
        yield* Harness.declare(["orders"], [["orders", "billing"]]).pipe(Effect.provide(producer))
        yield* publish("orders", ["hello"]).pipe(Effect.provide(producer))
        const got = yield* Effect.gen(function* () {
          const sub = yield* open("orders", "billing")
          return payloads(yield* sub.arrived)
        }).pipe(Effect.provide(consumer))
        expect(got).toEqual(["hello"])
      })
    )

    it.effect("memory://<name> reaches the broker of MemoryTransport.layer with that name", () =>
      Effect.gen(function* () {
        const name = Harness.uniqueName("url")
        const producer = yield* Layer.build(MemoryTransport.layer({ name }))
        const consumer = yield* Layer.build(TransportUrl.layer([MemoryTransport.plugin], `memory://${name}`))
        yield* Harness.declare(["orders"], [["orders", "billing"]]).pipe(Effect.provide(producer))
        yield* publish("orders", ["via-url"]).pipe(Effect.provide(producer))
        const got = yield* Effect.gen(function* () {
          const sub = yield* open("orders", "billing")
          return payloads(yield* sub.arrived)
        }).pipe(Effect.provide(consumer))
        expect(got).toEqual(["via-url"])
      })
    )

    it.effect("layers without a name, and memory:// without a host, each get their own broker", () =>
      Effect.gen(function* () {
        const first = yield* Layer.build(MemoryTransport.layer())
        for (const other of [
          MemoryTransport.layer(),
          TransportUrl.layer([MemoryTransport.plugin], "memory://"),
          MemoryTransport.layer({ name: Harness.uniqueName("other") })
        ]) {
          const second = yield* Layer.build(other)
          yield* Harness.declare(["orders"], [["orders", "billing"]]).pipe(Effect.provide(first))
          const error = yield* Effect.flip(Transport.publishOne(yield* envelope("orders", "x"))).pipe(
            Effect.provide(second)
          )
          expect(error._tag).toBe("TopicNotFound")
        }
      })
    )

    it.effect("a named broker is released with the last layer using it", () =>
      Effect.gen(function* () {
        const name = Harness.uniqueName("released")
        const scopeA = yield* Scope.make()
        const scopeB = yield* Scope.make()
        const a = yield* Layer.buildWithScope(MemoryTransport.layer({ name }), scopeA)
        const b = yield* Layer.buildWithScope(MemoryTransport.layer({ name }), scopeB)
        yield* Harness.declare(["orders"], [["orders", "billing"]]).pipe(Effect.provide(a))
        yield* Scope.close(scopeA, Exit.void)
        // Still held by b.
        yield* publish("orders", ["kept"]).pipe(Effect.provide(b))
        yield* Scope.close(scopeB, Exit.void)

        const fresh = yield* Layer.build(MemoryTransport.layer({ name }))
        const error = yield* Effect.flip(Transport.publishOne(yield* envelope("orders", "x"))).pipe(
          Effect.provide(fresh)
        )
        expect(error._tag).toBe("TopicNotFound")
      })
    )
  })

  describe("payload ownership", () => {
    it.effect("keeps its own copy: changing the publisher's buffer after publish changes nothing delivered", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        const sent = yield* envelope("orders", "original")
        yield* Harness.publishAll([sent])
        sent.payload.fill(0x21)
        ;(sent.headers as Record<string, string>).tampered = "yes"
        const sub = yield* open("orders", "billing")
        const got = yield* sub.one
        expect(text(got.envelope.payload)).toBe("original")
        expect(got.envelope.headers).not.toHaveProperty("tampered")
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("gives each group bytes of its own: one consumer changing its payload does not reach another group", () =>
      Effect.gen(function* () {
        yield* Harness.declare(
          ["orders"],
          [
            ["orders", "billing"],
            ["orders", "shipping"]
          ]
        )
        yield* publish("orders", ["original"])
        const billing = yield* open("orders", "billing")
        const got = yield* billing.one
        got.envelope.payload.fill(0x21)
        const shipping = yield* open("orders", "shipping")
        expect(text((yield* shipping.one).envelope.payload)).toBe("original")
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("redelivers the bytes as published even if a consumer changed its copy", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        yield* publish("orders", ["original"])
        const sub = yield* open("orders", "billing")
        const first = yield* sub.one
        first.envelope.payload.fill(0x21)
        yield* first.retryLater("1 second")
        yield* TestClock.adjust("1 second")
        expect(text((yield* sub.one).envelope.payload)).toBe("original")
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )
  })

  describe("unsettled messages after a subscriber leaves", () => {
    it.effect("go back to their original place in the queue, marked redelivered", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        yield* publish("orders", ["m0", "m1", "m2", "m3", "m4", "m5", "m6"])
        const first = yield* open("orders", "billing", { prefetch: 4 })
        const taken = yield* first.arrived
        expect(payloads(taken)).toEqual(["m0", "m1", "m2", "m3"])
        // m1 and m3 are done; m0 and m2 stay unsettled when the subscriber leaves.
        yield* (taken[1] as Delivery.Delivery).ack
        yield* (taken[3] as Delivery.Delivery).ack
        const moreTaken = yield* first.arrived
        expect(payloads(moreTaken)).toEqual(["m4", "m5"])
        yield* first.close
        expect(yield* statsOf("orders", "billing")).toEqual({ ready: 5, inflight: 0, delayed: 0, deadLetters: 0 })

        const second = yield* open("orders", "billing", { prefetch: 16 })
        const again = yield* second.arrived
        expect(payloads(again)).toEqual(["m0", "m2", "m4", "m5", "m6"])
        expect(again.map((d) => d.redelivered)).toEqual([true, true, true, true, false])
        expect(again.map((d) => d.attempt)).toEqual([1, 1, 1, 1, 1])
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("cannot be settled through the closed subscription", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        yield* publish("orders", ["m0"])
        const sub = yield* open("orders", "billing")
        const held = yield* sub.one
        yield* sub.close
        const error = yield* Effect.flip(held.ack)
        expect(error).toMatchObject({ _tag: "SettlementFailed", settlement: "ack", messageId: held.envelope.id })
        const second = yield* open("orders", "billing")
        expect(payloads(yield* second.arrived)).toEqual(["m0"])
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )

    it.effect("a delivery is settled at most once", () =>
      Effect.gen(function* () {
        yield* Harness.declare(["orders"], [["orders", "billing"]])
        yield* publish("orders", ["m0"])
        const sub = yield* open("orders", "billing")
        const held = yield* sub.one
        yield* held.ack
        const error = yield* Effect.flip(held.retryLater("1 second"))
        expect(error).toMatchObject({ _tag: "SettlementFailed", settlement: "retryLater" })
        yield* TestClock.adjust("1 hour")
        expect(yield* sub.arrived).toEqual([])
      }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
    )
  })

  it.effect("reads nothing ahead of the subscriber's prefetch", () =>
    Effect.gen(function* () {
      yield* Harness.declare(["orders"], [["orders", "billing"]])
      yield* publish("orders", ["a", "b", "c"])
      const sub = yield* open("orders", "billing", { prefetch: 1 })
      const a = yield* sub.one
      expect(yield* sub.arrived).toEqual([])
      yield* a.ack
      expect(payloads([yield* sub.one])).toEqual(["b"])
    }).pipe(Effect.provide(MemoryTransport.layerWithBroker()))
  )
})
