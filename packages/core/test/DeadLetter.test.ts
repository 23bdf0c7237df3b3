import { describe, expect, it } from "@effect/vitest"
import { DeadLetter, Envelope, Headers, Names } from "../src/index.ts"

const payload = new TextEncoder().encode('{"id":"o-1","total":3}')
const failedAt = Date.UTC(2025, 4, 6, 7, 8, 9, 10)

const original = Envelope.make({
  id: "0190f2c4-9b1e-7a00-8000-000000000042",
  topic: "orders",
  key: "customer-7",
  payload,
  timestamp: 1_700_000_000_000,
  deliverAt: 1_700_000_060_000,
  headers: { tenant: "eu", [Headers.Traceparent]: "00-abc-def-01", [Headers.Attempt]: "4" }
})

const dead = DeadLetter.envelope(original, { group: "billing", reason: "card declined", failedAt, attempt: 5 })

describe("DeadLetter.envelope", () => {
  it("addresses the group's dead-letter destination for the topic", () => {
    expect(dead.topic).toBe(Names.deadLetter("orders", "billing"))
  })

  it("keeps the id, key, payload, timestamp and user headers", () => {
    expect(dead.id).toBe(original.id)
    expect(dead.key).toBe("customer-7")
    expect(dead.payload).toEqual(payload)
    expect(dead.timestamp).toBe(original.timestamp)
    expect(dead.headers.tenant).toBe("eu")
    expect(dead.headers[Headers.Traceparent]).toBe("00-abc-def-01")
  })

  it("adds the reason headers: original topic and group, error, failure time and attempt", () => {
    expect(dead.headers[Headers.OriginalTopic]).toBe("orders")
    expect(dead.headers[Headers.OriginalGroup]).toBe("billing")
    expect(dead.headers[Headers.ErrorMessage]).toBe("card declined")
    expect(dead.headers[Headers.FailedAt]).toBe("2025-05-06T07:08:09.010Z")
    expect(dead.headers[Headers.Attempt]).toBe("5")
  })

  it("is deliverable at once, whatever delay the original had", () => {
    expect(dead.deliverAt).toBeUndefined()
  })

  it("leaves the original envelope unchanged", () => {
    expect(original.topic).toBe("orders")
    expect(original.headers).toEqual({ tenant: "eu", [Headers.Traceparent]: "00-abc-def-01", [Headers.Attempt]: "4" })
  })
})

describe("DeadLetter.reason", () => {
  it("reads back where, why and when the message failed", () => {
    expect(DeadLetter.reason(dead)).toEqual({
      originalTopic: "orders",
      group: "billing",
      error: "card declined",
      failedAt: "2025-05-06T07:08:09.010Z",
      attempt: 5
    })
  })

  it("is undefined for an envelope without the reason headers", () => {
    expect(DeadLetter.reason(original)).toBeUndefined()
    const { [Headers.ErrorMessage]: _dropped, ...partial } = dead.headers
    expect(DeadLetter.reason({ ...dead, headers: partial })).toBeUndefined()
  })

  it("reads attempt 1 when the dead letter records no attempt", () => {
    const { [Headers.Attempt]: _dropped, ...headers } = dead.headers
    expect(DeadLetter.reason({ ...dead, headers })?.attempt).toBe(1)
  })
})

describe("DeadLetter.redrive", () => {
  const redriven = DeadLetter.redrive(dead)

  it("goes back to the original topic with the same id and payload", () => {
    expect(redriven.topic).toBe("orders")
    expect(redriven.id).toBe(original.id)
    expect(redriven.payload).toEqual(payload)
    expect(redriven.key).toBe("customer-7")
  })

  it("drops the reason headers and the attempt count, keeping the user's headers", () => {
    expect(redriven.headers).toEqual({ tenant: "eu", [Headers.Traceparent]: "00-abc-def-01" })
    expect(Envelope.attempt(redriven)).toBe(1)
    expect(DeadLetter.reason(redriven)).toBeUndefined()
  })
})
