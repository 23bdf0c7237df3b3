import { describe, expect, it } from "@effect/vitest"
import { Data, Effect } from "effect"
import {
  BrokerRejected,
  ConnectionLost,
  DecodeFailed,
  GroupNotFound,
  InvalidHeader,
  InvalidName,
  InvalidUrl,
  isRetryable,
  MalformedEnvelope,
  MessageTooLarge,
  PersistenceTimeout,
  PublishTimeout,
  SchemaViolation,
  SettlementFailed,
  TopicNotFound,
  TransportUnavailable,
  UnknownScheme,
  Unroutable
} from "../src/index.ts"

const id = "0190f2c4-9b1e-7a00-8000-000000000001"

/** Each error, whether retrying may succeed, and what its message must say. */
const cases = [
  [new PublishTimeout({ topic: "orders", messageId: id, timeoutMillis: 5000 }), true, ["orders", id, "5000 ms"]],
  [new PersistenceTimeout({ topic: "orders", messageId: id, reason: "no quorum" }), true, ["orders", id, "no quorum"]],
  [new ConnectionLost({ transport: "rabbitmq", reason: "socket closed" }), true, ["rabbitmq", "socket closed"]],
  [new TransportUnavailable({ transport: "kafka", reason: "ECONNREFUSED" }), true, ["kafka", "ECONNREFUSED"]],
  [new BrokerRejected({ topic: "orders", messageId: id, reason: "nack" }), true, ["orders", id, "nack"]],
  [new Unroutable({ topic: "orders", messageId: id }), false, ["orders", id, "unroutable"]],
  [
    new MessageTooLarge({ topic: "orders", messageId: id, size: 2048, limit: 1024 }),
    false,
    ["orders", id, "2048", "1024"]
  ],
  [
    new SchemaViolation({ topic: "orders", reason: "total must be positive" }),
    false,
    ["orders", "total must be positive"]
  ],
  [new TopicNotFound({ topic: "orders" }), false, ["orders", "ensureTopology"]],
  [new GroupNotFound({ topic: "orders", group: "billing" }), false, ["orders", "billing"]],
  [new InvalidName({ kind: "topic", name: "a.b", reason: "no dots" }), false, ['"a.b"', "topic", "no dots"]],
  [
    new InvalidUrl({ url: "amqp://x:***@h", reason: "cannot be parsed" }),
    false,
    ["amqp://x:***@h", "cannot be parsed"]
  ],
  [new UnknownScheme({ scheme: "nats", supported: ["amqp", "kafka"] }), false, ["nats", "amqp, kafka"]],
  [new InvalidHeader({ name: "lossless-id", reason: "reserved" }), false, ['"lossless-id"', "reserved"]],
  [new DecodeFailed({ topic: "orders", messageId: id, reason: "bad JSON" }), false, ["orders", id, "bad JSON"]],
  [new MalformedEnvelope({ topic: "orders", reason: "no id" }), false, ["orders", "no id"]],
  [
    new SettlementFailed({ messageId: id, settlement: "ack", reason: "channel closed" }),
    false,
    ["ack", id, "channel closed"]
  ]
] as const

describe("Errors", () => {
  for (const [error, retryable, mentions] of cases) {
    it(`${error._tag} is ${retryable ? "" : "not "}retryable`, () => {
      expect(error.retryable).toBe(retryable)
      expect(isRetryable(error)).toBe(retryable)
    })

    it(`${error._tag}'s message names the problem`, () => {
      for (const text of mentions) expect(error.message).toContain(text)
      expect(error).toBeInstanceOf(Error)
    })
  }

  it("UnknownScheme says when no scheme is registered", () => {
    expect(new UnknownScheme({ scheme: "amqp", supported: [] }).message).toContain("none registered")
  })

  it("isRetryable is false for errors from outside Lossless", () => {
    class Foreign extends Data.TaggedError("Foreign")<{ readonly retryable: string }> {}
    expect(isRetryable(new Error("boom"))).toBe(false)
    expect(isRetryable(new Foreign({ retryable: "yes" }))).toBe(false)
    expect(isRetryable({ retryable: 1 })).toBe(false)
    expect(isRetryable("retryable")).toBe(false)
    expect(isRetryable(null)).toBe(false)
    expect(isRetryable(undefined)).toBe(false)
  })

  it.effect("errors fail Effects under their tag, so catchTag selects them", () =>
    Effect.gen(function* () {
      const caught = yield* Effect.fail(new Unroutable({ topic: "orders", messageId: id })).pipe(
        Effect.catchTag("Unroutable", (e) => Effect.succeed(`caught ${e.messageId}`))
      )
      expect(caught).toBe(`caught ${id}`)
    })
  )
})
