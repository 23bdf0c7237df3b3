import { describe, expect, it } from "vitest"
import { body, receiveAll, setup, unique } from "./support.ts"

describe("send and receive", () => {
  it("a group receives and acknowledges every message sent, exactly once", async () => {
    const { producer, simpleConsumer, emulator } = await setup()
    const topic = unique("orders")
    const sender = await producer({ topics: [topic] })
    const receipts = []
    for (let i = 0; i < 50; i++) receipts.push(await sender.send({ topic, body: body(`m${i}`), keys: [`k${i}`] }))
    expect(new Set(receipts.map((r) => r.messageId)).size).toBe(50)

    const first = await simpleConsumer("billing", topic)
    const second = await simpleConsumer("billing", topic)
    const [a, b] = await Promise.all([
      receiveAll(first, 25, { timeoutMs: 3000 }),
      receiveAll(second, 25, { timeoutMs: 3000 })
    ])
    const ids = [...a, ...b].map((m) => m.messageId)
    expect(ids.length).toBe(50)
    expect(new Set(ids)).toEqual(new Set(receipts.map((r) => r.messageId)))
    expect(await first.receive(10, 1000)).toEqual([])
    expect(emulator.messages(topic).map((m) => m.body.toString())).toEqual(receipts.map((_, i) => `m${i}`))
  })

  it("each consumer group receives every message", async () => {
    const { producer, simpleConsumer } = await setup()
    const topic = unique("events")
    const sender = await producer({ topics: [topic] })
    for (let i = 0; i < 10; i++) await sender.send({ topic, body: body(`e${i}`) })
    const audit = await simpleConsumer("audit", topic)
    const search = await simpleConsumer("search", topic)
    const fromAudit = await receiveAll(audit, 10)
    const fromSearch = await receiveAll(search, 10)
    expect(fromAudit.map((m) => m.body.toString()).sort()).toEqual(fromSearch.map((m) => m.body.toString()).sort())
    expect(fromAudit).toHaveLength(10)
  })

  it("delivers properties, keys, tag and a first delivery attempt of 1", async () => {
    const { producer, simpleConsumer } = await setup()
    const topic = unique("props")
    const sender = await producer({ topics: [topic] })
    await sender.send({ topic, body: body("x"), tag: "blue", keys: ["a", "b"], properties: new Map([["h", "v"]]) })
    const [message] = await receiveAll(await simpleConsumer("g", topic), 1)
    expect(message?.tag).toBe("blue")
    expect(message?.keys).toEqual(["a", "b"])
    expect(message?.properties.get("h")).toBe("v")
    expect(message?.deliveryAttempt).toBe(1)
    // The client flags a body whose CRC32 does not match the digest the broker sent.
    expect(message?.corrupted).not.toBe(true)
  })

  it("a long poll returns as soon as a message arrives", async () => {
    const { producer, simpleConsumer } = await setup()
    const topic = unique("poll")
    const sender = await producer({ topics: [topic] })
    const consumer = await simpleConsumer("g", topic, { awaitDuration: 5000 })
    const started = Date.now()
    const receiving = consumer.receive(1, 5000)
    setTimeout(() => void sender.send({ topic, body: body("late") }), 200)
    const [message] = await receiving
    expect(message?.body.toString()).toBe("late")
    expect(Date.now() - started).toBeLessThan(3000)
  })

  it("filters by tag", async () => {
    const { producer, simpleConsumer } = await setup()
    const topic = unique("tags")
    const sender = await producer({ topics: [topic] })
    for (const tag of ["red", "green", "blue", "green"]) await sender.send({ topic, body: body(tag), tag })
    const consumer = await simpleConsumer("g", topic, { subscriptions: new Map([[topic, "green||blue"]]) })
    const got = await receiveAll(consumer, 3)
    expect(got.map((m) => m.tag).sort()).toEqual(["blue", "green", "green"])
  })

  it("serves a topic created by the operator when topics are not auto-created", async () => {
    const { producer, simpleConsumer, emulator } = await setup({ autoCreateTopics: false })
    const topic = unique("declared")
    emulator.createTopic(topic, { messageType: "FIFO", queues: 2 })
    const sender = await producer({ topics: [topic] })
    await sender.send({ topic, body: body("in order"), messageGroup: "g" })
    // The client checks the message type against the route: a FIFO topic takes no normal message.
    await expect(sender.send({ topic, body: body("plain") })).rejects.toThrow(/message type/)
    const [message] = await receiveAll(await simpleConsumer("g", topic), 1)
    expect(message?.body.toString()).toBe("in order")
  })

  it("refuses an unknown topic when topics are not auto-created", async () => {
    const { producer } = await setup({ autoCreateTopics: false, topics: ["known"] })
    const sender = await producer({ topics: ["known"] })
    await expect(sender.send({ topic: "unknown", body: body("x") })).rejects.toMatchObject({ code: 40402 })
  })
})
