import { describe, expect, it } from "vitest"
import { definition } from "../../src/rocketmq/Protocol.ts"
import { body, receiveAll, setup, unique } from "./support.ts"

describe("namespaces", () => {
  it("keep topics and groups of different namespaces apart, under <namespace>%<name>", async () => {
    const { producer, simpleConsumer, emulator } = await setup()
    const topic = unique("orders")
    const sender = await producer({ topics: [topic], namespace: "tenant-a" })
    const receipt = await sender.send({ topic, body: body("for a") })
    const other = await simpleConsumer("g", topic, { namespace: "tenant-b" })
    expect(await other.receive(1, 5000)).toEqual([])
    const [message] = await receiveAll(await simpleConsumer("g", topic, { namespace: "tenant-a" }), 1)
    expect(message?.messageId).toBe(receipt.messageId)
    // Clients see the plain topic; the broker keeps the qualified one.
    expect(message?.topic).toBe(topic)
    expect(emulator.messages(`tenant-a%${topic}`)).toHaveLength(1)
    expect(emulator.messages(topic)).toEqual([])
  })

  it("dead-letter into %DLQ%<namespace>%<group> and check back within the namespace", async () => {
    const { producer, simpleConsumer, emulator } = await setup({
      maxDeliveryAttempts: 1,
      transactionCheckIntervalMs: 200
    })
    const topic = unique("ns-tx")
    const sender = await producer({
      topics: [topic],
      namespace: "tenant-a",
      checker: { check: async () => definition.TransactionResolution.COMMIT }
    })
    await sender.send({ topic, body: body("checked") }, sender.beginTransaction())
    const consumer = await simpleConsumer("g", topic, { namespace: "tenant-a" })
    const [message] = await receiveAll(consumer, 1, { ack: false, invisibleMs: 100, timeoutMs: 5000 })
    expect(message?.body.toString()).toBe("checked")
    await new Promise((resolve) => setTimeout(resolve, 600))
    expect(emulator.deadLetters("tenant-a%g").map((m) => m.body.toString())).toEqual(["checked"])
  })
})
