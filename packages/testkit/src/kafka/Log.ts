/**
 * Topics and their partition logs. A partition stores record batches exactly as producers sent
 * them (with the broker-assigned base offset written in), plus an index of first and last offsets,
 * so a Fetch answers with the stored buffers as they are and never re-encodes records.
 *
 * @since 0.1.0
 */
import { LOG_OVERHEAD } from "./protocol/RecordBatch.ts"

/**
 * One partition: an append-only list of batches. Offsets are kept as numbers (exact below 2^53).
 * With a retention limit the oldest batches are dropped once the partition holds more bytes than
 * that, advancing the log start offset, so long benchmarks run in bounded memory.
 */
export class PartitionLog {
  private batchList: Array<Buffer> = []
  private baseOffsetList: Array<number> = []
  private lastOffsetList: Array<number> = []
  /** Index of the first retained batch in the lists above (dropped batches are spliced out lazily). */
  private head = 0
  /** The high watermark: offset of the next record (single replica, so everything appended is committed). */
  nextOffset = 0
  logStartOffset = 0
  /** Bytes of the retained batches. */
  size = 0
  private readonly retentionBytes: number
  private readonly waiters = new Set<() => void>()

  constructor(retentionBytes = Number.POSITIVE_INFINITY) {
    this.retentionBytes = retentionBytes
  }

  /** The retained batches, oldest first, as stored (base offset written in). */
  get batches(): ReadonlyArray<Buffer> {
    return this.head === 0 ? this.batchList : this.batchList.slice(this.head)
  }

  /** Copies `batch`, writes its base offset and leader epoch, appends it; returns the base offset. */
  append(batch: Buffer, lastOffsetDelta: number): number {
    const baseOffset = this.nextOffset
    const stored = Buffer.allocUnsafeSlow(batch.length)
    batch.copy(stored)
    stored.writeBigInt64BE(BigInt(baseOffset), 0)
    stored.writeInt32BE(0, LOG_OVERHEAD)
    this.batchList.push(stored)
    this.baseOffsetList.push(baseOffset)
    this.lastOffsetList.push(baseOffset + lastOffsetDelta)
    this.nextOffset = baseOffset + lastOffsetDelta + 1
    this.size += stored.length
    if (this.size > this.retentionBytes) this.enforceRetention()
    if (this.waiters.size > 0) {
      const waiting = [...this.waiters]
      this.waiters.clear()
      for (const wake of waiting) wake()
    }
    return baseOffset
  }

  private enforceRetention(): void {
    // The newest batch always stays, so the log start offset never passes the high watermark.
    while (this.size > this.retentionBytes && this.batchList.length - this.head > 1) {
      this.size -= this.batchList[this.head]!.length
      this.head++
    }
    this.logStartOffset = this.baseOffsetList[this.head]!
    if (this.head > 1024 && this.head * 2 > this.batchList.length) {
      this.batchList = this.batchList.slice(this.head)
      this.baseOffsetList = this.baseOffsetList.slice(this.head)
      this.lastOffsetList = this.lastOffsetList.slice(this.head)
      this.head = 0
    }
  }

  /** Index of the first retained batch whose last offset is at or after `offset` (list length when none). */
  private indexOf(offset: number): number {
    let lo = this.head
    let hi = this.lastOffsetList.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.lastOffsetList[mid]! < offset) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /**
   * Stored batches from the one holding `offset`, up to `maxBytes`. When `minOne` is set the first
   * batch is returned even if it alone exceeds `maxBytes`, so an oversized batch never stalls a consumer.
   */
  read(offset: number, maxBytes: number, minOne: boolean): { readonly batches: Array<Buffer>; readonly bytes: number } {
    const batches: Array<Buffer> = []
    let bytes = 0
    for (let i = this.indexOf(offset); i < this.batchList.length; i++) {
      const batch = this.batchList[i]!
      if (bytes + batch.length > maxBytes && !(minOne && batches.length === 0)) break
      batches.push(batch)
      bytes += batch.length
    }
    return { batches, bytes }
  }

  /** Calls `wake` once, on the next append. */
  waitForAppend(wake: () => void): void {
    this.waiters.add(wake)
  }

  cancelWait(wake: () => void): void {
    this.waiters.delete(wake)
  }
}

export class Topic {
  readonly name: string
  readonly partitions: Array<PartitionLog>
  readonly configs: ReadonlyMap<string, string | null>
  private readonly retentionBytes: number | undefined

  constructor(
    name: string,
    partitions: number,
    configs: ReadonlyMap<string, string | null> = new Map(),
    retentionBytes?: number
  ) {
    this.name = name
    this.retentionBytes = retentionBytes
    this.partitions = Array.from({ length: partitions }, () => new PartitionLog(retentionBytes))
    this.configs = configs
  }

  /** Grows the topic to `count` partitions (CreatePartitions); partitions are never removed. */
  grow(count: number): void {
    while (this.partitions.length < count) this.partitions.push(new PartitionLog(this.retentionBytes))
  }
}

const LEGAL_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/

/** Kafka's rule for topic names: 1–249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`. */
export const isValidTopicName = (name: string): boolean => LEGAL_TOPIC.test(name) && name !== "." && name !== ".."

export class LogStore {
  readonly topics = new Map<string, Topic>()
  private readonly retentionBytes: number | undefined

  /** `retentionBytes` bounds each partition's stored bytes (unbounded when undefined). */
  constructor(retentionBytes?: number) {
    this.retentionBytes = retentionBytes
  }

  get(topic: string): Topic | undefined {
    return this.topics.get(topic)
  }

  partition(topic: string, partition: number): PartitionLog | undefined {
    return this.topics.get(topic)?.partitions[partition]
  }

  create(name: string, partitions: number, configs?: ReadonlyMap<string, string | null>): Topic {
    const topic = new Topic(name, partitions, configs, this.retentionBytes)
    this.topics.set(name, topic)
    return topic
  }

  delete(name: string): boolean {
    return this.topics.delete(name)
  }
}
