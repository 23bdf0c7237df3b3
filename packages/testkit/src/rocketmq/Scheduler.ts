/**
 * One timer for every deadline of the emulator (invisibility expiry, delayed
 * delivery, transaction check-back, long-polling timeouts): a binary min-heap
 * of due times behind a single `setTimeout`, so a million in-flight messages
 * cost a million heap entries rather than a million timers.
 *
 * @since 0.1.0
 */

/** A scheduled task; `cancel` makes it a no-op without touching the heap. */
export interface Task {
  readonly at: number
  cancel(): void
}

class Entry implements Task {
  readonly at: number
  readonly seq: number
  readonly run: () => void
  cancelled = false

  constructor(at: number, seq: number, run: () => void) {
    this.at = at
    this.seq = seq
    this.run = run
  }

  cancel(): void {
    this.cancelled = true
  }
}

export class Scheduler {
  readonly #heap: Array<Entry> = []
  #seq = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #timerAt = Number.POSITIVE_INFINITY
  #closed = false

  /** Runs `run` at `at` (epoch ms), or on the next tick when that is already past. */
  at(at: number, run: () => void): Task {
    const entry = new Entry(at, this.#seq++, run)
    if (this.#closed) return entry
    this.#push(entry)
    if (at < this.#timerAt) this.#arm()
    return entry
  }

  /** Runs `run` after `ms` milliseconds. */
  after(ms: number, run: () => void): Task {
    return this.at(Date.now() + ms, run)
  }

  /** Drops every pending task; nothing scheduled runs afterwards. */
  close(): void {
    this.#closed = true
    this.#heap.length = 0
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    const head = this.#heap[0]
    if (head === undefined || this.#closed) return
    this.#timerAt = head.at
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, head.at - Date.now()))
    // The emulator must not keep a test process alive on its own.
    this.#timer.unref()
  }

  #fire(): void {
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    const now = Date.now()
    let head = this.#heap[0]
    while (head !== undefined && head.at <= now && !this.#closed) {
      this.#pop()
      if (!head.cancelled) head.run()
      head = this.#heap[0]
    }
    this.#arm()
  }

  #less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq)
  }

  #push(entry: Entry): void {
    const heap = this.#heap
    heap.push(entry)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = heap[parent] as Entry
      if (!this.#less(entry, p)) break
      heap[i] = p
      i = parent
    }
    heap[i] = entry
  }

  #pop(): void {
    const heap = this.#heap
    const last = heap.pop()
    if (last === undefined || heap.length === 0) return
    let i = 0
    const n = heap.length
    for (;;) {
      const left = 2 * i + 1
      if (left >= n) break
      const right = left + 1
      let child = left
      if (right < n && this.#less(heap[right] as Entry, heap[left] as Entry)) child = right
      const c = heap[child] as Entry
      if (!this.#less(c, last)) break
      heap[i] = c
      i = child
    }
    heap[i] = last
  }
}
