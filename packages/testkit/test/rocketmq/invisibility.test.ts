import { BadRequestException } from "rocketmq-client-nodejs"
import { describe, expect, it } from "vitest"
import { body, receiveAll, setup, unique } from "./support.ts"

describe("invisible duration and redelivery", () => {
  it("an unacknowledged message reappears after its invisible duration, one attempt later", async () => {
    const { producer, simpleConsumer } = await setup()
    const topic = unique("retry")
    await (await producer({ topics: [topic] })).send({ topic, body: body("again") })
    const consumer = await simpleConsumer("g", topic)
    const [first] = await consumer.receive(1, 1000)
    expect(first?.deliveryAttempt).toBe(1)
    // Invisible now: another receive (a 500 ms long poll) finds nothing.
    expect(await consumer.receive(1, 1000)).toEqual([])
    const [second] = await receiveAll(consumer, 1, { ack: false })
    expect(second?.messageId).toBe(first?.messageId)
    expect(second?.deliveryAttempt).toBe(2)
    expect(second?.receiptHandle).not.toBe(first?.receiptHandle)
  })

  it("changing the invisible duration keeps the message hidden longer and issues a new handle", async () => {
    const { producer, simpleConsumer } = await setup()
    const topic = unique("extend")
    await (await producer({ topics: [topic] })).send({ topic, body: body("slow") })
    const consumer = await simpleConsumer("g", topic)
    const [message] = await consumer.receive(1, 800)
    if (message === undefined) throw new Error("no message")
    const oldHandle = message.receiptHandle
    await consumer.changeInvisibleDuration(message, 2000)
    expect(message.receiptHandle).not.toBe(oldHandle)
    // Past the first duration (and through a 500 ms long poll), still invisible.
    await new Promise((resolve) => setTimeout(resolve, 900))
    expect(await consumer.receive(1, 800)).toEqual([])
    // The new handle acknowledges it; the message never comes back.
    await consumer.ack(message)
    await new Promise((resolve) => setTimeout(resolve, 700))
    expect(await consumer.receive(1, 800)).toEqual([])
  })

  it("a replaced or expired receipt handle is refused with INVALID_RECEIPT_HANDLE", async () => {
    const { producer, simpleConsumer } = await setup()
    const topic = unique("stale")
    await (await producer({ topics: [topic] })).send({ topic, body: body("x") })
    const consumer = await simpleConsumer("g", topic)
    const [message] = await consumer.receive(1, 300)
    if (message === undefined) throw new Error("no message")
    const stale = { ...message, receiptHandle: message.receiptHandle } as typeof message
    await consumer.changeInvisibleDuration(message, 300)
    await expect(consumer.ack(stale)).rejects.toSatisfy(
      (error) => error instanceof BadRequestException && error.code === 40013
    )
    await new Promise((resolve) => setTimeout(resolve, 400))
    await expect(consumer.ack(message)).rejects.toMatchObject({ code: 40013 })
  })

  it("acknowledging the same handle twice is answered OK", async () => {
    const { producer, simpleConsumer } = await setup()
    const topic = unique("twice")
    await (await producer({ topics: [topic] })).send({ topic, body: body("x") })
    const consumer = await simpleConsumer("g", topic)
    const [message] = await consumer.receive(1, 5000)
    if (message === undefined) throw new Error("no message")
    await consumer.ack(message)
    await expect(consumer.ack(message)).resolves.toBeUndefined()
  })

  it("a message delivered the maximum number of times goes to the group's dead-letter queue", async () => {
    const { producer, simpleConsumer, emulator } = await setup({ maxDeliveryAttempts: 3 })
    const topic = unique("poison")
    const receipt = await (await producer({ topics: [topic] })).send({ topic, body: body("poison") })
    const consumer = await simpleConsumer("workers", topic)
    const attempts: Array<number | undefined> = []
    const deadline = Date.now() + 5000
    while (emulator.deadLetters("workers").length === 0 && Date.now() < deadline) {
      for (const message of await consumer.receive(1, 150)) attempts.push(message.deliveryAttempt)
    }
    expect(attempts).toEqual([1, 2, 3])
    expect(emulator.deadLetters("workers").map((m) => [m.messageId, m.body.toString()])).toEqual([
      [receipt.messageId, "poison"]
    ])
    expect(await consumer.receive(1, 150)).toEqual([])
  })

  it("the dead-letter queue can be consumed as the topic %DLQ%<group>", async () => {
    const { producer, simpleConsumer } = await setup({ maxDeliveryAttempts: 1 })
    const topic = unique("dlq-read")
    await (await producer({ topics: [topic] })).send({ topic, body: body("dead") })
    const consumer = await simpleConsumer("g1", topic)
    await consumer.receive(1, 100)
    const inspector = await simpleConsumer("inspect", "%DLQ%g1")
    const [dead] = await receiveAll(inspector, 1)
    expect(dead?.body.toString()).toBe("dead")
  })

  it("changing the invisible duration to zero redelivers at once (negative acknowledgement)", async () => {
    const { producer, simpleConsumer } = await setup()
    const topic = unique("nack")
    await (await producer({ topics: [topic] })).send({ topic, body: body("x") })
    const consumer = await simpleConsumer("g", topic)
    const [message] = await consumer.receive(1, 30_000)
    if (message === undefined) throw new Error("no message")
    await consumer.changeInvisibleDuration(message, 0)
    const [redelivered] = await receiveAll(consumer, 1, { ack: false, timeoutMs: 2000 })
    expect(redelivered?.deliveryAttempt).toBe(2)
  })
})
