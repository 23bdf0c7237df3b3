/**
 * Produce (key 0), v3–v7: record batches of magic 2 only. Each batch is checked (framing, magic,
 * CRC-32C, size, compression codec, idempotent sequence) before anything of its partition is
 * stored; a valid batch is stored as received with its assigned base offset written in.
 *
 * Compression: none and gzip are accepted (the batch is stored compressed, as Kafka stores it);
 * snappy, lz4 and zstd are refused with UNSUPPORTED_COMPRESSION_TYPE. Transactional batches are
 * refused with INVALID_REQUEST since transactions are not implemented.
 *
 * @since 0.1.0
 */
import type { Broker } from "../Broker.ts"
import type { PartitionLog } from "../Log.ts"
import { ApiKey } from "../protocol/ApiKey.ts"
import { ErrorCode } from "../protocol/ErrorCode.ts"
import { Compression, hasValidCrc, readBatchHeader, splitBatches } from "../protocol/RecordBatch.ts"
import { defineApi } from "./Api.ts"

interface ProduceRequest {
  readonly transactionalId: string | null
  readonly acks: number
  readonly timeoutMs: number
  readonly topics: ReadonlyArray<{
    readonly name: string
    readonly partitions: ReadonlyArray<{ readonly partition: number; readonly records: Buffer | null }>
  }>
}

interface PartitionResult {
  readonly partition: number
  readonly errorCode: number
  readonly baseOffset: number
  readonly logStartOffset: number
}

type ProduceResponse = ReadonlyArray<{ readonly name: string; readonly partitions: ReadonlyArray<PartitionResult> }>

const rejected = (partition: number, errorCode: number): PartitionResult => ({
  partition,
  errorCode,
  baseOffset: -1,
  logStartOffset: -1
})

/** Validates and appends one partition's record set; the whole set is refused if any batch is invalid. */
const appendRecordSet = (
  broker: Broker,
  topic: string,
  partition: number,
  log: PartitionLog,
  recordSet: Buffer | null
): PartitionResult => {
  if (recordSet === null || recordSet.length === 0) return rejected(partition, ErrorCode.CORRUPT_MESSAGE)
  const batches = splitBatches(recordSet)
  if (batches === undefined) return rejected(partition, ErrorCode.CORRUPT_MESSAGE)
  const headers = []
  for (const batch of batches) {
    if (batch.length > broker.settings.messageMaxBytes) return rejected(partition, ErrorCode.MESSAGE_TOO_LARGE)
    const header = readBatchHeader(batch)
    if (header.magic !== 2 || !hasValidCrc(batch) || header.lastOffsetDelta < 0) {
      return rejected(partition, ErrorCode.CORRUPT_MESSAGE)
    }
    if (header.compression !== Compression.none && header.compression !== Compression.gzip) {
      return rejected(partition, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)
    }
    if (header.transactional || header.control) return rejected(partition, ErrorCode.INVALID_REQUEST)
    headers.push(header)
  }
  let firstOffset = -1
  for (let i = 0; i < batches.length; i++) {
    const header = headers[i]!
    const idempotent = header.producerId >= 0n
    if (idempotent) {
      const check = broker.producers.check(
        header.producerId,
        header.producerEpoch,
        topic,
        partition,
        header.baseSequence,
        header.lastOffsetDelta
      )
      if (check._tag === "Reject") return rejected(partition, check.errorCode)
      if (check._tag === "Duplicate") {
        // A retry of a batch already stored: acknowledge it again with its original offset.
        if (firstOffset < 0) firstOffset = check.baseOffset
        continue
      }
    }
    const baseOffset = log.append(batches[i]!, header.lastOffsetDelta)
    if (idempotent) {
      broker.producers.record(
        header.producerId,
        header.producerEpoch,
        topic,
        partition,
        header.baseSequence,
        header.lastOffsetDelta,
        baseOffset
      )
    }
    if (firstOffset < 0) firstOffset = baseOffset
  }
  return { partition, errorCode: ErrorCode.NONE, baseOffset: firstOffset, logStartOffset: log.logStartOffset }
}

const failAll = (request: ProduceRequest, errorCode: number): ProduceResponse =>
  request.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => rejected(p.partition, errorCode)) }))

export const Produce = defineApi<ProduceRequest, ProduceResponse>({
  key: ApiKey.Produce,
  name: "Produce",
  minVersion: 3,
  maxVersion: 7,
  decode: (r) => ({
    transactionalId: r.nullableString(),
    acks: r.int16(),
    timeoutMs: r.int32(),
    topics: r.array((r) => ({
      name: r.string(),
      partitions: r.array((r) => ({ partition: r.int32(), records: r.nullableBytes() }))
    }))
  }),
  handle: ({ broker }, request) => {
    if (request.acks !== -1 && request.acks !== 0 && request.acks !== 1) {
      return failAll(request, ErrorCode.INVALID_REQUIRED_ACKS)
    }
    if (request.transactionalId !== null) return failAll(request, ErrorCode.INVALID_REQUEST)
    return request.topics.map((t) => {
      const topic = broker.logs.get(t.name)
      return {
        name: t.name,
        partitions: t.partitions.map((p) => {
          const log = topic?.partitions[p.partition]
          if (log === undefined) return rejected(p.partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
          return appendRecordSet(broker, t.name, p.partition, log, p.records)
        })
      }
    })
  },
  fail: failAll,
  encode: (w, response, version) => {
    w.array(response, (w, t) => {
      w.string(t.name).array(t.partitions, (w, p) => {
        w.int32(p.partition).int16(p.errorCode).int64(p.baseOffset).int64(-1) // log_append_time: CreateTime topics
        if (version >= 5) w.int64(p.logStartOffset)
      })
    })
    w.int32(0) // throttle_time_ms
  },
  withoutResponse: (request, response) => {
    if (request.acks !== 0) return undefined
    return response.some((t) => t.partitions.some((p) => p.errorCode !== ErrorCode.NONE)) ? "close" : "silent"
  }
})
