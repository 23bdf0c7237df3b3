import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import { MessageId } from "../src/index.ts"

// Ids are monotonic per process, so each test works at a time later than the previous
// one's (and than the real clock), where the timestamps it asks for are the ones it gets.
let base = Date.UTC(2200, 0, 1)
const freshTime = (): number => {
  base += 3_600_000
  return base
}

const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const expectStrictlyIncreasing = (ids: ReadonlyArray<string>) => {
  for (let i = 1; i < ids.length; i++) {
    if (!((ids[i] as string) > (ids[i - 1] as string))) {
      expect.fail(`id ${i} (${ids[i]}) is not after id ${i - 1} (${ids[i - 1]})`)
    }
  }
}

describe("MessageId", () => {
  it("makes lowercase RFC 9562 UUIDv7 strings", () => {
    const ids = Array.from({ length: 200 }, () => MessageId.fromMillis(Date.now()))
    for (const id of ids) {
      expect(id).toMatch(uuidV7)
      expect(MessageId.isUuidV7(id)).toBe(true)
    }
    expect(new Set(ids).size).toBe(ids.length)
  })

  it("recovers the milliseconds an id was made at", () => {
    const t = freshTime()
    expect(MessageId.timestampOf(MessageId.fromMillis(t))).toBe(t)
    const beyond32Bits = freshTime() + 0.75
    expect(MessageId.timestampOf(MessageId.fromMillis(beyond32Bits))).toBe(Math.floor(beyond32Bits))
  })

  it("keeps thousands of ids made in one millisecond strictly increasing with that timestamp", () => {
    const t = freshTime()
    const ids = Array.from({ length: 4096 }, () => MessageId.fromMillis(t))
    expectStrictlyIncreasing(ids)
    for (const id of ids) expect(MessageId.timestampOf(id)).toBe(t)
  })

  it("keeps ids increasing when more than 4096 are made in one millisecond, moving the timestamp forward", () => {
    const t = freshTime()
    const ids = Array.from({ length: 10_000 }, () => MessageId.fromMillis(t))
    expectStrictlyIncreasing(ids)
    expect(new Set(ids).size).toBe(ids.length)
    for (const id of ids) expect(id).toMatch(uuidV7)
    expect(MessageId.timestampOf(ids[4095] as string)).toBe(t)
    expect(MessageId.timestampOf(ids[4096] as string)).toBe(t + 1)
    // Asking for the borrowed millisecond afterwards still moves forward.
    const next = MessageId.fromMillis(t + 1)
    expect(next > (ids[ids.length - 1] as string)).toBe(true)
  })

  it("keeps ids increasing when the clock goes backwards", () => {
    const t = freshTime()
    const ids = [t, t - 1000, t - 5, t, t + 1, t - 3_600_000].map((ms) => MessageId.fromMillis(ms))
    expectStrictlyIncreasing(ids)
  })

  it("keeps ids increasing across a tight loop on the real clock", () => {
    const ids = Array.from({ length: 20_000 }, () => MessageId.fromMillis(Date.now()))
    expectStrictlyIncreasing(ids)
  })

  it.effect("make takes its timestamp from the Effect clock", () =>
    Effect.gen(function* () {
      const t = freshTime()
      yield* TestClock.setTime(t)
      const id = yield* MessageId.make
      expect(MessageId.isUuidV7(id)).toBe(true)
      expect(MessageId.timestampOf(id)).toBe(t)
    })
  )

  it("tells UUIDv7 from other ids", () => {
    expect(MessageId.isUuidV7("0190f2c4-9b1e-7a00-8000-000000000001")).toBe(true)
    expect(MessageId.isUuidV7(crypto.randomUUID())).toBe(false)
    expect(MessageId.isUuidV7("order-42")).toBe(false)
    expect(MessageId.isUuidV7("0190f2c4-9b1e-7a00-c000-000000000001")).toBe(false)
  })

  it("reads the time of any UUIDv7 shape, in either case, and of nothing else", () => {
    const shape = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i
    const hex = fc.constantFrom(..."0123456789abcdefABCDEF-7gxz ".split(""))
    // Near-UUIDv7 strings: each character either kept from a valid id or replaced by a likely wrong one.
    const near = fc
      .tuple(
        fc.integer({ min: 0, max: 2 ** 48 - 1 }),
        fc.array(fc.tuple(fc.nat(40), hex), { maxLength: 3 }),
        fc.boolean()
      )
      .map(([ms, edits, upper]) => {
        const chars = MessageId.fromMillis(ms).split("")
        for (const [at, c] of edits) if (at < chars.length) chars[at] = c
        const id = chars.join("")
        return upper ? id.toUpperCase() : id
      })
    fc.assert(
      fc.property(fc.oneof(near, fc.string({ maxLength: 40 })), (id) => {
        const time = MessageId.timeOfUuidV7(id)
        if (!shape.test(id)) return time === undefined
        return time === Number.parseInt(id.slice(0, 8), 16) * 0x10000 + Number.parseInt(id.slice(9, 13), 16)
      }),
      { numRuns: 20_000 }
    )
  })
})
