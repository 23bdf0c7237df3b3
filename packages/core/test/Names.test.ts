import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { InvalidName, Names } from "../src/index.ts"

const invalid: ReadonlyArray<readonly [label: string, name: string, reason: RegExp]> = [
  ["an empty name", "", /must not be empty/],
  ["a name over 100 characters", "a".repeat(101), /at most 100 characters \(has 101\)/],
  ["a name with a dot", "orders.v1", /no dots/],
  ["a name with a space", "order events", /letters, digits/],
  ["a name with a leading dash", "-orders", /leading/],
  ["a name with a leading underscore", "_orders", /leading/],
  ["a name with a trailing dash", "orders-", /trailing/],
  ["a name with a trailing underscore", "orders_", /trailing/],
  ["a name with a doubled dash", "order--events", /doubled/],
  ["a name with a doubled underscore", "order__events", /doubled/],
  ["a name with mixed adjacent separators", "order-_events", /doubled/],
  ["a name with non-ASCII letters", "café", /letters, digits/],
  ["a name with an emoji", "orders🚀", /letters, digits/],
  ["a name with a slash", "orders/eu", /letters, digits/],
  ["a name with a colon", "orders:eu", /letters, digits/],
  ["a name with a percent sign", "orders%", /letters, digits/],
  ["a name with a tab", "orders\t", /letters, digits/],
  ["a lone separator", "-", /letters, digits/]
]

describe("Names", () => {
  describe("valid names", () => {
    for (const name of ["orders", "Orders2", "order-events", "billing_v2", "a", "0", "a-b_c-d", "a".repeat(100)]) {
      it.effect(`accepts ${JSON.stringify(name.length > 20 ? `${name.slice(0, 10)}…(${name.length})` : name)}`, () =>
        Effect.gen(function* () {
          expect(Names.isValid(name)).toBe(true)
          expect(yield* Names.validate("topic", name)).toBe(name)
          expect(yield* Names.validate("group", name)).toBe(name)
          expect(Names.validateSync("topic", name)).toBe(name)
        })
      )
    }
  })

  describe("invalid names", () => {
    for (const [label, name, reason] of invalid) {
      it.effect(`rejects ${label} with InvalidName naming the name and the reason`, () =>
        Effect.gen(function* () {
          expect(Names.isValid(name)).toBe(false)
          const error = yield* Effect.flip(Names.validate("group", name))
          expect(error).toBeInstanceOf(InvalidName)
          expect(error._tag).toBe("InvalidName")
          expect(error.kind).toBe("group")
          expect(error.name).toBe(name)
          expect(error.reason).toMatch(reason)
          expect(error.message).toContain(JSON.stringify(name))
          expect(error.message).toContain("group")
          expect(error.retryable).toBe(false)
        })
      )
    }

    it("validateSync throws the same InvalidName for a topic name", () => {
      let thrown: unknown
      try {
        Names.validateSync("topic", "orders.v1")
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(InvalidName)
      expect(thrown).toMatchObject({ _tag: "InvalidName", kind: "topic", name: "orders.v1" })
    })

    it("accepts exactly 100 characters and rejects 101", () => {
      expect(Names.maxLength).toBe(100)
      expect(Names.isValid("x".repeat(100))).toBe(true)
      expect(Names.isValid("x".repeat(101))).toBe(false)
    })
  })

  describe("derived names", () => {
    it("puts the topic and the group into the dead-letter and retry names", () => {
      expect(Names.deadLetter("orders", "billing")).toBe("orders__billing__dlq")
      expect(Names.retry("orders", "billing")).toBe("orders__billing__retry")
    })

    it("are never valid user names, so they cannot collide with a topic a user declares", () => {
      expect(Names.isValid(Names.deadLetter("orders", "billing"))).toBe(false)
      expect(Names.isValid(Names.retry("orders", "billing"))).toBe(false)
    })

    it("never collide for different (topic, group) pairs, over every short name", () => {
      // Every valid name of up to 4 characters over an alphabet with both separators.
      const alphabet = ["a", "1", "-", "_"]
      let candidates = [""]
      const names: Array<string> = []
      for (let length = 1; length <= 4; length++) {
        candidates = candidates.flatMap((prefix) => alphabet.map((c) => prefix + c))
        names.push(...candidates.filter(Names.isValid))
      }
      expect(names.length).toBeGreaterThan(50)

      const owners = new Map<string, string>()
      const claim = (derived: string, owner: string) => {
        const previous = owners.get(derived)
        expect(previous, `${derived} derived from both ${previous} and ${owner}`).toBeUndefined()
        owners.set(derived, owner)
      }
      for (const name of names) claim(name, `user name ${name}`)
      for (const topic of names) {
        for (const group of names) {
          claim(Names.deadLetter(topic, group), `deadLetter(${topic}, ${group})`)
          claim(Names.retry(topic, group), `retry(${topic}, ${group})`)
        }
      }
      expect(owners.size).toBe(names.length + 2 * names.length * names.length)
    })
  })
})
