/**
 * Broker reply codes and amqplib failures map to the core errors that carry
 * the right retry policy.
 */

import { RabbitError } from "@lossless/rabbitmq"
import { describe, expect, it } from "vitest"

const closed = (code: number, text: string) => Object.assign(new Error(`Channel closed by server: ${text}`), { code })
const message = { topic: "orders", messageId: "m-1", size: 10 }

describe("RabbitError", () => {
  it("has an entry for every AMQP 0-9-1 reply code RabbitMQ sends", () => {
    for (const code of [311, 312, 313, 320, 402, 403, 404, 405, 406, 501, 502, 503, 504, 505, 506, 530, 540, 541]) {
      expect(RabbitError.replyCodes.get(code)?.code).toBe(code)
    }
  })

  it("maps publish failures", () => {
    const missing = closed(404, `404 (NOT-FOUND) with message "NOT_FOUND - no exchange 'orders' in vhost '/'"`)
    expect(RabbitError.publishFailure(missing, message)._tag).toBe("TopicNotFound")
    const big = closed(
      406,
      `406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - message size 200 is larger than configured max size 100"`
    )
    const tooLarge = RabbitError.publishFailure(big, message)
    expect(tooLarge).toMatchObject({ _tag: "MessageTooLarge", size: 200, limit: 100 })
    expect(RabbitError.publishFailure(Object.assign(new Error("NO_ROUTE"), { code: 312 }), message)._tag).toBe(
      "Unroutable"
    )
    const forced = Object.assign(new Error("Connection closed: 320 (CONNECTION-FORCED)"), { code: 320 })
    const lost = RabbitError.publishFailure(forced, message)
    expect(lost._tag).toBe("ConnectionLost")
    expect(lost.retryable).toBe(true)
    expect(RabbitError.publishFailure(new Error("channel closed"), message)._tag).toBe("ConnectionLost")
    const nack = RabbitError.publishFailure(new Error("the broker refused the message (basic.nack)"), message)
    expect(nack._tag).toBe("BrokerRejected")
    expect(nack.retryable).toBe(true)
  })

  it("maps subscribe failures: a missing queue is GroupNotFound, a missing exchange TopicNotFound", () => {
    const names = { topic: "orders", group: "billing", exchange: "orders" }
    const noQueue = closed(404, `NOT_FOUND - no queue 'orders__billing' in vhost '/'`)
    expect(RabbitError.subscribeFailure(noQueue, names)._tag).toBe("GroupNotFound")
    const noExchange = closed(404, `NOT_FOUND - no exchange 'orders' in vhost '/'`)
    expect(RabbitError.subscribeFailure(noExchange, names)._tag).toBe("TopicNotFound")
    expect(RabbitError.subscribeFailure(closed(403, "ACCESS_REFUSED"), names)._tag).toBe("TransportUnavailable")
  })

  it("maps topology failures and scrubs secrets from their text", () => {
    const conflict = closed(406, "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q'")
    const refused = RabbitError.topologyFailure(conflict)
    expect(refused._tag).toBe("TransportUnavailable")
    expect(refused.message).toContain("inequivalent arg")
    const leaky = RabbitError.topologyFailure(new Error("socket hang up at amqp://u:hunter2@h"), (text) =>
      RabbitError.scrub(text, "hunter2")
    )
    expect(leaky._tag).toBe("ConnectionLost")
    expect(leaky.message).not.toContain("hunter2")
  })
})
