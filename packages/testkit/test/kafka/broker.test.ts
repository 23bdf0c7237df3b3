/**
 * Broker behaviour at the protocol level, through a bare connection: batch validation, idempotent
 * sequence rules, fetch long polls and limits, and fault injection.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type KafkaEmulator, start } from "../../src/kafka/index.ts"
import { ApiKey } from "../../src/kafka/protocol/ApiKey.ts"
import { crc32c } from "../../src/kafka/protocol/Crc32c.ts"
import { ErrorCode } from "../../src/kafka/protocol/ErrorCode.ts"
import { encodeBatch } from "../../src/kafka/protocol/RecordBatch.ts"
import { type RawClient, rawClient, unique } from "./support.ts"

let emulator: KafkaEmulator
let client: RawClient

beforeAll(async () => {
  emulator = await start({ messageMaxBytes: 2_000 })
  client = await rawClient(emulator)
})
afterAll(async () => {
  client.close()
  await emulator.close()
})

const createTopic = async (c: RawClient, topic: string, partitions = 1): Promise<number> => {
  const r = await c.request(ApiKey.CreateTopics, 3, (w) =>
    w
      .array([topic], (w, name) => w.string(name).int32(partitions).int16(1).int32(0).int32(0))
      .int32(1000)
      .boolean(false)
  )
  r.int32()
  r.int32()
  r.string()
  return r.int16()
}

const batchOf = (values: ReadonlyArray<string>, idempotence?: { pid: bigint; epoch: number; seq: number }) =>
  encodeBatch({
    records: values.map((v) => ({ timestampDelta: 0n, key: null, value: Buffer.from(v), headers: [] })),
    baseTimestamp: BigInt(Date.now()),
    producerId: idempotence?.pid ?? -1n,
    producerEpoch: idempotence?.epoch ?? -1,
    baseSequence: idempotence?.seq ?? -1
  })

const produce = async (c: RawClient, topic: string, batch: Buffer, partition = 0) => {
  const r = await c.request(ApiKey.Produce, 7, (w) =>
    w
      .nullableString(null)
      .int16(-1)
      .int32(5000)
      .array([topic], (w, t) => w.string(t).array([partition], (w, p) => w.int32(p).bytes(batch)))
  )
  r.int32()
  r.string()
  r.int32()
  r.int32()
  return { errorCode: r.int16(), baseOffset: r.int64() }
}

const fetch = async (
  c: RawClient,
  topic: string,
  offset: bigint,
  options: { maxWaitMs?: number; maxBytes?: number } = {}
) => {
  const r = await c.request(ApiKey.Fetch, 6, (w) =>
    w
      .int32(-1)
      .int32(options.maxWaitMs ?? 0)
      .int32(1)
      .int32(options.maxBytes ?? 1_000_000)
      .int8(0)
      .array([topic], (w, t) =>
        w.string(t).array([0], (w, p) =>
          w
            .int32(p)
            .int64(offset)
            .int64(-1)
            .int32(options.maxBytes ?? 1_000_000)
        )
      )
  )
  r.int32()
  r.int32()
  r.string()
  r.int32()
  r.int32()
  const errorCode = r.int16()
  const highWatermark = r.int64()
  r.int64()
  r.int64()
  r.int32()
  return { errorCode, highWatermark, records: r.bytes() }
}

const initProducerId = async (c: RawClient): Promise<bigint> => {
  const r = await c.request(ApiKey.InitProducerId, 1, (w) => w.nullableString(null).int32(60_000))
  r.int32()
  expect(r.int16()).toBe(ErrorCode.NONE)
  return r.int64()
}

const stored = (topic: string) => emulator.records(topic, 0).map((r) => r.value!.toString())

describe("produce validation", () => {
  it("refuses a batch whose CRC does not match and stores nothing", async () => {
    const topic = unique("crc")
    await createTopic(client, topic)
    const batch = batchOf(["a", "b"])
    batch[batch.length - 1]! ^= 0x01
    expect((await produce(client, topic, batch)).errorCode).toBe(ErrorCode.CORRUPT_MESSAGE)
    expect(stored(topic)).toEqual([])
    expect(await produce(client, topic, batchOf(["c"]))).toEqual({ errorCode: ErrorCode.NONE, baseOffset: 0n })
  })

  it("refuses codecs other than none and gzip", async () => {
    const topic = unique("codec")
    await createTopic(client, topic)
    const batch = batchOf(["a"])
    batch.writeInt16BE(2, 21) // snappy
    batch.writeUInt32BE(crc32c(batch, 21), 17)
    expect((await produce(client, topic, batch)).errorCode).toBe(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)
    const gzip = encodeBatch({
      compression: 1,
      records: [{ timestampDelta: 0n, key: null, value: Buffer.from("z"), headers: [] }]
    })
    expect((await produce(client, topic, gzip)).errorCode).toBe(ErrorCode.NONE)
    expect(stored(topic)).toEqual(["z"])
  })

  it("refuses a batch above messageMaxBytes and an unknown partition", async () => {
    const topic = unique("size")
    await createTopic(client, topic)
    expect((await produce(client, topic, batchOf(["x".repeat(3_000)]))).errorCode).toBe(ErrorCode.MESSAGE_TOO_LARGE)
    expect((await produce(client, topic, batchOf(["a"]), 7)).errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    expect(stored(topic)).toEqual([])
  })
})

describe("idempotent producer sequences", () => {
  it("acknowledges a duplicate of a recent batch with its original offset and stores it once", async () => {
    const topic = unique("dup")
    await createTopic(client, topic)
    const pid = await initProducerId(client)
    const offsets: Array<bigint> = []
    for (let seq = 0; seq < 12; seq += 2) {
      offsets.push(
        (await produce(client, topic, batchOf([`v${seq}`, `v${seq + 1}`], { pid, epoch: 0, seq }))).baseOffset
      )
    }
    expect(offsets).toEqual([0n, 2n, 4n, 6n, 8n, 10n])
    // The last five batches are remembered; a retry of any of them is answered, not stored.
    expect(await produce(client, topic, batchOf(["v2", "v3"], { pid, epoch: 0, seq: 2 }))).toEqual({
      errorCode: ErrorCode.NONE,
      baseOffset: 2n
    })
    expect(await produce(client, topic, batchOf(["v10", "v11"], { pid, epoch: 0, seq: 10 }))).toEqual({
      errorCode: ErrorCode.NONE,
      baseOffset: 10n
    })
    // The first batch has left the window of five: it is now out of sequence.
    expect((await produce(client, topic, batchOf(["v0", "v1"], { pid, epoch: 0, seq: 0 }))).errorCode).toBe(
      ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    )
    expect(stored(topic)).toHaveLength(12)
  })

  it("refuses sequence gaps, unknown producers and fenced epochs", async () => {
    const topic = unique("seq")
    await createTopic(client, topic)
    const pid = await initProducerId(client)
    expect((await produce(client, topic, batchOf(["a"], { pid, epoch: 0, seq: 3 }))).errorCode).toBe(
      ErrorCode.UNKNOWN_PRODUCER_ID
    )
    expect((await produce(client, topic, batchOf(["a"], { pid, epoch: 0, seq: 0 }))).errorCode).toBe(ErrorCode.NONE)
    expect((await produce(client, topic, batchOf(["c"], { pid, epoch: 0, seq: 2 }))).errorCode).toBe(
      ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    )
    expect((await produce(client, topic, batchOf(["b"], { pid, epoch: 0, seq: 1 }))).errorCode).toBe(ErrorCode.NONE)
    expect((await produce(client, topic, batchOf(["x"], { pid, epoch: 1, seq: 5 }))).errorCode).toBe(
      ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    )
    expect((await produce(client, topic, batchOf(["c"], { pid, epoch: 1, seq: 0 }))).errorCode).toBe(ErrorCode.NONE)
    expect((await produce(client, topic, batchOf(["d"], { pid, epoch: 0, seq: 2 }))).errorCode).toBe(
      ErrorCode.INVALID_PRODUCER_EPOCH
    )
    expect(stored(topic)).toEqual(["a", "b", "c"])
  })
})

describe("fetch", () => {
  it("parks a fetch until data arrives, then answers at once", async () => {
    const topic = unique("poll")
    await createTopic(client, topic)
    const producer = await rawClient(emulator)
    try {
      const started = Date.now()
      const pending = fetch(client, topic, 0n, { maxWaitMs: 10_000 })
      await new Promise((resolve) => setTimeout(resolve, 150))
      await produce(producer, topic, batchOf(["late"]))
      const result = await pending
      const elapsed = Date.now() - started
      expect(result.errorCode).toBe(ErrorCode.NONE)
      expect(result.records.length).toBeGreaterThan(0)
      expect(elapsed).toBeGreaterThanOrEqual(140)
      expect(elapsed).toBeLessThan(2_000)
    } finally {
      producer.close()
    }
  })

  it("answers a fetch for no partitions at once", async () => {
    const started = Date.now()
    const r = await client.request(ApiKey.Fetch, 6, (w) =>
      w.int32(-1).int32(5_000).int32(1).int32(1_000).int8(0).int32(0)
    )
    expect(r.int32()).toBe(0)
    expect(r.int32()).toBe(0)
    expect(Date.now() - started).toBeLessThan(1_000)
  })

  it("answers an empty fetch after max_wait_ms", async () => {
    const topic = unique("wait")
    await createTopic(client, topic)
    const started = Date.now()
    const result = await fetch(client, topic, 0n, { maxWaitMs: 250 })
    expect(Date.now() - started).toBeGreaterThanOrEqual(240)
    expect(result).toMatchObject({ errorCode: ErrorCode.NONE, highWatermark: 0n })
    expect(result.records.length).toBe(0)
  })

  it("returns stored batches from the fetch offset within max_bytes, at least one", async () => {
    const topic = unique("limits")
    await createTopic(client, topic)
    const first = batchOf(["one", "two"])
    const second = batchOf(["three"])
    await produce(client, topic, first)
    await produce(client, topic, second)
    const all = await fetch(client, topic, 0n)
    expect(all.highWatermark).toBe(3n)
    expect(all.records.length).toBe(first.length + second.length)
    const fromMiddle = await fetch(client, topic, 1n)
    expect(fromMiddle.records.readBigInt64BE(0)).toBe(0n) // the batch holding offset 1 starts at 0
    const tight = await fetch(client, topic, 0n, { maxBytes: 10 })
    expect(tight.records.length).toBe(first.length)
    const last = await fetch(client, topic, 2n)
    expect(last.records.readBigInt64BE(0)).toBe(2n)
    expect((await fetch(client, topic, 3n)).records.length).toBe(0)
    expect((await fetch(client, topic, 4n)).errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE)
  })
})

describe("fault injection", () => {
  it("fails, delays and drops the next requests of an API", async () => {
    const topic = unique("faults")
    await createTopic(client, topic)
    emulator.faults.failNext("Produce", ErrorCode.NOT_LEADER_OR_FOLLOWER)
    expect((await produce(client, topic, batchOf(["a"]))).errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER)
    expect((await produce(client, topic, batchOf(["b"]))).errorCode).toBe(ErrorCode.NONE)
    expect(stored(topic)).toEqual(["b"])

    emulator.faults.delayNext(ApiKey.Produce, 300)
    const started = Date.now()
    await produce(client, topic, batchOf(["c"]))
    expect(Date.now() - started).toBeGreaterThanOrEqual(290)

    const dropped = await rawClient(emulator)
    emulator.faults.dropNext("Produce")
    await expect(produce(dropped, topic, batchOf(["lost"]))).rejects.toThrow("connection closed")
    const applied = await rawClient(emulator)
    emulator.faults.dropNext("Produce", { applied: true })
    await expect(produce(applied, topic, batchOf(["kept"]))).rejects.toThrow("connection closed")
    expect(stored(topic)).toEqual(["b", "c", "kept"])

    emulator.faults.failNext("Produce", ErrorCode.REQUEST_TIMED_OUT, 5)
    emulator.faults.reset()
    expect((await produce(client, topic, batchOf(["d"]))).errorCode).toBe(ErrorCode.NONE)
  })

  it("drops every open connection", async () => {
    const other = await rawClient(emulator)
    emulator.faults.dropConnections()
    await expect(other.request(ApiKey.ApiVersions, 0, () => undefined)).rejects.toThrow()
    client = await rawClient(emulator)
    const r = await client.request(ApiKey.ApiVersions, 2, () => undefined)
    expect(r.int16()).toBe(ErrorCode.NONE)
  })
})

describe("api versions", () => {
  it("lists the implemented range and answers an unknown ApiVersions version in the v0 layout", async () => {
    const r = await client.request(ApiKey.ApiVersions, 2, () => undefined)
    expect(r.int16()).toBe(ErrorCode.NONE)
    const apis = new Map(r.array((r) => [r.int16(), [r.int16(), r.int16()]] as const))
    expect(apis.get(ApiKey.Produce)).toEqual([3, 7])
    expect(apis.get(ApiKey.Fetch)).toEqual([4, 6])
    const unsupported = await client.request(ApiKey.ApiVersions, 9, () => undefined)
    expect(unsupported.int16()).toBe(ErrorCode.UNSUPPORTED_VERSION)
  })
})

describe("retention", () => {
  it("drops the oldest batches beyond retentionBytesPerPartition and moves the log start", async () => {
    const bounded = await start({ retentionBytesPerPartition: 500 })
    const c = await rawClient(bounded)
    try {
      const topic = unique("retention")
      await createTopic(c, topic)
      for (let i = 0; i < 10; i++) await produce(c, topic, batchOf([`value-${i}-${"x".repeat(100)}`]))
      const kept = bounded.records(topic, 0)
      expect(kept.length).toBeGreaterThan(0)
      expect(kept.length).toBeLessThan(10)
      expect(kept.at(-1)!.offset).toBe(9n)
      const r = await c.request(ApiKey.ListOffsets, 3, (w) =>
        w
          .int32(-1)
          .int8(0)
          .array([topic], (w, t) => w.string(t).array([0], (w, p) => w.int32(p).int64(-2n)))
      )
      r.int32()
      r.int32()
      r.string()
      r.int32()
      r.int32()
      expect(r.int16()).toBe(ErrorCode.NONE)
      r.int64()
      expect(r.int64()).toBe(kept[0]!.offset)
      expect((await fetch(c, topic, 0n)).errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE)
      expect((await fetch(c, topic, kept[0]!.offset)).errorCode).toBe(ErrorCode.NONE)
    } finally {
      c.close()
      await bounded.close()
    }
  })
})

describe("topics and offsets through the protocol", () => {
  it("validates CreateTopics and leaves the store alone with validate_only", async () => {
    const create = async (topic: string, partitions: number, replication: number, validateOnly = false) => {
      const r = await client.request(ApiKey.CreateTopics, 3, (w) =>
        w
          .array([topic], (w, name) => w.string(name).int32(partitions).int16(replication).int32(0).int32(0))
          .int32(1000)
          .boolean(validateOnly)
      )
      r.int32()
      r.int32()
      r.string()
      return { errorCode: r.int16(), message: r.nullableString() }
    }
    const name = unique("create")
    expect((await create(name, 0, 1)).errorCode).toBe(ErrorCode.INVALID_PARTITIONS)
    expect(await create(name, 1, 3)).toEqual({
      errorCode: ErrorCode.INVALID_REPLICATION_FACTOR,
      message: "Replication factor: 3 larger than available brokers: 1."
    })
    expect((await create("bad/name", 1, 1)).errorCode).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION)
    expect((await create(name, 2, -1, true)).errorCode).toBe(ErrorCode.NONE)
    expect(emulator.topics().map((t) => t.name)).not.toContain(name)
    expect((await create(name, -1, -1)).errorCode).toBe(ErrorCode.NONE)
    expect(emulator.topics()).toContainEqual({ name, partitions: 3 })
  })

  it("creates unknown topics from Metadata only when allowed", async () => {
    const metadata = async (c: RawClient, topic: string, allow: boolean) => {
      const r = await c.request(ApiKey.Metadata, 5, (w) => w.array([topic], (w, t) => w.string(t)).boolean(allow))
      r.int32()
      r.array((r) => [r.int32(), r.string(), r.int32(), r.nullableString()])
      r.nullableString()
      r.int32()
      r.int32()
      return { errorCode: r.int16(), name: r.string(), internal: r.boolean(), partitions: r.int32() }
    }
    const name = unique("auto")
    expect(await metadata(client, name, false)).toMatchObject({
      errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      partitions: 0
    })
    expect(await metadata(client, name, true)).toMatchObject({ errorCode: ErrorCode.NONE, partitions: 3 })
    const strict = await start({ autoCreateTopics: false })
    const c = await rawClient(strict)
    try {
      expect((await metadata(c, name, true)).errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
      expect(strict.topics()).toEqual([])
    } finally {
      c.close()
      await strict.close()
    }
  })

  it("checks OffsetCommit against the group and returns commits from OffsetFetch", async () => {
    const topic = unique("commit")
    await createTopic(client, topic, 2)
    const commit = async (group: string, generation: number, partition: number, offset: bigint) => {
      const r = await client.request(ApiKey.OffsetCommit, 5, (w) =>
        w
          .string(group)
          .int32(generation)
          .string("")
          .array([topic], (w, t) =>
            w.string(t).array([partition], (w, p) => w.int32(p).int64(offset).nullableString("m"))
          )
      )
      r.int32()
      r.int32()
      r.string()
      r.int32()
      r.int32()
      return r.int16()
    }
    const group = unique("group")
    expect(await commit(group, 3, 0, 5n)).toBe(ErrorCode.ILLEGAL_GENERATION)
    expect(await commit(group, -1, 0, 5n)).toBe(ErrorCode.NONE)
    expect(await commit(group, -1, 9, 5n)).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    expect(emulator.committedOffset(group, topic, 0)).toBe(5n)
    const r = await client.request(ApiKey.OffsetFetch, 4, (w) => w.string(group).nullableArray(null, () => undefined))
    r.int32()
    const topics = r.array((r) => ({
      name: r.string(),
      partitions: r.array((r) => ({
        partition: r.int32(),
        offset: r.int64(),
        metadata: r.nullableString(),
        errorCode: r.int16()
      }))
    }))
    expect(r.int16()).toBe(ErrorCode.NONE)
    expect(topics).toEqual([{ name: topic, partitions: [{ partition: 0, offset: 5n, metadata: "m", errorCode: 0 }] }])
  })

  it("closes the connection when an acks=0 produce fails, since it has no response to carry the error", async () => {
    const c = await rawClient(emulator)
    const r = c.request(ApiKey.Produce, 7, (w) =>
      w
        .nullableString(null)
        .int16(0)
        .int32(5000)
        .array(["no-such-topic"], (w, t) => w.string(t).array([0], (w, p) => w.int32(p).bytes(batchOf(["x"]))))
    )
    await expect(r).rejects.toThrow("connection closed")
  })
})
