import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { type Codec, DecodeFailed, Envelope, InvalidName, SchemaViolation, Topic } from "../src/index.ts"

const Order = Schema.Struct({ id: Schema.String, total: Schema.Number.check(Schema.isGreaterThan(0)) })
const Orders = Topic.make("orders", Order)

const utf8 = new TextEncoder()
const envelopeOf = (payload: Uint8Array, id = "msg-1") => Envelope.make({ id, topic: "orders", payload, timestamp: 0 })

describe("Topic.make", () => {
  it("throws InvalidName at definition for a name some broker would reject", () => {
    for (const name of ["orders.v1", "", "orders events", "-orders", "a".repeat(101)]) {
      let thrown: unknown
      try {
        Topic.make(name, Order)
      } catch (error) {
        thrown = error
      }
      expect(thrown, name).toBeInstanceOf(InvalidName)
      expect(thrown).toMatchObject({ _tag: "InvalidName", kind: "topic", name })
    }
  })

  it("keeps the name and uses JSON by default", () => {
    expect(Orders.name).toBe("orders")
    expect(Orders.codec.contentType).toBe("application/json")
  })

  it.effect("uses a codec given in the options", () =>
    Effect.gen(function* () {
      const upper = (): Codec.Codec<string> => ({
        contentType: "text/plain",
        encode: (value) => Effect.succeed(utf8.encode(String(value).toUpperCase())),
        decode: (bytes) => Effect.succeed(new TextDecoder().decode(bytes))
      })
      const Shouts = Topic.make("shouts", Schema.String, { codec: upper })
      expect(Shouts.codec.contentType).toBe("text/plain")
      expect(new TextDecoder().decode(yield* Shouts.encode("hey"))).toBe("HEY")
    })
  )
})

describe("Topic.encode", () => {
  it.effect("writes the payload as UTF-8 JSON", () =>
    Effect.gen(function* () {
      const bytes = yield* Orders.encode({ id: "o-1", total: 12.5 })
      expect(JSON.parse(new TextDecoder().decode(bytes))).toEqual({ id: "o-1", total: 12.5 })
    })
  )

  it.effect("fails with SchemaViolation naming the topic and the problem", () =>
    Effect.gen(function* () {
      const wrongType = yield* Effect.flip(Orders.encode({ id: 42 } as never))
      expect(wrongType).toBeInstanceOf(SchemaViolation)
      expect(wrongType.topic).toBe("orders")
      expect(wrongType.reason).toMatch(/id/)
      expect(wrongType.message).toContain('"orders"')

      const failedCheck = yield* Effect.flip(Orders.encode({ id: "o-1", total: -1 }))
      expect(failedCheck._tag).toBe("SchemaViolation")
      expect(failedCheck.reason).toMatch(/greater than 0/)
      expect(failedCheck.retryable).toBe(false)
    })
  )
})

describe("Topic.decode", () => {
  it.effect("fails with DecodeFailed carrying the message id for bytes that are not JSON", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Orders.decode(envelopeOf(utf8.encode("{not json"), "m-json")))
      expect(error).toBeInstanceOf(DecodeFailed)
      expect(error).toMatchObject({ topic: "orders", messageId: "m-json" })
      expect(error.message).toContain("m-json")
    })
  )

  it.effect("fails with DecodeFailed for bytes that are not UTF-8", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Orders.decode(envelopeOf(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), "m-utf8")))
      expect(error._tag).toBe("DecodeFailed")
      expect(error.messageId).toBe("m-utf8")
      expect(error.reason).toMatch(/UTF-8/)
    })
  )

  it.effect("fails with DecodeFailed for JSON that does not satisfy the schema", () =>
    Effect.gen(function* () {
      const bytes = utf8.encode(JSON.stringify({ id: "o-1", total: 0 }))
      const error = yield* Effect.flip(Orders.decode(envelopeOf(bytes, "m-schema")))
      expect(error._tag).toBe("DecodeFailed")
      expect(error.messageId).toBe("m-schema")
      expect(error.reason).toMatch(/greater than 0/)
      expect(error.retryable).toBe(false)
    })
  )

  it.effect("decodes what encode wrote", () =>
    Effect.gen(function* () {
      const payload = { id: "ørder-✓-注文-🚚", total: 1e-7 }
      const bytes = yield* Orders.encode(payload)
      expect(yield* Orders.decode(envelopeOf(bytes))).toEqual(payload)
    })
  )
})
