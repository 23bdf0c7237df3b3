/**
 * One timer for all delayed work of a broker: a min-heap of due times served
 * by a single fiber, instead of a fiber or a timer per delayed message. It
 * sleeps on the Effect clock, so `TestClock` drives it in tests.
 */
import { Clock, Effect, Queue, type Scope } from "effect"

interface Timer {
  readonly due: number
  readonly seq: number
  readonly run: () => void
}

const before = (a: Timer, b: Timer): boolean => a.due < b.due || (a.due === b.due && a.seq < b.seq)

export class Timers {
  private readonly heap: Array<Timer> = []
  private seq = 0
  private readonly wake: Queue.Queue<void>

  private constructor(wake: Queue.Queue<void>) {
    this.wake = wake
  }

  /** Starts the timer fiber in the current scope. */
  static readonly make: Effect.Effect<Timers, never, Scope.Scope> = Effect.gen(function* () {
    const wake = yield* Queue.sliding<void>(1)
    const timers = new Timers(wake)
    yield* Effect.forkScoped(timers.loop)
    return timers
  })

  get size(): number {
    return this.heap.length
  }

  /** Runs `run` (synchronously, inside the timer fiber) once the clock reaches `due`. */
  schedule(due: number, run: () => void): void {
    const timer: Timer = { due, seq: this.seq++, run }
    const heap = this.heap
    heap.push(timer)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(heap[i] as Timer, heap[parent] as Timer)) break
      ;[heap[i], heap[parent]] = [heap[parent] as Timer, heap[i] as Timer]
      i = parent
    }
    if (i === 0) Queue.offerUnsafe(this.wake, undefined)
  }

  private pop(): Timer | undefined {
    const heap = this.heap
    const top = heap[0]
    const last = heap.pop()
    if (top === undefined || last === undefined || heap.length === 0) return top
    heap[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < heap.length && before(heap[l] as Timer, heap[m] as Timer)) m = l
      if (r < heap.length && before(heap[r] as Timer, heap[m] as Timer)) m = r
      if (m === i) break
      ;[heap[i], heap[m]] = [heap[m] as Timer, heap[i] as Timer]
      i = m
    }
    return top
  }

  private get loop(): Effect.Effect<never> {
    const timers = this
    return Effect.forever(
      Effect.gen(function* () {
        const next = timers.heap[0]
        if (next === undefined) {
          yield* Queue.take(timers.wake)
          return
        }
        const now = yield* Clock.currentTimeMillis
        if (next.due > now) {
          // A newly scheduled earlier timer wakes the fiber before the sleep ends.
          yield* Effect.raceFirst(Effect.sleep(next.due - now), Queue.take(timers.wake))
          return
        }
        while (timers.heap[0] !== undefined && (timers.heap[0] as Timer).due <= now) {
          timers.pop()?.run()
        }
      })
    )
  }
}
