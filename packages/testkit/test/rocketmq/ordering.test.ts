import { describe, expect, it } from "vitest"
import { body, receiveAll, setup, unique } from "./support.ts"

describe("FIFO and delayed messages", () => {
  it("delivers the messages of a message group in order, one at a time", async () => {
    const { producer, simpleConsumer } = await setup()
    const topic = unique("fifo")
    const sender = await producer({ topics: [topic] })
    for (let i = 0; i < 5; i++) {
      await sender.send({ topic, body: body(`a${i}`), messageGroup: "A" })
      await sender.send({ topic, body: body(`b${i}`), messageGroup: "B" })
    }
    const consumer = await simpleConsumer("g", topic)
    // At most one message per group is out at a time: a batch of 10 holds a0 and b0 only.
    const batch = await consumer.receive(10, 10_000)
    expect(batch.map((m) => m.body.toString()).sort()).toEqual(["a0", "b0"])
    expect(await consumer.receive(10, 10_000)).toEqual([])
    for (const message of batch) await consumer.ack(message)
    const rest = await receiveAll(consumer, 8)
    const order = [...batch, ...rest].map((m) => m.body.toString())
    expect(order.filter((b) => b.startsWith("a"))).toEqual(["a0", "a1", "a2", "a3", "a4"])
    expect(order.filter((b) => b.startsWith("b"))).toEqual(["b0", "b1", "b2", "b3", "b4"])
    expect(rest.every((m) => m.messageGroup === "A" || m.messageGroup === "B")).toBe(true)
  })

  it("keeps a message group blocked while its head is retried, so order survives redelivery", async () => {
    const { producer, simpleConsumer } = await setup()
    const topic = unique("fifo-retry")
    const sender = await producer({ topics: [topic] })
    for (let i = 0; i < 3; i++) await sender.send({ topic, body: body(`m${i}`), messageGroup: "G" })
    const consumer = await simpleConsumer("g", topic)
    const [head] = await consumer.receive(10, 300)
    expect(head?.body.toString()).toBe("m0")
    // Not acknowledged: m0 comes back before m1 is ever delivered.
    const seen = await receiveAll(consumer, 3)
    expect(seen.map((m) => `${m.body.toString()}@${m.deliveryAttempt}`)).toEqual(["m0@2", "m1@1", "m2@1"])
  })

  it("does not deliver a delayed message before its delivery time", async () => {
    const { producer, simpleConsumer, emulator } = await setup()
    const topic = unique("delay")
    const sender = await producer({ topics: [topic] })
    const due = new Date(Date.now() + 1200)
    await sender.send({ topic, body: body("later"), deliveryTimestamp: due })
    await sender.send({ topic, body: body("now") })
    const consumer = await simpleConsumer("g", topic)
    const early = await receiveAll(consumer, 2, { timeoutMs: 800 })
    expect(early.map((m) => m.body.toString())).toEqual(["now"])
    const [later] = await receiveAll(consumer, 1, { timeoutMs: 3000 })
    expect(later?.body.toString()).toBe("later")
    expect(Date.now()).toBeGreaterThanOrEqual(due.getTime())
    expect(later?.deliveryTimestamp?.getTime()).toBe(due.getTime())
    expect(emulator.messages(topic).find((m) => m.body.toString() === "later")?.deliveryTimestamp).toBe(due.getTime())
  })

  it("refuses a delivery time beyond the broker's maximum delay", async () => {
    const { producer, emulator } = await setup({ maxDelayMs: 60_000 })
    const topic = unique("too-late")
    const sender = await producer({ topics: [topic], maxAttempts: 1 })
    await expect(
      sender.send({ topic, body: body("x"), deliveryTimestamp: new Date(Date.now() + 120_000) })
    ).rejects.toMatchObject({ code: 40012 })
    expect(emulator.messages(topic)).toEqual([])
  })

  it("recalls a delayed message before its delivery time, and not after", async () => {
    const { producer, simpleConsumer, emulator } = await setup()
    const topic = unique("recall")
    const sender = await producer({ topics: [topic] })
    const withdrawn = await sender.send({
      topic,
      body: body("withdrawn"),
      deliveryTimestamp: new Date(Date.now() + 600)
    })
    const kept = await sender.send({ topic, body: body("kept"), deliveryTimestamp: new Date(Date.now() + 300) })
    expect(withdrawn.recallHandle).not.toBe("")
    await expect(sender.recallMessage(topic, withdrawn.recallHandle)).resolves.toMatchObject({
      messageId: withdrawn.messageId
    })
    const received = await receiveAll(await simpleConsumer("g", topic), 2, { timeoutMs: 1500 })
    expect(received.map((m) => m.body.toString())).toEqual(["kept"])
    expect(emulator.messages(topic).map((m) => m.body.toString())).toEqual(["kept"])
    await expect(sender.recallMessage(topic, kept.recallHandle)).rejects.toThrow(/40401/)
  })
})
