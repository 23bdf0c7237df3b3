/**
 * Fetch (key 1), v4–v6: stored batches from the one holding the fetch offset. A request that finds
 * fewer than `min_bytes` waits (long poll) until an append to one of its partitions brings enough,
 * or until `max_wait_ms` passes. Size limits follow KIP-74: the first batch of the first non-empty
 * partition is returned even when it exceeds `max_bytes` or the partition limit.
 *
 * Isolation levels are accepted; with no transactions, the last stable offset is the high watermark.
 *
 * @since 0.1.0
 */
import type { Broker } from "../Broker.ts"
import type { PartitionLog } from "../Log.ts"
import { ApiKey } from "../protocol/ApiKey.ts"
import { ErrorCode } from "../protocol/ErrorCode.ts"
import { defineApi } from "./Api.ts"

interface FetchPartition {
  readonly partition: number
  readonly fetchOffset: number
  readonly maxBytes: number
}

interface FetchRequest {
  readonly maxWaitMs: number
  readonly minBytes: number
  readonly maxBytes: number
  readonly topics: ReadonlyArray<{ readonly name: string; readonly partitions: ReadonlyArray<FetchPartition> }>
}

interface PartitionData {
  readonly partition: number
  readonly errorCode: number
  readonly highWatermark: number
  readonly logStartOffset: number
  readonly batches: ReadonlyArray<Buffer>
  readonly bytes: number
}

interface FetchResponse {
  readonly topics: ReadonlyArray<{ readonly name: string; readonly partitions: ReadonlyArray<PartitionData> }>
  readonly bytes: number
  readonly hasError: boolean
}

const NO_BATCHES: ReadonlyArray<Buffer> = []

const errorData = (partition: number, errorCode: number, log?: PartitionLog): PartitionData => ({
  partition,
  errorCode,
  highWatermark: log?.nextOffset ?? -1,
  logStartOffset: log?.logStartOffset ?? -1,
  batches: NO_BATCHES,
  bytes: 0
})

/** Reads what the request would get right now. */
const evaluate = (broker: Broker, request: FetchRequest): FetchResponse => {
  let remaining = request.maxBytes
  let bytes = 0
  let hasError = false
  const topics = request.topics.map((t) => {
    const topic = broker.logs.get(t.name)
    return {
      name: t.name,
      partitions: t.partitions.map((p): PartitionData => {
        const log = topic?.partitions[p.partition]
        if (log === undefined) {
          hasError = true
          return errorData(p.partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        }
        if (p.fetchOffset < log.logStartOffset || p.fetchOffset > log.nextOffset) {
          hasError = true
          return errorData(p.partition, ErrorCode.OFFSET_OUT_OF_RANGE, log)
        }
        const read = log.read(p.fetchOffset, Math.min(p.maxBytes, remaining), bytes === 0)
        remaining -= read.bytes
        bytes += read.bytes
        return {
          partition: p.partition,
          errorCode: ErrorCode.NONE,
          highWatermark: log.nextOffset,
          logStartOffset: log.logStartOffset,
          batches: read.batches,
          bytes: read.bytes
        }
      })
    }
  })
  return { topics, bytes, hasError }
}

/** Waits for appends to the request's partitions until `min_bytes` is reached or `max_wait_ms` passes. */
const longPoll = (broker: Broker, request: FetchRequest): Promise<FetchResponse> =>
  new Promise((resolve) => {
    const logs: Array<PartitionLog> = []
    for (const t of request.topics) {
      const topic = broker.logs.get(t.name)
      for (const p of t.partitions) {
        const log = topic?.partitions[p.partition]
        if (log !== undefined) logs.push(log)
      }
    }
    let done = false
    const finish = (response: FetchResponse) => {
      done = true
      clearTimeout(timer)
      for (const log of logs) log.cancelWait(wake)
      resolve(response)
    }
    const wake = () => {
      if (done) return
      const response = evaluate(broker, request)
      if (response.bytes >= request.minBytes || response.hasError) finish(response)
      else for (const log of logs) log.waitForAppend(wake)
    }
    const timer = setTimeout(() => finish(evaluate(broker, request)), request.maxWaitMs)
    timer.unref()
    for (const log of logs) log.waitForAppend(wake)
  })

export const Fetch = defineApi<FetchRequest, FetchResponse>({
  key: ApiKey.Fetch,
  name: "Fetch",
  minVersion: 4,
  maxVersion: 6,
  decode: (r, version) => {
    r.int32() // replica_id: consumers only
    const maxWaitMs = r.int32()
    const minBytes = r.int32()
    const maxBytes = r.int32()
    r.int8() // isolation_level: no transactions, so both levels read the same
    const topics = r.array((r) => ({
      name: r.string(),
      partitions: r.array((r): FetchPartition => {
        const partition = r.int32()
        const fetchOffset = r.int64Number()
        if (version >= 5) r.int64() // log_start_offset: followers only
        return { partition, fetchOffset, maxBytes: r.int32() }
      })
    }))
    return { maxWaitMs, minBytes, maxBytes, topics }
  },
  handle: ({ broker }, request) => {
    const response = evaluate(broker, request)
    // As in Kafka, a fetch answers at once when it has enough, hit an error, may not wait, or asks for nothing.
    const asksForNothing = request.topics.every((t) => t.partitions.length === 0)
    if (response.bytes >= request.minBytes || response.hasError || request.maxWaitMs <= 0 || asksForNothing) {
      return response
    }
    return longPoll(broker, request)
  },
  fail: (request, errorCode) => ({
    topics: request.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => errorData(p.partition, errorCode))
    })),
    bytes: 0,
    hasError: true
  }),
  encode: (w, response, version) => {
    w.int32(0) // throttle_time_ms
    w.array(response.topics, (w, t) => {
      w.string(t.name).array(t.partitions, (w, p) => {
        w.int32(p.partition).int16(p.errorCode).int64(p.highWatermark).int64(p.highWatermark) // last_stable_offset
        if (version >= 5) w.int64(p.logStartOffset)
        w.int32(0) // aborted_transactions
        w.int32(p.bytes)
        for (const batch of p.batches) w.raw(batch)
      })
    })
  }
})
