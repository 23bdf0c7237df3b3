import type { MessageView } from "rocketmq-client-nodejs"
import { describe, expect, it } from "vitest"
import { definition } from "../../src/rocketmq/Protocol.ts"
import { body, eventually, receiveAll, setup, unique } from "./support.ts"

const { COMMIT, ROLLBACK, TRANSACTION_RESOLUTION_UNSPECIFIED } = definition.TransactionResolution

describe("transactional (half) messages", () => {
  it("a half message is invisible until committed", async () => {
    const { producer, simpleConsumer, emulator } = await setup({ transactionCheckIntervalMs: 60_000 })
    const topic = unique("tx")
    const sender = await producer({ topics: [topic], checker: { check: async () => COMMIT } })
    const transaction = sender.beginTransaction()
    const receipt = await sender.send({ topic, body: body("paid") }, transaction)
    expect(receipt.transactionId).not.toBe("")
    expect(emulator.pendingHalfMessages()).toEqual([{ messageId: receipt.messageId, topic, checks: 0 }])
    const consumer = await simpleConsumer("g", topic)
    expect(await consumer.receive(1, 5000)).toEqual([])
    await transaction.commit()
    expect(emulator.pendingHalfMessages()).toEqual([])
    const [message] = await receiveAll(consumer, 1)
    expect(message?.messageId).toBe(receipt.messageId)
    expect(message?.body.toString()).toBe("paid")
  })

  it("a rolled back half message is never delivered", async () => {
    const { producer, simpleConsumer, emulator } = await setup({ transactionCheckIntervalMs: 60_000 })
    const topic = unique("tx-rollback")
    const sender = await producer({ topics: [topic], checker: { check: async () => COMMIT } })
    const transaction = sender.beginTransaction()
    await sender.send({ topic, body: body("cancelled") }, transaction)
    await transaction.rollback()
    expect(emulator.pendingHalfMessages()).toEqual([])
    expect(emulator.messages(topic)).toEqual([])
    expect(await (await simpleConsumer("g", topic)).receive(1, 5000)).toEqual([])
  })

  it("an undecided half message is checked back with its producer, whose answer commits it", async () => {
    const { producer, simpleConsumer } = await setup({ transactionCheckIntervalMs: 200 })
    const topic = unique("tx-check")
    const checked: Array<MessageView> = []
    const sender = await producer({
      topics: [topic],
      checker: {
        check: async (message) => {
          checked.push(message)
          return COMMIT
        }
      }
    })
    const receipt = await sender.send({ topic, body: body("orphan"), keys: ["order-7"] }, sender.beginTransaction())
    const [message] = await receiveAll(await simpleConsumer("g", topic), 1, { timeoutMs: 5000 })
    expect(message?.messageId).toBe(receipt.messageId)
    expect(checked.map((m) => [m.messageId, m.body.toString(), m.keys])).toEqual([
      [receipt.messageId, "orphan", ["order-7"]]
    ])
  })

  it("a check-back answered with ROLLBACK discards the half message", async () => {
    const { producer, emulator } = await setup({ transactionCheckIntervalMs: 100 })
    const topic = unique("tx-check-rollback")
    let checks = 0
    const sender = await producer({
      topics: [topic],
      checker: {
        check: async () => {
          checks++
          return ROLLBACK
        }
      }
    })
    await sender.send({ topic, body: body("x") }, sender.beginTransaction())
    await eventually(() => emulator.pendingHalfMessages().length === 0, 5000, "the rollback")
    expect(checks).toBe(1)
    expect(emulator.messages(topic)).toEqual([])
  })

  it("a half message nobody resolves is discarded after the maximum number of checks", async () => {
    const { producer, emulator, simpleConsumer } = await setup({
      transactionCheckIntervalMs: 100,
      maxTransactionChecks: 3
    })
    const topic = unique("tx-abandoned")
    let checks = 0
    const sender = await producer({
      topics: [topic],
      checker: {
        check: async () => {
          checks++
          return TRANSACTION_RESOLUTION_UNSPECIFIED
        }
      }
    })
    await sender.send({ topic, body: body("lost cause") }, sender.beginTransaction())
    await eventually(() => emulator.pendingHalfMessages()[0]?.checks === 2, 5000, "two checks")
    await eventually(() => emulator.pendingHalfMessages().length === 0, 5000, "the discard")
    expect(checks).toBe(3)
    expect(emulator.messages(topic)).toEqual([])
    expect(await (await simpleConsumer("g", topic)).receive(1, 5000)).toEqual([])
  })

  it("a commit after the broker discarded the half message is refused", async () => {
    const { producer, emulator } = await setup({ transactionCheckIntervalMs: 50, maxTransactionChecks: 0 })
    const topic = unique("tx-late")
    const sender = await producer({
      topics: [topic],
      checker: { check: async () => TRANSACTION_RESOLUTION_UNSPECIFIED }
    })
    const transaction = sender.beginTransaction()
    await sender.send({ topic, body: body("late") }, transaction)
    await eventually(() => emulator.pendingHalfMessages().length === 0, 5000, "the discard")
    await expect(transaction.commit()).rejects.toMatchObject({ code: 40008 })
    expect(emulator.messages(topic)).toEqual([])
  })
})
