/**
 * Broker error codes and kafkajs failures map to the core errors that carry
 * the right retry policy: size and invalid records are permanent, leadership,
 * timeouts and lost connections are retried.
 */
import { KafkaError } from "@lossless/kafka"
import { describe, expect, it } from "vitest"

/** A kafkajs protocol error as kafkajs builds it (name, type, code, retriable). */
const protocol = (type: string, code: number, retriable: boolean) =>
  Object.assign(new Error(`broker said ${type}`), { name: "KafkaJSProtocolError", type, code, retriable })
/** kafkajs's wrapper once its own retries are spent. */
const exhausted = (cause: Error) =>
  Object.assign(new Error(cause.message), { name: "KafkaJSNumberOfRetriesExceeded", cause, retriable: false })
const message = { topic: "orders", messageId: "m-1", size: 10, limit: 1000, timeoutMillis: 5000 }

describe("KafkaError", () => {
  it("classifies by code, also through kafkajs's retry wrapper and its own type names", () => {
    expect(KafkaError.errorCode(exhausted(protocol("NOT_LEADER_FOR_PARTITION", 6, true)))).toBe(6)
    expect(KafkaError.errorCode(protocol("GROUP_COORDINATOR_NOT_AVAILABLE", 15, true))).toBe(15)
    expect(KafkaError.errorCodes.get(10)?.retryable).toBe(false)
  })

  it("maps permanent publish failures to errors that are not retried", () => {
    const tooLarge = KafkaError.publishFailure(protocol("MESSAGE_TOO_LARGE", 10, false), message)
    expect(tooLarge).toMatchObject({ _tag: "MessageTooLarge", limit: 1000 })
    expect(tooLarge.retryable).toBe(false)
    const listTooLarge = KafkaError.publishFailure(protocol("RECORD_LIST_TOO_LARGE", 18, false), message)
    expect(listTooLarge._tag).toBe("MessageTooLarge")
    const unknown = KafkaError.publishFailure(exhausted(protocol("UNKNOWN_TOPIC_OR_PARTITION", 3, true)), message)
    expect(unknown._tag).toBe("TopicNotFound")
    expect(unknown.retryable).toBe(false)
    const invalid = KafkaError.publishFailure(protocol("INVALID_RECORD", 87, false), message)
    expect(invalid._tag).toBe("BrokerRejected")
    expect(invalid.retryable).toBe(false)
  })

  it("maps transient publish failures to retryable errors", () => {
    const notLeader = KafkaError.publishFailure(exhausted(protocol("NOT_LEADER_FOR_PARTITION", 6, true)), message)
    expect(notLeader._tag).toBe("BrokerRejected")
    expect(notLeader.retryable).toBe(true)
    const timedOut = KafkaError.publishFailure(protocol("REQUEST_TIMED_OUT", 7, true), message)
    expect(timedOut._tag).toBe("PersistenceTimeout")
    expect(timedOut.retryable).toBe(true)
    const replicas = KafkaError.publishFailure(protocol("NOT_ENOUGH_REPLICAS_AFTER_APPEND", 20, true), message)
    expect(replicas._tag).toBe("PersistenceTimeout")
    const sequence = KafkaError.publishFailure(protocol("OUT_OF_ORDER_SEQUENCE_NUMBER", 45, false), message)
    expect(sequence.retryable).toBe(true)
    const closed = Object.assign(new Error("Closed connection"), { name: "KafkaJSConnectionClosedError" })
    const lost = KafkaError.publishFailure(exhausted(closed), message)
    expect(lost._tag).toBe("ConnectionLost")
    expect(lost.retryable).toBe(true)
    const slow = Object.assign(new Error("Request Produce(key: 0, version: 7) timed out"), {
      name: "KafkaJSRequestTimeoutError"
    })
    expect(KafkaError.publishFailure(slow, message)).toMatchObject({ _tag: "PublishTimeout", timeoutMillis: 5000 })
  })

  it("maps failures of group and admin operations: coordinator trouble is retried, refusals are not", () => {
    expect(KafkaError.operationFailure(protocol("NOT_COORDINATOR_FOR_GROUP", 16, true))._tag).toBe("ConnectionLost")
    expect(KafkaError.operationFailure(new Error("connect ECONNREFUSED 127.0.0.1:9092"))._tag).toBe("ConnectionLost")
    const denied = KafkaError.operationFailure(protocol("GROUP_AUTHORIZATION_FAILED", 30, false))
    expect(denied._tag).toBe("TransportUnavailable")
    expect(denied.message).toContain("GROUP_AUTHORIZATION_FAILED")
  })
})
