/**
 * Status codes and client exceptions as core errors, with the right
 * `retryable`: what the publisher retries, what it gives up on at once.
 */
import { describe, expect, it } from "@effect/vitest"
import { RocketError } from "@lossless/rocketmq"
import {
  ClientException,
  ForbiddenException,
  InternalErrorException,
  NotFoundException,
  PayloadTooLargeException,
  ProxyTimeoutException,
  TooManyRequestsException
} from "rocketmq-client-nodejs"

const message = { topic: "orders", messageId: "m-1", size: 10, limit: 4 * 1024 * 1024, timeoutMillis: 3000 }

describe("RocketError.publishFailure", () => {
  it("a flush or replica timeout, or no replica, is a retryable PersistenceTimeout", () => {
    for (const [code, name] of [
      [50401, "MASTER_PERSISTENCE_TIMEOUT"],
      [50402, "SLAVE_PERSISTENCE_TIMEOUT"]
    ] as const) {
      const error = RocketError.publishFailure(new ProxyTimeoutException(code, "flush timeout"), message)
      expect(error._tag).toBe("PersistenceTimeout")
      expect(error.retryable).toBe(true)
      expect(error.message).toContain(name)
      expect(RocketError.isStoredWithoutConfirmation(new ProxyTimeoutException(code, "x"))).toBe(true)
    }
    const noReplica = new InternalErrorException(50002, "slave not available")
    expect(RocketError.publishFailure(noReplica, message)._tag).toBe("PersistenceTimeout")
    expect(RocketError.isStoredWithoutConfirmation(noReplica)).toBe(true)
  })

  it("a proxy timeout is a retryable PublishTimeout, never a stored message", () => {
    const error = new ProxyTimeoutException(50400, "proxy timeout")
    expect(RocketError.publishFailure(error, message)).toMatchObject({ _tag: "PublishTimeout", timeoutMillis: 3000 })
    expect(RocketError.isStoredWithoutConfirmation(error)).toBe(false)
  })

  it("a missing topic and an oversized message are permanent", () => {
    const missing = RocketError.publishFailure(new NotFoundException(40402, "topic not exist"), message)
    expect(missing).toMatchObject({ _tag: "TopicNotFound", topic: "orders" })
    expect(missing.retryable).toBe(false)
    const big = RocketError.publishFailure(new PayloadTooLargeException(41301, "body too large"), message)
    expect(big).toMatchObject({ _tag: "MessageTooLarge", size: 10 })
    expect(big.retryable).toBe(false)
    // The client refuses an oversized body itself, before sending.
    const local = RocketError.publishFailure(
      new TypeError("Message body size exceeds the threshold, max size=4194304 bytes"),
      message
    )
    expect(local._tag).toBe("MessageTooLarge")
  })

  it("throttling and broker faults are retryable rejections that name the status", () => {
    const throttled = RocketError.publishFailure(new TooManyRequestsException(42900, "busy"), message)
    expect(throttled).toMatchObject({ _tag: "BrokerRejected" })
    expect(throttled.retryable).toBe(true)
    expect(throttled.message).toContain("TOO_MANY_REQUESTS")
    const forbidden = RocketError.publishFailure(new ForbiddenException(40300, "no permission"), message)
    expect(forbidden.message).toContain("FORBIDDEN")
  })

  it("a gRPC transport failure is a lost connection; a deadline is a timeout", () => {
    const unavailable = Object.assign(new Error("14 UNAVAILABLE: No connection established"), {
      code: 14,
      details: "No connection established"
    })
    expect(RocketError.publishFailure(unavailable, message)._tag).toBe("ConnectionLost")
    const deadline = Object.assign(new Error("4 DEADLINE_EXCEEDED"), { code: 4, details: "Deadline exceeded" })
    expect(RocketError.publishFailure(deadline, message)._tag).toBe("PublishTimeout")
  })

  it("every code in the table has a name and a meaning; the client's codes all map", () => {
    for (const [code, entry] of RocketError.statusCodes) {
      expect(entry.code).toBe(code)
      expect(entry.name).toMatch(/^[A-Z_]+$/)
      expect(entry.meaning.length).toBeGreaterThan(0)
    }
    expect(RocketError.classify(new ClientException(50401, "x"))?.kind).toBe("persistence")
  })
})

describe("RocketError.subscribeFailure", () => {
  it("names the missing topic or group, even wrapped in a startup failure", () => {
    const names = { topic: "orders", group: "billing" }
    const wrapped = new Error("Startup the rocketmq client failed", {
      cause: new Error("Failed to fetch topic routes", { cause: new NotFoundException(40402, "no topic") })
    })
    expect(RocketError.subscribeFailure(wrapped, names)).toMatchObject({ _tag: "TopicNotFound", topic: "orders" })
    expect(RocketError.subscribeFailure(new NotFoundException(40403, "no group"), names)).toMatchObject({
      _tag: "GroupNotFound",
      group: "billing"
    })
    expect(RocketError.subscribeFailure(new Error("socket hang up"), names)._tag).toBe("ConnectionLost")
  })
})

describe("RocketError.CheckBackMissing", () => {
  it("is permanent and names the topics", () => {
    const error = new RocketError.CheckBackMissing({ topics: ["bookings"] })
    expect(error.retryable).toBe(false)
    expect(error.message).toContain('"bookings"')
  })
})
