/**
 * The emulator against the real kafkajs client over TCP: topics, idempotent produce, consumer
 * groups with rebalances, committed offsets, retried batches, size limits, dead members and
 * long-poll fetches.
 */
import {
  CompressionTypes,
  ConfigResourceTypes,
  type Consumer,
  type EachMessagePayload,
  type Kafka,
  type Producer
} from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type KafkaEmulator, start } from "../../src/kafka/index.ts"
import { kafkaFor, unique, waitFor } from "./support.ts"

const FAST_GROUP = { sessionTimeout: 3000, heartbeatInterval: 100, rebalanceTimeout: 3000, maxWaitTimeInMs: 200 }

let emulator: KafkaEmulator
let kafka: Kafka

beforeAll(async () => {
  emulator = await start()
  kafka = kafkaFor(emulator)
})
afterAll(() => emulator.close())

const closers: Array<() => Promise<void>> = []
const track = <A extends { disconnect: () => Promise<void> }>(client: A): A => {
  closers.push(() => client.disconnect())
  return client
}
afterAll(async () => {
  await Promise.all(closers.map((close) => close().catch(() => undefined)))
})

const createTopic = async (topic: string, numPartitions: number): Promise<void> => {
  const admin = track(kafka.admin())
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true })
  await admin.disconnect()
}

const idempotentProducer = async (): Promise<Producer> => {
  const producer = track(kafka.producer({ idempotent: true, maxInFlightRequests: 5 }))
  await producer.connect()
  return producer
}

/** Starts a consumer that records each message's value; resolves once it has joined the group. */
const startConsumer = async (
  groupId: string,
  topic: string,
  seen: Array<string>,
  onJoin?: (assignment: ReadonlyArray<number>) => void
): Promise<Consumer> => {
  const consumer = track(kafka.consumer({ groupId, ...FAST_GROUP }))
  consumer.on(consumer.events.GROUP_JOIN, (event) => onJoin?.(event.payload.memberAssignment[topic] ?? []))
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ message }: EachMessagePayload) => {
      seen.push(message.value!.toString())
    }
  })
  return consumer
}

const values = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`)

describe("kafka emulator with kafkajs", () => {
  it("creates topics through the admin client and refuses replication it cannot provide", async () => {
    const topic = unique("admin")
    const admin = track(kafka.admin())
    await admin.connect()
    expect(await admin.createTopics({ topics: [{ topic, numPartitions: 4, replicationFactor: 1 }] })).toBe(true)
    expect(emulator.topics()).toContainEqual({ name: topic, partitions: 4 })
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
    expect(metadata.topics[0]!.partitions.map((p) => p.leader)).toEqual([0, 0, 0, 0])
    expect(await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] })).toBe(false)
    const replicated = admin.createTopics({
      topics: [{ topic: unique("rf3"), numPartitions: 1, replicationFactor: 3 }]
    })
    await expect(replicated).rejects.toMatchObject({
      errors: [expect.objectContaining({ type: "INVALID_REPLICATION_FACTOR" })]
    })
    await admin.deleteTopics({ topics: [topic] })
    expect(emulator.topics().map((t) => t.name)).not.toContain(topic)
    await admin.disconnect()
  })

  it("delivers exactly the messages an idempotent producer sent to several partitions", async () => {
    const topic = unique("exact")
    await createTopic(topic, 3)
    const producer = await idempotentProducer()
    const sent = values("m", 300)
    for (let i = 0; i < sent.length; i += 30) {
      await producer.send({
        topic,
        acks: -1,
        messages: sent.slice(i, i + 30).map((value, j) => ({ key: `key-${(i + j) % 7}`, value, headers: { n: value } }))
      })
    }
    const stored = [0, 1, 2].flatMap((p) => emulator.records(topic, p))
    expect(stored).toHaveLength(300)
    expect([0, 1, 2].every((p) => emulator.records(topic, p).length > 0)).toBe(true)
    expect(stored.every((r) => r.headers.n!.toString() === r.value!.toString())).toBe(true)

    const seen: Array<string> = []
    await startConsumer(unique("group"), topic, seen)
    await waitFor(() => seen.length >= 300, 15_000, "300 messages")
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(seen).toHaveLength(300)
    expect(new Set(seen)).toEqual(new Set(sent))
  })

  it("splits partitions between members and rebalances without loss when a third joins", async () => {
    const topic = unique("rebalance")
    const groupId = unique("group")
    await createTopic(topic, 6)
    const producer = await idempotentProducer()
    const seen: Array<string> = []
    const assignments = new Map<string, ReadonlyArray<number>>()
    const join = (name: string) => (assignment: ReadonlyArray<number>) => assignments.set(name, assignment)
    await startConsumer(groupId, topic, seen, join("a"))
    await startConsumer(groupId, topic, seen, join("b"))
    await waitFor(
      () => (assignments.get("a")?.length ?? 0) > 0 && (assignments.get("b")?.length ?? 0) > 0,
      15_000,
      "both members assigned"
    )
    await waitFor(() => (assignments.get("a")?.length ?? 0) + (assignments.get("b")?.length ?? 0) === 6)
    expect([...assignments.get("a")!, ...assignments.get("b")!].sort()).toEqual([0, 1, 2, 3, 4, 5])

    const first = values("before", 120)
    await producer.send({ topic, acks: -1, messages: first.map((value) => ({ value })) })
    await waitFor(() => new Set(seen).size >= 120, 15_000, "first batch")

    await startConsumer(groupId, topic, seen, join("c"))
    const second = values("during", 120)
    await producer.send({ topic, acks: -1, messages: second.map((value) => ({ value })) })
    await waitFor(() => ["a", "b", "c"].every((m) => (assignments.get(m)?.length ?? 0) === 2), 15_000, "3-way split")
    const third = values("after", 120)
    await producer.send({ topic, acks: -1, messages: third.map((value) => ({ value })) })
    await waitFor(() => new Set(seen).size >= 360, 15_000, "every message")
    expect(new Set(seen)).toEqual(new Set([...first, ...second, ...third]))
  })

  it("resumes a restarted consumer from its committed offsets", async () => {
    const topic = unique("resume")
    const groupId = unique("group")
    await createTopic(topic, 2)
    const producer = await idempotentProducer()
    await producer.send({ topic, acks: -1, messages: values("old", 40).map((value) => ({ value })) })
    const firstRun: Array<string> = []
    const consumer = await startConsumer(groupId, topic, firstRun)
    await waitFor(() => firstRun.length >= 40, 15_000, "first run")
    await consumer.disconnect()
    const committed = [0, 1].map((p) => emulator.committedOffset(groupId, topic, p) ?? 0n)
    expect(committed.reduce((a, b) => a + b, 0n)).toBe(40n)

    await producer.send({ topic, acks: -1, messages: values("new", 25).map((value) => ({ value })) })
    const secondRun: Array<string> = []
    await startConsumer(groupId, topic, secondRun)
    await waitFor(() => secondRun.length >= 25, 15_000, "second run")
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(secondRun.sort()).toEqual(values("new", 25).sort())
  })

  it("stores a retried produce batch once when the first response was lost", async () => {
    const topic = unique("retry")
    await createTopic(topic, 1)
    const producer = await idempotentProducer()
    await producer.send({ topic, acks: -1, messages: [{ value: "first" }] })
    emulator.faults.dropNext("Produce", { applied: true })
    const [result] = await producer.send({ topic, acks: -1, messages: values("dup", 5).map((value) => ({ value })) })
    expect(result!.baseOffset).toBe("1")
    const stored = emulator.records(topic, 0).map((r) => r.value!.toString())
    expect(stored).toEqual(["first", ...values("dup", 5)])
    await producer.send({ topic, acks: -1, messages: [{ value: "last" }] })
    expect(emulator.records(topic, 0).map((r) => Number(r.offset))).toEqual([0, 1, 2, 3, 4, 5, 6])
  })

  it("refuses a batch larger than messageMaxBytes with MESSAGE_TOO_LARGE", async () => {
    const small = await start({ messageMaxBytes: 10_000 })
    try {
      const client = kafkaFor(small)
      const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 })
      await producer.connect()
      const topic = unique("large")
      const send = producer.send({ topic, acks: -1, messages: [{ value: Buffer.alloc(20_000, 1) }] })
      await expect(send).rejects.toMatchObject({
        name: "KafkaJSProtocolError",
        type: "MESSAGE_TOO_LARGE",
        retriable: false
      })
      await producer.send({ topic, acks: -1, messages: [{ value: Buffer.alloc(1_000, 1) }] })
      expect(small.records(topic, 0).length + small.records(topic, 1).length + small.records(topic, 2).length).toBe(1)
      await producer.disconnect()
    } finally {
      await small.close()
    }
  })

  it("hands a new message to a consumer parked in a long poll at once", async () => {
    const topic = unique("longpoll")
    await createTopic(topic, 1)
    const consumer = track(kafka.consumer({ groupId: unique("group"), ...FAST_GROUP, maxWaitTimeInMs: 3_000 }))
    const arrivals: Array<number> = []
    let joined = false
    consumer.on(consumer.events.GROUP_JOIN, () => {
      joined = true
    })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({
      eachMessage: async () => {
        arrivals.push(Date.now())
      }
    })
    await waitFor(() => joined, 10_000, "the consumer to join")
    // Its fetch is now parked for at least 2.5 s more; an earlier answer came from the append.
    await new Promise((resolve) => setTimeout(resolve, 500))
    const producer = await idempotentProducer()
    const sentAt = Date.now()
    await producer.send({ topic, acks: -1, messages: [{ value: "ping" }] })
    await waitFor(() => arrivals.length === 1, 5_000, "the message")
    expect(arrivals[0]! - sentAt).toBeLessThan(2_000)
  })

  it("stores gzip batches compressed and delivers their records", async () => {
    const topic = unique("gzip")
    await createTopic(topic, 1)
    const producer = await idempotentProducer()
    const sent = values("zipped", 50)
    await producer.send({
      topic,
      acks: -1,
      compression: CompressionTypes.GZIP,
      messages: sent.map((value) => ({ value }))
    })
    expect(emulator.records(topic, 0).map((r) => r.value!.toString())).toEqual(sent)
    const seen: Array<string> = []
    await startConsumer(unique("group"), topic, seen)
    await waitFor(() => seen.length >= 50, 10_000, "50 messages")
    expect(seen).toEqual(sent)
  })

  it("lets producers and consumers carry on after every connection is dropped", async () => {
    const topic = unique("reconnect")
    await createTopic(topic, 2)
    const producer = await idempotentProducer()
    const seen: Array<string> = []
    await startConsumer(unique("group"), topic, seen)
    await producer.send({ topic, acks: -1, messages: values("before", 20).map((value) => ({ value })) })
    await waitFor(() => seen.length >= 20, 10_000, "first messages")
    emulator.faults.dropConnections()
    await producer.send({ topic, acks: -1, messages: values("after", 20).map((value) => ({ value })) })
    await waitFor(() => new Set(seen).size >= 40, 15_000, "messages after the drop")
    expect(new Set(seen)).toEqual(new Set([...values("before", 20), ...values("after", 20)]))
    expect([0, 1].flatMap((p) => emulator.records(topic, p))).toHaveLength(40)
  })

  it("answers the admin client's offset tools: topic offsets, group offsets, set and reset", async () => {
    const topic = unique("offsets")
    const groupId = unique("group")
    await createTopic(topic, 2)
    const producer = await idempotentProducer()
    await producer.send({
      topic,
      acks: -1,
      messages: [
        { value: "a", partition: 0 },
        { value: "b", partition: 0 }
      ]
    })
    const admin = track(kafka.admin())
    await admin.connect()
    expect(await admin.listTopics()).toContain(topic)
    const ends = await admin.fetchTopicOffsets(topic)
    expect(ends.sort((a, b) => a.partition - b.partition)).toMatchObject([
      { partition: 0, offset: "2", high: "2", low: "0" },
      { partition: 1, offset: "0", high: "0", low: "0" }
    ])
    const before = await admin.fetchOffsets({ groupId, topics: [topic] })
    expect(before[0]!.partitions.map((p) => p.offset)).toEqual(["-1", "-1"])
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: "1" }] })
    expect(emulator.committedOffset(groupId, topic, 0)).toBe(1n)
    const after = await admin.fetchOffsets({ groupId, topics: [topic] })
    expect(after[0]!.partitions.find((p) => p.partition === 0)?.offset).toBe("1")
    const described = await admin.describeGroups([groupId])
    expect(described.groups[0]!.state).toMatch(/Empty|Dead/)
    const seen: Array<string> = []
    await startConsumer(groupId, topic, seen)
    await waitFor(() => seen.length >= 1, 10_000, "the message after the set offset")
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(seen).toEqual(["b"])
  })

  it("retries through injected produce errors and dropped requests without storing twice", async () => {
    const topic = unique("faults")
    await createTopic(topic, 1)
    const producer = await idempotentProducer()
    emulator.faults.failNext("Produce", 6) // NOT_LEADER_OR_FOLLOWER: retriable, not applied
    await producer.send({ topic, acks: -1, messages: [{ value: "one" }] })
    emulator.faults.dropNext("Produce") // closed before applying
    await producer.send({ topic, acks: -1, messages: [{ value: "two" }] })
    emulator.faults.delayNext("Produce", 200)
    const started = Date.now()
    await producer.send({ topic, acks: -1, messages: [{ value: "three" }] })
    expect(Date.now() - started).toBeGreaterThanOrEqual(190)
    expect(emulator.records(topic, 0).map((r) => r.value!.toString())).toEqual(["one", "two", "three"])
  })

  it("accepts acks 1 and acks 0 from a plain producer", async () => {
    const topic = unique("acks")
    await createTopic(topic, 1)
    const producer = track(kafka.producer())
    await producer.connect()
    const [leader] = await producer.send({ topic, acks: 1, messages: [{ value: "leader" }] })
    expect(leader!.baseOffset).toBe("0")
    await producer.send({ topic, acks: 0, messages: [{ value: "fire-and-forget" }] })
    await waitFor(() => emulator.records(topic, 0).length === 2, 5_000, "the acks=0 message")
    expect(emulator.records(topic, 0).map((r) => r.value!.toString())).toEqual(["leader", "fire-and-forget"])
  })

  it("carries kafkajs through one retriable error on every API it uses", async () => {
    // A fresh emulator, so that no other client consumes the injected faults.
    const own = await start()
    const client = kafkaFor(own)
    const topic = unique("every-api")
    const admin = client.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
    await admin.disconnect()
    const faults: ReadonlyArray<readonly [string, number]> = [
      ["InitProducerId", 15], // COORDINATOR_NOT_AVAILABLE
      ["Produce", 6], // NOT_LEADER_OR_FOLLOWER
      ["FindCoordinator", 15],
      ["JoinGroup", 15],
      ["SyncGroup", 15],
      ["OffsetFetch", 15],
      ["ListOffsets", 6],
      ["Fetch", 6],
      ["Heartbeat", 27], // REBALANCE_IN_PROGRESS
      ["OffsetCommit", 16] // NOT_COORDINATOR
    ]
    for (const [api, code] of faults) own.faults.failNext(api, code)
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 })
    const consumer = client.consumer({ groupId: unique("group"), ...FAST_GROUP })
    try {
      await producer.connect()
      const sent = values("survivor", 20)
      await producer.send({ topic, acks: -1, messages: sent.map((value) => ({ value })) })
      const seen: Array<string> = []
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      await consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message.value!.toString())
        }
      })
      await waitFor(() => new Set(seen).size >= 20, 20_000, "every message")
      expect(new Set(seen)).toEqual(new Set(sent))
      expect([0, 1].flatMap((p) => own.records(topic, p))).toHaveLength(20)
    } finally {
      await Promise.all([producer.disconnect(), consumer.disconnect()])
      await own.close()
    }
  })

  it("finds offsets by timestamp", async () => {
    const topic = unique("time")
    await createTopic(topic, 1)
    const producer = await idempotentProducer()
    const base = 1_700_000_000_000
    await producer.send({
      topic,
      acks: -1,
      messages: [0, 1, 2, 3].map((i) => ({ value: `at-${i}`, timestamp: String(base + i * 1000) }))
    })
    const admin = track(kafka.admin())
    await admin.connect()
    const at = async (ts: number) => (await admin.fetchTopicOffsetsByTimestamp(topic, ts))[0]!.offset
    expect(await at(base)).toBe("0")
    expect(await at(base + 1500)).toBe("2")
    expect(await at(base + 3000)).toBe("3")
    expect(await at(base + 10_000)).toBe("4")
  })

  it("describes topic configs and grows a topic's partitions", async () => {
    const topic = unique("configs")
    const admin = track(kafka.admin())
    await admin.connect()
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: "cleanup.policy", value: "compact" }] }]
    })
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: topic, configNames: ["cleanup.policy", "min.insync.replicas"] }
      ]
    })
    const entries = described.resources[0]!.configEntries
    expect(entries.map((e) => [e.configName, e.configValue, e.isDefault])).toEqual([
      ["cleanup.policy", "compact", false],
      ["min.insync.replicas", "1", true]
    ])
    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
    expect(emulator.topics()).toContainEqual({ name: topic, partitions: 3 })
    await expect(admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] })).rejects.toThrow()
    const producer = await idempotentProducer()
    await producer.send({ topic, acks: -1, messages: [{ value: "new partition", partition: 2 }] })
    expect(emulator.records(topic, 2).map((r) => r.value!.toString())).toEqual(["new partition"])
  })
})
