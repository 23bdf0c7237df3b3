/**
 * Which offset of a partition may be committed when deliveries settle out of
 * order.
 *
 * Kafka keeps one position per partition and group: committing offset `n`
 * says every record before `n` is done. Handlers finish in any order, so the
 * tracker remembers the offsets handed out, in order, and which of them are
 * settled; the offset to commit is the first one still unsettled, or the one
 * after the last handed out when all are settled. Offsets need not be
 * contiguous (compaction, transaction markers): only offsets handed out count.
 */

interface Slot {
  readonly offset: bigint
  settled: boolean
}

export class PartitionTracker {
  private readonly slots: Array<Slot> = []
  private head = 0
  private unsettledCount = 0
  private last: bigint | undefined
  private committedOffset: bigint | undefined
  private revoked = false

  /** Records an offset handed out; offsets must increase. */
  add(offset: bigint): void {
    if (this.last !== undefined && offset <= this.last) {
      throw new Error(`offset ${offset} handed out after ${this.last}`)
    }
    this.slots.push({ offset, settled: false })
    this.last = offset
    this.unsettledCount++
  }

  /** Marks a handed-out offset settled. Returns false when it was unknown or already settled. */
  settle(offset: bigint): boolean {
    // Offsets are ascending: binary search over the unsettled window.
    let lo = this.head
    let hi = this.slots.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const slot = this.slots[mid] as Slot
      if (slot.offset < offset) lo = mid + 1
      else if (slot.offset > offset) hi = mid - 1
      else {
        if (slot.settled) return false
        slot.settled = true
        this.unsettledCount--
        this.advance()
        return true
      }
    }
    return false
  }

  private advance(): void {
    while (this.head < this.slots.length && (this.slots[this.head] as Slot).settled) this.head++
    // Drop the settled prefix now and then, so memory follows the unsettled window.
    if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots.splice(0, this.head)
      this.head = 0
    }
  }

  /** The offset that says "everything before is done": the first unsettled, or the next after all handed out. */
  commitPoint(): bigint | undefined {
    if (this.head < this.slots.length) return (this.slots[this.head] as Slot).offset
    return this.last === undefined ? undefined : this.last + 1n
  }

  /** The offset to commit now, when it moved past the last commit. */
  pendingCommit(): bigint | undefined {
    const point = this.commitPoint()
    if (point === undefined) return undefined
    return this.committedOffset === undefined || point > this.committedOffset ? point : undefined
  }

  /** Records that `offset` was committed. */
  committed(offset: bigint): void {
    if (this.committedOffset === undefined || offset > this.committedOffset) this.committedOffset = offset
  }

  /** Where fetching continues: after the last offset handed out. */
  nextFetch(): bigint | undefined {
    return this.last === undefined ? undefined : this.last + 1n
  }

  /** Deliveries handed out and not yet settled. */
  unsettled(): number {
    return this.unsettledCount
  }

  /** The partition went to another member: nothing of it may be settled or committed any more. */
  revoke(): number {
    const dropped = this.revoked ? 0 : this.unsettledCount
    this.revoked = true
    return dropped
  }

  get active(): boolean {
    return !this.revoked
  }
}
