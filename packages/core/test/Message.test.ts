import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { TestClock } from "effect/testing"
import {
  DecodeFailed,
  Envelope,
  Headers,
  InvalidHeader,
  Message,
  MessageId,
  SchemaViolation,
  Topic
} from "../src/index.ts"

const Order = Schema.Struct({
  id: Schema.String,
  note: Schema.String,
  total: Schema.Number.check(Schema.isGreaterThan(0))
})
const Orders = Topic.make("orders", Order)
const order = { id: "o-1", note: "first", total: 10 }

// Later than any real clock a test run sees, so ids made at these times carry them.
const year2100 = Date.UTC(2100, 0, 1)

describe("Message.encode", () => {
  it.effect("fails with SchemaViolation naming the topic when the payload breaks the schema", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Message.encode(Orders, { ...order, total: -5 }))
      expect(error).toBeInstanceOf(SchemaViolation)
      expect(error._tag).toBe("SchemaViolation")
      if (error._tag !== "SchemaViolation") return
      expect(error.topic).toBe("orders")
      expect(error.reason).toMatch(/greater than 0/)
      expect(error.message).toContain("orders")
    })
  )

  it.effect("fails with InvalidHeader for a header under the reserved prefix, in any case", () =>
    Effect.gen(function* () {
      for (const name of [Headers.MessageId, Headers.Attempt, "lossless-anything", "Lossless-Attempt"]) {
        const error = yield* Effect.flip(Message.encode(Orders, order, { headers: { [name]: "1" } }))
        expect(error).toBeInstanceOf(InvalidHeader)
        expect(error).toMatchObject({ _tag: "InvalidHeader", name })
        if (error._tag !== "InvalidHeader") return
        expect(error.reason).toMatch(/reserved/)
        expect(error.message).toContain(name)
      }
    })
  )

  it.effect("fails with InvalidHeader for an empty header name", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Message.encode(Orders, order, { headers: { "": "x" } }))
      expect(error).toMatchObject({ _tag: "InvalidHeader", name: "" })
    })
  )

  it.effect("fails with InvalidHeader for a header value that is not a string", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Message.encode(Orders, order, { headers: { count: 3 as unknown as string } }))
      expect(error).toMatchObject({ _tag: "InvalidHeader", name: "count" })
    })
  )

  it.effect("fails with InvalidHeader for an empty message id", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Message.encode(Orders, order, { id: "" }))
      expect(error).toMatchObject({ _tag: "InvalidHeader", name: Headers.MessageId })
    })
  )

  it.effect("assigns a UUIDv7 carrying the send time, and stamps the timestamp from the clock", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(year2100)
      const envelope = yield* Message.encode(Orders, order)
      expect(MessageId.isUuidV7(envelope.id)).toBe(true)
      expect(MessageId.timestampOf(envelope.id)).toBe(year2100)
      expect(envelope.timestamp).toBe(year2100)
      expect(envelope.topic).toBe("orders")
      expect(envelope.deliverAt).toBeUndefined()
      expect(envelope.key).toBeUndefined()
      expect(envelope.headers).toEqual({})

      const another = yield* Message.encode(Orders, order)
      expect(another.id).not.toBe(envelope.id)
      expect(another.id > envelope.id).toBe(true)
    })
  )

  it.effect("keeps an id given by the caller, with the key and user headers", () =>
    Effect.gen(function* () {
      const envelope = yield* Message.encode(Orders, order, {
        id: "order-42",
        key: "customer-7",
        headers: { tenant: "eu", "x-trace": "abc" }
      })
      expect(envelope.id).toBe("order-42")
      expect(envelope.key).toBe("customer-7")
      expect(envelope.headers).toEqual({ tenant: "eu", "x-trace": "abc" })
    })
  )

  it.effect("sets deliverAt to now plus the delay", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(year2100 + 1_000)
      const envelope = yield* Message.encode(Orders, order, { delay: "5 minutes" })
      expect(envelope.deliverAt).toBe(year2100 + 1_000 + 5 * 60_000)
      yield* TestClock.adjust("1 hour")
      const later = yield* Message.encode(Orders, order, { delay: 250 })
      expect(later.deliverAt).toBe(year2100 + 1_000 + 60 * 60_000 + 250)
    })
  )

  it.effect("takes deliverAt as a Date or epoch milliseconds, over any delay", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(year2100 + 2_000)
      const at = year2100 + 86_400_000
      expect((yield* Message.encode(Orders, order, { deliverAt: at })).deliverAt).toBe(at)
      expect((yield* Message.encode(Orders, order, { deliverAt: new Date(at) })).deliverAt).toBe(at)
      expect((yield* Message.encode(Orders, order, { deliverAt: at, delay: "1 second" })).deliverAt).toBe(at)
    })
  )
})

describe("Message.encodeBatch", () => {
  it.effect("encodes each message as encode does, in order, each with its own id", () =>
    Effect.gen(function* () {
      // Later than the other tests' clocks: ids never go back in time within a process.
      const now = year2100 + 10 * 86_400_000
      yield* TestClock.setTime(now)
      const messages = [
        { payload: order },
        { payload: { ...order, id: "o-2" }, key: "k", headers: { tenant: "eu" } },
        { payload: { ...order, id: "o-3" }, id: "given", delay: 250 },
        { payload: { ...order, id: "o-4" }, deliverAt: now + 9 }
      ]
      const batch = yield* Message.encodeBatch(Orders, messages)
      expect(batch).toHaveLength(messages.length)
      for (const [i, m] of messages.entries()) {
        const one = yield* Message.encode(Orders, m.payload, m)
        const envelope = batch[i] as Envelope.Envelope
        expect({ ...envelope, id: undefined }).toEqual({ ...one, id: undefined })
        if (m.id !== undefined) expect(envelope.id).toBe(m.id)
        else expect(MessageId.timestampOf(envelope.id)).toBe(now)
      }
      const ids = batch.map((e) => e.id)
      expect(new Set(ids).size).toBe(ids.length)
      expect(yield* Message.encodeBatch(Orders, [])).toEqual([])
    })
  )

  it.effect("fails with the first invalid message's error, whichever check it fails", () =>
    Effect.gen(function* () {
      const badPayload = { payload: { ...order, total: -1 } }
      const badHeader = { payload: order, headers: { [`${Headers.prefix}x`]: "1" } }
      const first = yield* Effect.flip(Message.encodeBatch(Orders, [{ payload: order }, badPayload, badHeader]))
      expect(first).toBeInstanceOf(SchemaViolation)
      const second = yield* Effect.flip(Message.encodeBatch(Orders, [{ payload: order }, badHeader, badPayload]))
      expect(second).toBeInstanceOf(InvalidHeader)
      const emptyId = yield* Effect.flip(Message.encodeBatch(Orders, [{ payload: order, id: "" }]))
      expect(emptyId).toMatchObject({ _tag: "InvalidHeader", name: Headers.MessageId })
    })
  )
})

describe("Message.decode", () => {
  it.effect("round-trips the payload, unicode included, with every envelope field", () =>
    Effect.gen(function* () {
      const payload = { id: "ünïcödé-注文-🚀", note: 'quotes " and \\ backslashes\n and \u0000 nul', total: 0.1 + 0.2 }
      const envelope = yield* Message.encode(Orders, payload, {
        key: "k",
        headers: { tenant: "eu" },
        delay: "1 minute"
      })
      const message = yield* Message.decode(Orders, envelope)
      expect(message.payload).toEqual(payload)
      expect(message).toMatchObject({
        id: envelope.id,
        topic: "orders",
        key: "k",
        headers: { tenant: "eu" },
        timestamp: envelope.timestamp,
        deliverAt: envelope.deliverAt
      })
    })
  )

  it.effect("fails with DecodeFailed naming the message for bytes that are not JSON", () =>
    Effect.gen(function* () {
      const envelope = Envelope.make({
        id: "m-1",
        topic: "orders",
        payload: new TextEncoder().encode("<xml/>"),
        timestamp: 0
      })
      const error = yield* Effect.flip(Message.decode(Orders, envelope))
      expect(error).toBeInstanceOf(DecodeFailed)
      expect(error).toMatchObject({ topic: "orders", messageId: "m-1" })
    })
  )

  it.effect("fails with DecodeFailed for bytes that are not UTF-8", () =>
    Effect.gen(function* () {
      const envelope = Envelope.make({
        id: "m-2",
        topic: "orders",
        payload: new Uint8Array([0xc3, 0x28]),
        timestamp: 0
      })
      const error = yield* Effect.flip(Message.decode(Orders, envelope))
      expect(error).toMatchObject({ _tag: "DecodeFailed", messageId: "m-2" })
      expect(error.reason).toMatch(/UTF-8/)
    })
  )

  it.effect("fails with DecodeFailed for JSON of the wrong shape", () =>
    Effect.gen(function* () {
      const envelope = Envelope.make({
        id: "m-3",
        topic: "orders",
        payload: new TextEncoder().encode(JSON.stringify({ id: "o-1", total: 3 })),
        timestamp: 0
      })
      const error = yield* Effect.flip(Message.decode(Orders, envelope))
      expect(error).toMatchObject({ _tag: "DecodeFailed", messageId: "m-3", topic: "orders" })
      expect(error.reason).toMatch(/note/)
    })
  )
})
