/**
 * Fault injection: answer the next requests of an API with an error, delay their responses, or
 * close the connection instead of answering (before or after applying the request).
 *
 * @since 0.1.0
 */
import { resolveApiKey } from "./protocol/ApiKey.ts"

export interface KafkaFaults {
  /** Destroys every open client connection now. */
  readonly dropConnections: () => void
  /** The next `count` (default 1) requests of `api` answer with `errorCode` in every error field, unapplied. */
  readonly failNext: (api: string | number, errorCode: number, count?: number) => void
  /** Delays the next `count` (default 1) responses of `api` by `ms`. */
  readonly delayNext: (api: string | number, ms: number, count?: number) => void
  /**
   * Closes the connection instead of answering the next `count` (default 1) requests of `api`;
   * with `applied` the request is carried out first (a lost response), otherwise it is discarded.
   */
  readonly dropNext: (api: string | number, options?: { count?: number; applied?: boolean }) => void
  /** Clears every pending fault. */
  readonly reset: () => void
}

interface Pending<A> {
  readonly value: A
  remaining: number
}

/** One queue of pending faults per API key; each request of that API consumes one. */
class FaultQueue<A> {
  private readonly byKey = new Map<number, Array<Pending<A>>>()

  add(key: number, value: A, count: number): void {
    if (count <= 0) return
    const queue = this.byKey.get(key) ?? []
    queue.push({ value, remaining: count })
    this.byKey.set(key, queue)
  }

  take(key: number): A | undefined {
    const queue = this.byKey.get(key)
    const head = queue?.[0]
    if (head === undefined) return undefined
    head.remaining--
    if (head.remaining <= 0) queue!.shift()
    return head.value
  }

  clear(): void {
    this.byKey.clear()
  }
}

export class Faults {
  readonly failures = new FaultQueue<number>()
  readonly delays = new FaultQueue<number>()
  readonly drops = new FaultQueue<{ readonly applied: boolean }>()

  /** The public face; `dropConnections` is supplied by the server that owns the sockets. */
  api(dropConnections: () => void): KafkaFaults {
    return {
      dropConnections,
      failNext: (api, errorCode, count = 1) => this.failures.add(resolveApiKey(api), errorCode, count),
      delayNext: (api, ms, count = 1) => this.delays.add(resolveApiKey(api), ms, count),
      dropNext: (api, options) =>
        this.drops.add(resolveApiKey(api), { applied: options?.applied ?? false }, options?.count ?? 1),
      reset: () => {
        this.failures.clear()
        this.delays.clear()
        this.drops.clear()
      }
    }
  }
}
