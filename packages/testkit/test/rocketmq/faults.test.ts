import { InternalErrorException, ProxyTimeoutException } from "rocketmq-client-nodejs"
import { describe, expect, it } from "vitest"
import { Code } from "../../src/rocketmq/index.ts"
import { definition } from "../../src/rocketmq/Protocol.ts"
import { body, receiveAll, setup, unique } from "./support.ts"

describe("fault injection", () => {
  it("a persistence timeout reaches the client as ProxyTimeoutException while the message is stored", async () => {
    const { producer, emulator } = await setup()
    const topic = unique("flush")
    // One attempt: the client would otherwise resend at once, as RocketMQ producers do.
    const sender = await producer({ topics: [topic], maxAttempts: 1 })
    emulator.faults.sendStatus(Code.MASTER_PERSISTENCE_TIMEOUT)
    const failure = await sender.send({ topic, body: body("maybe") }).catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(ProxyTimeoutException)
    expect(failure).toMatchObject({ code: Code.MASTER_PERSISTENCE_TIMEOUT })
    expect(emulator.messages(topic).map((m) => m.body.toString())).toEqual(["maybe"])
    // The fault was for one call only.
    await sender.send({ topic, body: body("sure") })
    expect(emulator.messages(topic)).toHaveLength(2)
  })

  it("the producer's own resend after a fault stores the message twice (at-least-once)", async () => {
    const { producer, emulator } = await setup()
    const topic = unique("resend")
    const sender = await producer({ topics: [topic], maxAttempts: 3 })
    emulator.faults.sendStatus(Code.SLAVE_PERSISTENCE_TIMEOUT, 1)
    const receipt = await sender.send({ topic, body: body("twice") })
    expect(emulator.messages(topic).map((m) => m.messageId)).toEqual([receipt.messageId, receipt.messageId])
  })

  it("HA_NOT_AVAILABLE reaches the client as an internal error", async () => {
    const { producer, emulator } = await setup()
    const topic = unique("ha")
    const sender = await producer({ topics: [topic], maxAttempts: 1 })
    emulator.faults.sendStatus(Code.HA_NOT_AVAILABLE)
    await expect(sender.send({ topic, body: body("x") })).rejects.toBeInstanceOf(InternalErrorException)
  })

  it("an unavailable transport fails the call after the message was stored", async () => {
    const { producer, emulator } = await setup()
    const topic = unique("unavailable")
    const sender = await producer({ topics: [topic], maxAttempts: 1 })
    emulator.faults.sendStatus("unavailable")
    await expect(sender.send({ topic, body: body("x") })).rejects.toMatchObject({ code: 14 })
    expect(emulator.messages(topic)).toHaveLength(1)
  })

  it("delays the next responses of a method", async () => {
    const { producer, emulator } = await setup()
    const topic = unique("slow")
    const sender = await producer({ topics: [topic] })
    emulator.faults.delayNext("SendMessage", 300, 2)
    const started = Date.now()
    await sender.send({ topic, body: body("1") })
    await sender.send({ topic, body: body("2") })
    expect(Date.now() - started).toBeGreaterThanOrEqual(590)
    const after = Date.now()
    await sender.send({ topic, body: body("3") })
    expect(Date.now() - after).toBeLessThan(250)
  })

  it("reset clears pending faults", async () => {
    const { producer, emulator } = await setup()
    const topic = unique("reset")
    const sender = await producer({ topics: [topic], maxAttempts: 1 })
    emulator.faults.sendStatus(Code.MASTER_PERSISTENCE_TIMEOUT, 5)
    emulator.faults.reset()
    await expect(sender.send({ topic, body: body("x") })).resolves.toMatchObject({ offset: 0 })
  })

  it("after dropped telemetry streams the producer reconnects and still answers check-backs", async () => {
    const { producer, emulator, simpleConsumer } = await setup({ transactionCheckIntervalMs: 1500 })
    const topic = unique("drop")
    const sender = await producer({
      topics: [topic],
      checker: { check: async () => definition.TransactionResolution.COMMIT }
    })
    await sender.send({ topic, body: body("survivor") }, sender.beginTransaction())
    emulator.faults.dropStreams()
    // The client reopens its stream a second later; the check-back at 1.5 s goes over the new one.
    const [message] = await receiveAll(await simpleConsumer("g", topic), 1, { timeoutMs: 6000 })
    expect(message?.body.toString()).toBe("survivor")
  })

  it("dropping connections fails pending long polls", async () => {
    const { emulator, simpleConsumer } = await setup()
    const topic = unique("drop-poll")
    const consumer = await simpleConsumer("g", topic, { awaitDuration: 5000 })
    const receiving = consumer.receive(1, 5000).catch((error: unknown) => error)
    await new Promise((resolve) => setTimeout(resolve, 200))
    emulator.faults.dropStreams({ connections: true })
    expect(await receiving).toMatchObject({ code: 14 })
  })

  it("refuses a body over the broker's limit (the client checks the limit it was given first)", async () => {
    const { producer, emulator } = await setup({ maxMessageBytes: 1024 })
    const topic = unique("big")
    const sender = await producer({ topics: [topic] })
    await expect(sender.send({ topic, body: Buffer.alloc(2048) })).rejects.toThrow(/exceeds the threshold/)
    expect(emulator.messages(topic)).toEqual([])
  })
})
