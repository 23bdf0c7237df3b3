/**
 * Fault injection: what the next calls of the emulator get wrong on purpose.
 *
 * @since 0.1.0
 */

/** Faults a test can inject into a running emulator. */
export interface RocketFaults {
  /**
   * The next `count` (default 1) SendMessage calls store their messages but
   * answer with this status code (e.g. `Code.MASTER_PERSISTENCE_TIMEOUT`,
   * `Code.SLAVE_PERSISTENCE_TIMEOUT`, `Code.HA_NOT_AVAILABLE`), or fail with a
   * gRPC `UNAVAILABLE` transport error when `"unavailable"`: in both cases the
   * broker kept the message and only the answer is lost, as with a flush
   * timeout.
   */
  readonly sendStatus: (code: number | "unavailable", count?: number) => void
  /**
   * Ends every open Telemetry stream (clients reconnect and send their
   * settings again). With `{ connections: true }` every pending long-polling
   * ReceiveMessage call also fails with `UNAVAILABLE`.
   */
  readonly dropStreams: (options?: { readonly connections?: boolean }) => void
  /** Delays the next `count` (default 1) responses of `method` ("SendMessage", "ReceiveMessage", "AckMessage", ...) by `ms`. */
  readonly delayNext: (method: string, ms: number, count?: number) => void
  /** Clears every pending fault. */
  readonly reset: () => void
}

/** The fault state the server consults on each call. */
export class Faults implements RocketFaults {
  #send: { code: number | "unavailable"; remaining: number } | undefined
  readonly #delays = new Map<string, { ms: number; remaining: number }>()
  readonly #drop: (connections: boolean) => void

  constructor(drop: (connections: boolean) => void) {
    this.#drop = drop
  }

  readonly sendStatus = (code: number | "unavailable", count = 1): void => {
    this.#send = count > 0 ? { code, remaining: count } : undefined
  }

  readonly dropStreams = (options?: { readonly connections?: boolean }): void => {
    this.#drop(options?.connections === true)
  }

  readonly delayNext = (method: string, ms: number, count = 1): void => {
    if (count > 0) this.#delays.set(normalize(method), { ms, remaining: count })
    else this.#delays.delete(normalize(method))
  }

  readonly reset = (): void => {
    this.#send = undefined
    this.#delays.clear()
  }

  /** The injected outcome of this SendMessage call, if any. */
  takeSendStatus(): number | "unavailable" | undefined {
    const fault = this.#send
    if (fault === undefined) return undefined
    if (--fault.remaining <= 0) this.#send = undefined
    return fault.code
  }

  /** The injected delay (ms) of this call of `method`, 0 when none. */
  takeDelay(method: string): number {
    if (this.#delays.size === 0) return 0
    const key = normalize(method)
    const delay = this.#delays.get(key)
    if (delay === undefined) return 0
    if (--delay.remaining <= 0) this.#delays.delete(key)
    return delay.ms
  }
}

// "SendMessage", "sendMessage" and "send_message" all name the same RPC.
const normalize = (method: string): string => method.replace(/_/g, "").toLowerCase()
