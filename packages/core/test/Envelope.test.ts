import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Envelope, Headers, MalformedEnvelope, MessageId } from "../src/index.ts"

const payload = new TextEncoder().encode('{"id":"o-1"}')

const full = Envelope.make({
  id: "0190f2c4-9b1e-7a00-8000-000000000001",
  topic: "orders",
  payload,
  timestamp: 1_720_000_000_123,
  key: "customer-7",
  headers: { tenant: "eu", [Headers.Attempt]: "3", [Headers.Traceparent]: "00-abc-def-01" },
  deliverAt: 1_720_000_060_000
})

describe("Envelope.make", () => {
  it("fills absent optional fields with undefined or empty headers", () => {
    const envelope = Envelope.make({ id: "a", topic: "t", payload, timestamp: 5 })
    expect(envelope).toEqual({
      id: "a",
      topic: "t",
      key: undefined,
      payload,
      headers: {},
      timestamp: 5,
      deliverAt: undefined
    })
  })
})

describe("Envelope wire mapping", () => {
  it("writes id, timestamp, key and deliverAt as reserved headers next to the user headers", () => {
    expect(Envelope.toWireHeaders(full)).toEqual({
      tenant: "eu",
      [Headers.Attempt]: "3",
      [Headers.Traceparent]: "00-abc-def-01",
      [Headers.MessageId]: full.id,
      [Headers.Timestamp]: "1720000000123",
      [Headers.Key]: "customer-7",
      [Headers.DeliverAt]: "1720000060000"
    })
  })

  it("omits key and deliverAt headers when the envelope has none", () => {
    const wire = Envelope.toWireHeaders(Envelope.make({ id: "a", topic: "t", payload, timestamp: 5 }))
    expect(wire).toEqual({ [Headers.MessageId]: "a", [Headers.Timestamp]: "5" })
  })

  it("wireHeaders: the envelope's own headers when nothing is added, else what toWireHeaders writes", () => {
    const at = 1_720_000_000_123
    const id = MessageId.fromMillis(at)
    const headers = { tenant: "eu" }
    const plain = Envelope.make({ id, topic: "t", payload, timestamp: at, headers })
    // The id carried in a broker field and implying the timestamp: nothing to add, no copy.
    expect(Envelope.wireHeaders(plain, { id: false })).toBe(headers)
    const variants = [
      plain,
      { ...plain, timestamp: at + 1 },
      { ...plain, key: "k" },
      { ...plain, deliverAt: at + 5 },
      { ...plain, id: "order-1" },
      // Inherited names are not headers: such an object is copied, own names only.
      { ...plain, headers: Object.assign(Object.create({ inherited: "x" }), headers) }
    ]
    for (const envelope of variants) {
      for (const options of [{ id: false }, { id: true }, undefined]) {
        const wire = Envelope.wireHeaders(envelope, options)
        expect({ ...wire }).toEqual(Envelope.toWireHeaders(envelope, options))
        if (envelope !== plain || options?.id !== false) expect(wire).not.toBe(envelope.headers)
      }
    }
  })

  it("does not let a header named like a structural one override the envelope's own fields", () => {
    const forged = Envelope.make({
      id: "real",
      topic: "t",
      payload,
      timestamp: 7,
      headers: { [Headers.MessageId]: "forged" }
    })
    expect(Envelope.toWireHeaders(forged)[Headers.MessageId]).toBe("real")
  })

  it.effect("round-trips through toWireHeaders and fromWire", () =>
    Effect.gen(function* () {
      const back = yield* Envelope.fromWire({ topic: "orders", payload, headers: Envelope.toWireHeaders(full) })
      expect(back).toEqual(full)
    })
  )

  it.effect("round-trips an envelope without key or deliverAt", () =>
    Effect.gen(function* () {
      const bare = Envelope.make({ id: "x-1", topic: "orders", payload, timestamp: 0 })
      const back = yield* Envelope.fromWire({ topic: "orders", payload, headers: Envelope.toWireHeaders(bare) })
      expect(back).toEqual(bare)
    })
  )

  it.effect("keeps structural headers out of the rebuilt envelope's headers", () =>
    Effect.gen(function* () {
      const back = yield* Envelope.fromWire({ topic: "orders", payload, headers: Envelope.toWireHeaders(full) })
      for (const name of [Headers.MessageId, Headers.Timestamp, Headers.Key, Headers.DeliverAt]) {
        expect(back.headers).not.toHaveProperty(name)
      }
      expect(back.headers).toEqual({ tenant: "eu", [Headers.Attempt]: "3", [Headers.Traceparent]: "00-abc-def-01" })
    })
  )

  it.effect("uses the broker's key field when no key header is present, and prefers the header", () =>
    Effect.gen(function* () {
      const headers = { [Headers.MessageId]: "a", [Headers.Timestamp]: "1" }
      expect((yield* Envelope.fromWire({ topic: "t", payload, headers, key: "native" })).key).toBe("native")
      const withHeader = { ...headers, [Headers.Key]: "from-header" }
      expect((yield* Envelope.fromWire({ topic: "t", payload, headers: withHeader, key: "native" })).key).toBe(
        "from-header"
      )
    })
  )

  it.effect("skips headers whose value is undefined", () =>
    Effect.gen(function* () {
      const headers = { [Headers.MessageId]: "a", [Headers.Timestamp]: "1", present: "yes", absent: undefined }
      expect((yield* Envelope.fromWire({ topic: "t", payload, headers })).headers).toEqual({ present: "yes" })
    })
  )

  it.effect("fails with MalformedEnvelope when the message id header is missing or empty", () =>
    Effect.gen(function* () {
      for (const headers of [{ [Headers.Timestamp]: "1" }, { [Headers.MessageId]: "", [Headers.Timestamp]: "1" }]) {
        const error = yield* Effect.flip(Envelope.fromWire({ topic: "orders", payload, headers }))
        expect(error).toBeInstanceOf(MalformedEnvelope)
        expect(error.topic).toBe("orders")
        expect(error.reason).toContain(Headers.MessageId)
        expect(error.retryable).toBe(false)
      }
    })
  )

  it.effect("fails with MalformedEnvelope when the timestamp is missing or not a number", () =>
    Effect.gen(function* () {
      for (const timestamp of [undefined, "soon", "NaN", "Infinity"]) {
        const headers = { [Headers.MessageId]: "a", [Headers.Timestamp]: timestamp }
        const error = yield* Effect.flip(Envelope.fromWire({ topic: "orders", payload, headers }))
        expect(error._tag, String(timestamp)).toBe("MalformedEnvelope")
        expect(error.reason).toContain(Headers.Timestamp)
      }
    })
  )

  it.effect("fails with MalformedEnvelope for an empty or blank timestamp instead of reading it as epoch 0", () =>
    Effect.gen(function* () {
      for (const timestamp of ["", " "]) {
        const headers = { [Headers.MessageId]: "a", [Headers.Timestamp]: timestamp }
        const exit = yield* Effect.exit(Envelope.fromWire({ topic: "orders", payload, headers }))
        expect(exit._tag, JSON.stringify(timestamp)).toBe("Failure")
      }
    })
  )

  it.effect("fails with MalformedEnvelope for an empty deliverAt instead of reading it as epoch 0", () =>
    Effect.gen(function* () {
      const headers = { [Headers.MessageId]: "a", [Headers.Timestamp]: "1", [Headers.DeliverAt]: "" }
      const exit = yield* Effect.exit(Envelope.fromWire({ topic: "orders", payload, headers }))
      expect(exit._tag).toBe("Failure")
    })
  )

  it.effect("fails with MalformedEnvelope when deliverAt is not a number", () =>
    Effect.gen(function* () {
      const headers = { [Headers.MessageId]: "a", [Headers.Timestamp]: "1", [Headers.DeliverAt]: "tomorrow" }
      const error = yield* Effect.flip(Envelope.fromWire({ topic: "orders", payload, headers }))
      expect(error._tag).toBe("MalformedEnvelope")
      expect(error.reason).toContain(Headers.DeliverAt)
    })
  )
})

describe("Envelope attempts and headers", () => {
  it("reads attempt 1 when no attempt is recorded or the header is not a positive integer", () => {
    const base = Envelope.make({ id: "a", topic: "t", payload, timestamp: 0 })
    expect(Envelope.attempt(base)).toBe(1)
    for (const raw of ["", "0", "-2", "1.5", "two"]) {
      expect(Envelope.attempt(Envelope.withHeaders(base, { [Headers.Attempt]: raw })), raw).toBe(1)
    }
    expect(Envelope.attempt(Envelope.withHeaders(base, { [Headers.Attempt]: "4" }))).toBe(4)
  })

  it("records an attempt on a copy, leaving the original unchanged", () => {
    const base = Envelope.make({ id: "a", topic: "t", payload, timestamp: 0, headers: { tenant: "eu" } })
    const third = Envelope.withAttempt(base, 3)
    expect(Envelope.attempt(third)).toBe(3)
    expect(third.headers).toEqual({ tenant: "eu", [Headers.Attempt]: "3" })
    expect(Envelope.attempt(base)).toBe(1)
    expect(base.headers).toEqual({ tenant: "eu" })
    expect(Envelope.attempt(Envelope.withAttempt(third, 7))).toBe(7)
  })

  it("adds headers on a copy, later names winning", () => {
    const base = Envelope.make({ id: "a", topic: "t", payload, timestamp: 0, headers: { a: "1", b: "2" } })
    const next = Envelope.withHeaders(base, { b: "3", c: "4" })
    expect(next.headers).toEqual({ a: "1", b: "3", c: "4" })
    expect(base.headers).toEqual({ a: "1", b: "2" })
    expect(next.id).toBe("a")
  })
})

describe("Envelope wire timestamp", () => {
  it.effect("a UUIDv7 id made at the message's time carries it: no timestamp header, and the time comes back", () =>
    Effect.gen(function* () {
      const timestamp = 1_763_700_000_123
      const envelope = Envelope.make({
        id: MessageId.fromMillis(timestamp),
        topic: "orders",
        payload: new Uint8Array([1]),
        timestamp
      })
      const wire = Envelope.toWireHeaders(envelope)
      expect(wire[Headers.Timestamp]).toBeUndefined()
      const back = yield* Envelope.fromWire({ topic: "orders", payload: envelope.payload, headers: wire })
      expect(back.timestamp).toBe(timestamp)
      expect(back.id).toBe(envelope.id)
    })
  )

  it.effect("any other id keeps the header: a business key, or a UUIDv7 of another time", () =>
    Effect.gen(function* () {
      for (const id of ["order-17", MessageId.fromMillis(1_000)]) {
        const envelope = Envelope.make({ id, topic: "orders", payload: new Uint8Array([1]), timestamp: 2_000 })
        const wire = Envelope.toWireHeaders(envelope)
        expect(wire[Headers.Timestamp]).toBe("2000")
        const back = yield* Envelope.fromWire({ topic: "orders", payload: envelope.payload, headers: wire })
        expect(back.timestamp).toBe(2_000)
      }
    })
  )
})
