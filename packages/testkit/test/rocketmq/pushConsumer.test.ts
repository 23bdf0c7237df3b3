import { ConsumeResult, type MessageView } from "rocketmq-client-nodejs"
import { describe, expect, it } from "vitest"
import { body, eventually, setup, unique } from "./support.ts"

describe("push consumer", () => {
  it("receives through its assignment and acknowledges what its listener consumed", async () => {
    const { producer, pushConsumer, emulator } = await setup({ longPollingTimeoutMs: 500 })
    const topic = unique("push")
    const sender = await producer({ topics: [topic] })
    const consumed: Array<string> = []
    await pushConsumer("push-group", topic, {
      messageListener: {
        consume: async (message: MessageView) => {
          consumed.push(message.body.toString())
          return ConsumeResult.SUCCESS
        }
      }
    })
    for (let i = 0; i < 20; i++) await sender.send({ topic, body: body(`p${i}`) })
    await eventually(() => consumed.length === 20, 10_000, "20 messages")
    expect(consumed.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `p${i}`).sort())
    expect(emulator.deadLetters("push-group")).toEqual([])
  })

  it("a failed consumption is retried with the next delivery attempt", async () => {
    const { producer, pushConsumer } = await setup({ longPollingTimeoutMs: 500 })
    const topic = unique("push-retry")
    const sender = await producer({ topics: [topic] })
    const attempts: Array<number | undefined> = []
    await pushConsumer("g", topic, {
      messageListener: {
        consume: async (message: MessageView) => {
          attempts.push(message.deliveryAttempt)
          return attempts.length < 3 ? ConsumeResult.FAILURE : ConsumeResult.SUCCESS
        }
      }
    })
    await sender.send({ topic, body: body("flaky") })
    await eventually(() => attempts.length === 3, 10_000, "three attempts")
    expect(attempts).toEqual([1, 2, 3])
  })

  it("a FIFO group consumes each message group in order and dead-letters after its attempts", async () => {
    const { producer, pushConsumer, emulator } = await setup({
      longPollingTimeoutMs: 500,
      fifoGroups: ["ordered"],
      maxDeliveryAttempts: 2
    })
    const topic = unique("push-fifo")
    const sender = await producer({ topics: [topic] })
    for (let i = 0; i < 5; i++) await sender.send({ topic, body: body(`${i}`), messageGroup: "K" })
    const seen: Array<string> = []
    await pushConsumer("ordered", topic, {
      messageListener: {
        consume: async (message: MessageView) => {
          seen.push(message.body.toString())
          return message.body.toString() === "2" ? ConsumeResult.FAILURE : ConsumeResult.SUCCESS
        }
      }
    })
    await eventually(() => seen.filter((b) => b !== "2").length === 4, 10_000, "the other four")
    // The client retries a FIFO message locally up to the group's max attempts, then forwards it.
    expect(seen).toEqual(["0", "1", "2", "2", "3", "4"])
    await eventually(() => emulator.deadLetters("ordered").length === 1, 5000, "the dead letter")
    expect(emulator.deadLetters("ordered")[0]?.body.toString()).toBe("2")
  })
})
