/**
 * Record batch of magic 2, the only message format the emulator accepts:
 *
 * ```
 * baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 |
 * attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 |
 * producerId int64 | producerEpoch int16 | baseSequence int32 | recordCount int32 | records
 * ```
 *
 * The CRC-32C covers `attributes` to the end, so the broker may rewrite `baseOffset` and
 * `partitionLeaderEpoch` in place without recomputing it.
 *
 * @since 0.1.0
 */
import { gunzipSync, gzipSync } from "node:zlib"
import { crc32c } from "./Crc32c.ts"
import { Reader } from "./Reader.ts"
import { Writer } from "./Writer.ts"

/** Bytes before the records: the fixed batch header. */
export const BATCH_HEADER_SIZE = 61
/** Bytes of `baseOffset` plus `batchLength`, which `batchLength` does not count. */
export const LOG_OVERHEAD = 12
const CRC_OFFSET = 17
const ATTRIBUTES_OFFSET = 21

export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const
const COMPRESSION_MASK = 0x07
const TRANSACTIONAL_FLAG = 0x10
const CONTROL_FLAG = 0x20

export interface RecordHeader {
  readonly key: string
  readonly value: Buffer | null
}

export interface Record {
  readonly offsetDelta: number
  readonly timestampDelta: bigint
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: ReadonlyArray<RecordHeader>
}

/** The fixed header fields of a batch, read without touching the records. */
export interface BatchHeader {
  readonly baseOffset: bigint
  readonly batchLength: number
  readonly partitionLeaderEpoch: number
  readonly magic: number
  readonly crc: number
  readonly attributes: number
  readonly compression: number
  readonly transactional: boolean
  readonly control: boolean
  readonly lastOffsetDelta: number
  readonly baseTimestamp: bigint
  readonly maxTimestamp: bigint
  readonly producerId: bigint
  readonly producerEpoch: number
  readonly baseSequence: number
  readonly recordCount: number
}

export interface RecordBatch extends BatchHeader {
  readonly records: ReadonlyArray<Record>
}

export const readBatchHeader = (batch: Buffer): BatchHeader => {
  const r = new Reader(batch)
  const baseOffset = r.int64()
  const batchLength = r.int32()
  const partitionLeaderEpoch = r.int32()
  const magic = r.int8()
  const crc = r.uint32()
  const attributes = r.int16()
  return {
    baseOffset,
    batchLength,
    partitionLeaderEpoch,
    magic,
    crc,
    attributes,
    compression: attributes & COMPRESSION_MASK,
    transactional: (attributes & TRANSACTIONAL_FLAG) !== 0,
    control: (attributes & CONTROL_FLAG) !== 0,
    lastOffsetDelta: r.int32(),
    baseTimestamp: r.int64(),
    maxTimestamp: r.int64(),
    producerId: r.int64(),
    producerEpoch: r.int16(),
    baseSequence: r.int32(),
    recordCount: r.int32()
  }
}

/** True when the stored CRC-32C matches the bytes from `attributes` to the end of the batch. */
export const hasValidCrc = (batch: Buffer): boolean =>
  batch.length >= BATCH_HEADER_SIZE && batch.readUInt32BE(CRC_OFFSET) === crc32c(batch, ATTRIBUTES_OFFSET, batch.length)

/**
 * Splits a produce request's record set into its batches (views, no copy). Returns `undefined`
 * when the set is not a whole number of well-formed magic-2 batches.
 */
export const splitBatches = (recordSet: Buffer): Array<Buffer> | undefined => {
  const batches: Array<Buffer> = []
  let at = 0
  while (at < recordSet.length) {
    if (recordSet.length - at < BATCH_HEADER_SIZE) return undefined
    const size = recordSet.readInt32BE(at + 8) + LOG_OVERHEAD
    if (size < BATCH_HEADER_SIZE || at + size > recordSet.length) return undefined
    batches.push(recordSet.subarray(at, at + size))
    at += size
  }
  return batches
}

const readRecord = (r: Reader): Record => {
  const length = r.varint()
  const end = r.offset + length
  r.int8() // record attributes, unused
  const timestampDelta = r.varlong()
  const offsetDelta = r.varint()
  const key = r.varintBytes()
  const value = r.varintBytes()
  const headerCount = r.varint()
  const headers: Array<RecordHeader> = []
  for (let i = 0; i < headerCount; i++) {
    const headerKey = r.varintBytes()
    headers.push({ key: headerKey === null ? "" : headerKey.toString("utf8"), value: r.varintBytes() })
  }
  r.offset = end
  return { offsetDelta, timestampDelta, key, value, headers }
}

/** Decodes a whole batch, decompressing gzip records. Other codecs throw. */
export const decodeBatch = (batch: Buffer): RecordBatch => {
  const header = readBatchHeader(batch)
  let body = batch.subarray(BATCH_HEADER_SIZE, LOG_OVERHEAD + header.batchLength)
  if (header.compression === Compression.gzip) body = gunzipSync(body)
  else if (header.compression !== Compression.none)
    throw new Error(`unsupported compression codec ${header.compression}`)
  const r = new Reader(body)
  const records: Array<Record> = []
  for (let i = 0; i < header.recordCount; i++) records.push(readRecord(r))
  return { ...header, records }
}

export interface EncodeBatchOptions {
  readonly baseOffset?: bigint
  readonly partitionLeaderEpoch?: number
  readonly compression?: 0 | 1
  readonly transactional?: boolean
  readonly baseTimestamp?: bigint
  readonly maxTimestamp?: bigint
  readonly producerId?: bigint
  readonly producerEpoch?: number
  readonly baseSequence?: number
  readonly records: ReadonlyArray<Omit<Record, "offsetDelta"> & { readonly offsetDelta?: number }>
}

const writeRecord = (w: Writer, record: EncodeBatchOptions["records"][number], index: number): void => {
  const body = new Writer()
  body
    .int8(0)
    .varlong(record.timestampDelta)
    .varint(record.offsetDelta ?? index)
    .varintBytes(record.key)
    .varintBytes(record.value)
    .varint(record.headers.length)
  for (const header of record.headers) body.varintBytes(Buffer.from(header.key, "utf8")).varintBytes(header.value)
  const bytes = body.toBuffer()
  w.varint(bytes.length).raw(bytes)
}

/** Encodes a batch with a correct CRC-32C. */
export const encodeBatch = (options: EncodeBatchOptions): Buffer => {
  const records = new Writer()
  options.records.forEach((record, index) => {
    writeRecord(records, record, index)
  })
  const compression = options.compression ?? Compression.none
  let recordBytes = records.toBuffer()
  if (compression === Compression.gzip) recordBytes = gzipSync(recordBytes)
  const lastOffsetDelta = options.records.reduce((max, r, i) => Math.max(max, r.offsetDelta ?? i), -1)
  const baseTimestamp = options.baseTimestamp ?? 0n
  const w = new Writer(BATCH_HEADER_SIZE + recordBytes.length)
  w.int64(options.baseOffset ?? 0n)
    .int32(BATCH_HEADER_SIZE - LOG_OVERHEAD + recordBytes.length)
    .int32(options.partitionLeaderEpoch ?? 0)
    .int8(2)
    .uint32(0)
    .int16(compression | (options.transactional ? TRANSACTIONAL_FLAG : 0))
    .int32(lastOffsetDelta)
    .int64(baseTimestamp)
    .int64(options.maxTimestamp ?? baseTimestamp)
    .int64(options.producerId ?? -1n)
    .int16(options.producerEpoch ?? -1)
    .int32(options.baseSequence ?? -1)
    .int32(options.records.length)
    .raw(recordBytes)
  const out = w.toBuffer()
  out.writeUInt32BE(crc32c(out, ATTRIBUTES_OFFSET, out.length), CRC_OFFSET)
  return out
}
