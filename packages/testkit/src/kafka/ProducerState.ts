/**
 * Idempotent-producer bookkeeping: producer id allocation and, per (producer id, partition), the
 * current epoch, the last sequence and the last five batches, which is what lets a retried batch
 * be acknowledged with its original offset instead of being stored twice.
 *
 * @since 0.1.0
 */
import { ErrorCode } from "./protocol/ErrorCode.ts"

/** How many recent batches per producer and partition are remembered for duplicate detection (Kafka's value). */
export const RECENT_BATCHES = 5
const INT32_MAX = 0x7fffffff

interface CachedBatch {
  readonly firstSeq: number
  readonly lastSeq: number
  readonly baseOffset: number
}

interface PartitionProducerEntry {
  epoch: number
  lastSeq: number
  readonly recent: Array<CachedBatch>
}

export type SequenceCheck =
  | { readonly _tag: "Append" }
  | { readonly _tag: "Duplicate"; readonly baseOffset: number }
  | { readonly _tag: "Reject"; readonly errorCode: number }

const APPEND: SequenceCheck = { _tag: "Append" }

/** Sequence numbers wrap from INT32_MAX to 0. */
const addSequence = (sequence: number, increment: number): number =>
  sequence > INT32_MAX - increment ? increment - (INT32_MAX - sequence) - 1 : sequence + increment

export class ProducerState {
  private nextProducerId = 1000
  /** Entries by topic, then by producer id and partition. */
  private readonly entries = new Map<string, Map<string, PartitionProducerEntry>>()

  /** A fresh producer id at epoch 0 (idempotent producers without a transactional id always get a new one). */
  allocate(): { readonly producerId: number; readonly producerEpoch: number } {
    return { producerId: this.nextProducerId++, producerEpoch: 0 }
  }

  private static key(producerId: bigint, partition: number): string {
    return `${producerId}:${partition}`
  }

  /** Decides whether a batch is new, a duplicate of a recent one, or must be rejected. */
  check(
    producerId: bigint,
    epoch: number,
    topic: string,
    partition: number,
    firstSeq: number,
    lastOffsetDelta: number
  ): SequenceCheck {
    const entry = this.entries.get(topic)?.get(ProducerState.key(producerId, partition))
    if (entry === undefined) {
      return firstSeq === 0 ? APPEND : { _tag: "Reject", errorCode: ErrorCode.UNKNOWN_PRODUCER_ID }
    }
    if (epoch < entry.epoch) return { _tag: "Reject", errorCode: ErrorCode.INVALID_PRODUCER_EPOCH }
    if (epoch > entry.epoch) {
      return firstSeq === 0 ? APPEND : { _tag: "Reject", errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER }
    }
    const lastSeq = addSequence(firstSeq, lastOffsetDelta)
    const duplicate = entry.recent.find((b) => b.firstSeq === firstSeq && b.lastSeq === lastSeq)
    if (duplicate !== undefined) return { _tag: "Duplicate", baseOffset: duplicate.baseOffset }
    if (firstSeq !== addSequence(entry.lastSeq, 1)) {
      return { _tag: "Reject", errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER }
    }
    return APPEND
  }

  /** Records an appended batch; call only after `check` answered Append. */
  record(
    producerId: bigint,
    epoch: number,
    topic: string,
    partition: number,
    firstSeq: number,
    lastOffsetDelta: number,
    baseOffset: number
  ): void {
    const key = ProducerState.key(producerId, partition)
    let byProducer = this.entries.get(topic)
    if (byProducer === undefined) {
      byProducer = new Map()
      this.entries.set(topic, byProducer)
    }
    let entry = byProducer.get(key)
    if (entry === undefined || entry.epoch !== epoch) {
      entry = { epoch, lastSeq: -1, recent: [] }
      byProducer.set(key, entry)
    }
    const lastSeq = addSequence(firstSeq, lastOffsetDelta)
    entry.lastSeq = lastSeq
    entry.recent.push({ firstSeq, lastSeq, baseOffset })
    if (entry.recent.length > RECENT_BATCHES) entry.recent.shift()
  }

  /** Forgets a deleted topic's producer state. */
  forgetTopic(topic: string): void {
    this.entries.delete(topic)
  }
}
