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
 *
 * This runs once per message, so it parses no numbers there: offsets stay the
 * decimal strings kafkajs gives (compared by `follows`) and are parsed only
 * for a commit or a seek, and a settlement names its record by the index
 * `add` returned, which finds it without a search.
 */

/**
 * Whether decimal offset `a` comes after `b`. Both are written as kafkajs
 * writes them, without sign or leading zeros, so the longer one is larger.
 */
export const follows = (a: string, b: string): boolean => a.length > b.length || (a.length === b.length && a > b)

export class PartitionTracker {
  // The offsets handed out, ascending, and beside each whether it is settled: two arrays of
  // primitives rather than an object per offset.
  private offsets: Array<string> = []
  private settled: Array<boolean> = []
  /** The index (as `add` numbers them) of `offsets[0]`: entries before it were dropped. */
  private base = 0
  /** Position of the first unsettled entry (or the end). */
  private head = 0
  private unsettledCount = 0
  private last: string | undefined
  private committedOffset: bigint | undefined
  private revoked = false

  /** Records an offset handed out (offsets must increase); the index it answers settles it. */
  add(offset: string): number {
    if (this.last !== undefined && !follows(offset, this.last)) {
      throw new Error(`offset ${offset} handed out after ${this.last}`)
    }
    this.offsets.push(offset)
    this.settled.push(false)
    this.last = offset
    this.unsettledCount++
    return this.base + this.offsets.length - 1
  }

  /** Marks the offset `add` numbered `index` settled. Returns false when it was unknown or already settled. */
  settle(index: number): boolean {
    const at = index - this.base
    // Everything before `head` is settled already.
    if (!(at >= this.head && at < this.settled.length) || this.settled[at]) return false
    this.settled[at] = true
    this.unsettledCount--
    if (at === this.head) this.advance()
    return true
  }

  private advance(): void {
    const settled = this.settled
    let head = this.head
    while (head < settled.length && settled[head]) head++
    // Drop the settled prefix now and then, so memory follows the unsettled window.
    if (head > 1024 && head * 2 > settled.length) {
      this.offsets = this.offsets.slice(head)
      this.settled = settled.slice(head)
      this.base += head
      head = 0
    }
    this.head = head
  }

  /** The offset that says "everything before is done": the first unsettled, or the next after all handed out. */
  commitPoint(): bigint | undefined {
    if (this.head < this.offsets.length) return BigInt(this.offsets[this.head] as string)
    return this.last === undefined ? undefined : BigInt(this.last) + 1n
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

  /** The last offset handed out, if any. */
  get lastOffset(): string | undefined {
    return this.last
  }

  /** Where fetching continues: after the last offset handed out. */
  nextFetch(): bigint | undefined {
    return this.last === undefined ? undefined : BigInt(this.last) + 1n
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
