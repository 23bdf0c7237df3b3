import { expect } from "@effect/vitest"
import { Headers } from "@lossless/core"
import { Effect } from "effect"
import type { Suite } from "../Conformance.ts"
import { declare, envelope, publishAll, subscribe, text, uniqueName } from "../Harness.ts"

export const roundTripCases = ({ it, receiveTimeout, quietPeriod }: Suite) => {
  it.effect("a published message arrives with id, key, payload, headers and timestamp intact", () =>
    Effect.gen(function* () {
      const topic = uniqueName("roundtrip")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      const sent = envelope(topic, {
        payload: '{"name":"Zoë","city":"Kraków","note":"日本語 ✓ 🚀"}',
        key: "customer-ü-42",
        headers: { "x-tenant": "Ålesund", "x-emoji": "📦", "content-language": "de" }
      })
      yield* publishAll([sent])
      const sub = yield* subscribe(topic, group, { receiveTimeout })
      const got = yield* sub.next()
      expect(got.envelope.id).toBe(sent.id)
      expect(got.envelope.topic).toBe(topic)
      expect(got.envelope.key).toBe(sent.key)
      expect(text(got.envelope.payload)).toBe(text(sent.payload))
      expect(Array.from(got.envelope.payload)).toEqual(Array.from(sent.payload))
      expect(got.envelope.timestamp).toBe(sent.timestamp)
      for (const [name, value] of Object.entries(sent.headers)) expect(got.envelope.headers[name]).toBe(value)
      expect(got.envelope.headers[Headers.MessageId]).toBeUndefined()
      expect(got.attempt).toBe(1)
      expect(got.redelivered).toBe(false)
      expect(got.group).toBe(group)
      yield* got.ack
      yield* sub.nothingWithin(quietPeriod)
    })
  )

  it.effect("a binary payload arrives byte for byte", () =>
    Effect.gen(function* () {
      const topic = uniqueName("binary")
      const group = uniqueName("g")
      yield* declare([topic], [[topic, group]])
      const payload = Uint8Array.from({ length: 4096 }, (_, i) => (i * 31 + 7) % 256)
      const sent = { ...envelope(topic), payload }
      yield* publishAll([sent])
      const sub = yield* subscribe(topic, group, { receiveTimeout })
      const got = yield* sub.next()
      expect(got.envelope.payload.byteLength).toBe(4096)
      expect(Buffer.from(got.envelope.payload).equals(Buffer.from(payload))).toBe(true)
      yield* got.ack
    })
  )

  it.effect("a subscriber receives only its own topic's messages", () =>
    Effect.gen(function* () {
      const a = uniqueName("iso-a")
      const b = uniqueName("iso-b")
      const group = uniqueName("g")
      yield* declare(
        [a, b],
        [
          [a, group],
          [b, group]
        ]
      )
      const forA = envelope(a, { payload: "for a" })
      const forB = envelope(b, { payload: "for b" })
      yield* publishAll([forB, forA, envelope(b, { payload: "for b again" })])
      const subA = yield* subscribe(a, group, { receiveTimeout })
      const got = yield* subA.next()
      expect(got.envelope.id).toBe(forA.id)
      yield* got.ack
      yield* subA.nothingWithin(quietPeriod)
    })
  )
}
