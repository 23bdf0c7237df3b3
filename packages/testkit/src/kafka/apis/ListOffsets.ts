/**
 * ListOffsets (key 2), v1–v3: earliest (-2), latest (-1), or the first offset whose record
 * timestamp is at or after a given time (offset and timestamp -1 when there is none, as in Kafka).
 *
 * @since 0.1.0
 */
import type { PartitionLog } from "../Log.ts"
import { ApiKey } from "../protocol/ApiKey.ts"
import { ErrorCode } from "../protocol/ErrorCode.ts"
import { decodeBatch } from "../protocol/RecordBatch.ts"
import { defineApi } from "./Api.ts"

const LATEST = -1n
const EARLIEST = -2n
/** Byte offset of maxTimestamp inside a stored batch. */
const MAX_TIMESTAMP_OFFSET = 35

interface ListOffsetsRequest {
  readonly topics: ReadonlyArray<{
    readonly name: string
    readonly partitions: ReadonlyArray<{ readonly partition: number; readonly timestamp: bigint }>
  }>
}

interface PartitionOffset {
  readonly partition: number
  readonly errorCode: number
  readonly timestamp: bigint
  readonly offset: bigint
}

type ListOffsetsResponse = ReadonlyArray<{ readonly name: string; readonly partitions: ReadonlyArray<PartitionOffset> }>

const offsetForTimestamp = (log: PartitionLog, timestamp: bigint): { offset: bigint; timestamp: bigint } => {
  for (const batch of log.batches) {
    if (batch.readBigInt64BE(MAX_TIMESTAMP_OFFSET) < timestamp) continue
    const decoded = decodeBatch(batch)
    for (const record of decoded.records) {
      const recordTimestamp = decoded.baseTimestamp + record.timestampDelta
      if (recordTimestamp >= timestamp) {
        return { offset: decoded.baseOffset + BigInt(record.offsetDelta), timestamp: recordTimestamp }
      }
    }
  }
  return { offset: -1n, timestamp: -1n }
}

export const ListOffsets = defineApi<ListOffsetsRequest, ListOffsetsResponse>({
  key: ApiKey.ListOffsets,
  name: "ListOffsets",
  minVersion: 1,
  maxVersion: 3,
  decode: (r, version) => {
    r.int32() // replica_id
    if (version >= 2) r.int8() // isolation_level
    return {
      topics: r.array((r) => ({
        name: r.string(),
        partitions: r.array((r) => ({ partition: r.int32(), timestamp: r.int64() }))
      }))
    }
  },
  handle: ({ broker }, request) =>
    request.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p): PartitionOffset => {
        const log = broker.logs.partition(t.name, p.partition)
        if (log === undefined) {
          return {
            partition: p.partition,
            errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            timestamp: -1n,
            offset: -1n
          }
        }
        if (p.timestamp === LATEST || p.timestamp === EARLIEST) {
          const offset = p.timestamp === LATEST ? log.nextOffset : log.logStartOffset
          return { partition: p.partition, errorCode: ErrorCode.NONE, timestamp: -1n, offset: BigInt(offset) }
        }
        return { partition: p.partition, errorCode: ErrorCode.NONE, ...offsetForTimestamp(log, p.timestamp) }
      })
    })),
  fail: (request, errorCode) =>
    request.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode, timestamp: -1n, offset: -1n }))
    })),
  encode: (w, response, version) => {
    if (version >= 2) w.int32(0)
    w.array(response, (w, t) => {
      w.string(t.name).array(t.partitions, (w, p) =>
        w.int32(p.partition).int16(p.errorCode).int64(p.timestamp).int64(p.offset)
      )
    })
  }
})
