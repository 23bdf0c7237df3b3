/**
 * Half (transactional) messages: stored invisible until the producer ends the
 * transaction. COMMIT makes the message deliverable, ROLLBACK discards it.
 * A half message still undecided after the check interval is an orphan: the
 * broker asks a producer of its topic to resolve it (a
 * `RecoverOrphanedTransactionCommand` over the telemetry stream), once per
 * interval, and discards it after the maximum number of checks.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import type { Scheduler, Task } from "./Scheduler.ts"
import type { IncomingMessage, Topics } from "./Topics.ts"

/** A half message waiting for its producer's decision. */
export interface HalfMessage {
  readonly message: IncomingMessage
  readonly transactionId: string
  /** The client that sent it, asked first when the broker checks back. */
  readonly producerId: string | undefined
  /** The namespace it was sent in, to show the producer its plain topic. */
  readonly namespace: string
  checks: number
  task: Task | undefined
}

export type Resolution = "commit" | "rollback"

/** The answer to an EndTransaction request. */
export type EndResult =
  | { readonly _tag: "ok" }
  | { readonly _tag: "unknown"; readonly reason: string }
  | { readonly _tag: "mismatch"; readonly reason: string }

export interface TransactionsOptions {
  readonly checkIntervalMs: number
  readonly maxChecks: number
  /** Sends a check-back command for the half message to a capable producer. */
  readonly check: (half: HalfMessage) => void
}

export class Transactions {
  readonly #half = new Map<string, HalfMessage>()
  /** How finished transactions ended, so a repeated decision is answered consistently. */
  readonly #ended = new Map<string, Resolution | "discarded">()
  readonly #topics: Topics
  readonly #scheduler: Scheduler
  readonly #options: TransactionsOptions

  constructor(topics: Topics, scheduler: Scheduler, options: TransactionsOptions) {
    this.#topics = topics
    this.#scheduler = scheduler
    this.#options = options
  }

  /** Stores a half message and returns its transaction id. */
  prepare(message: IncomingMessage, producerId: string | undefined, namespace: string): string {
    const transactionId = randomBytes(12).toString("hex").toUpperCase()
    const half: HalfMessage = { message, transactionId, producerId, namespace, checks: 0, task: undefined }
    this.#half.set(message.messageId, half)
    this.#schedule(half)
    return transactionId
  }

  /** Commits or rolls back the half message `messageId` of transaction `transactionId`. */
  end(messageId: string, transactionId: string, resolution: Resolution): EndResult {
    const half = this.#half.get(messageId)
    if (half === undefined) {
      const ended = this.#ended.get(messageId)
      if (ended === resolution) return { _tag: "ok" }
      return {
        _tag: "unknown",
        reason:
          ended === undefined
            ? `no half message ${messageId}`
            : `transaction of message ${messageId} already ended (${ended})`
      }
    }
    if (half.transactionId !== transactionId) {
      return { _tag: "mismatch", reason: `transaction id ${transactionId} does not match message ${messageId}` }
    }
    this.#finish(half, resolution)
    if (resolution === "commit") this.#topics.append(half.message)
    return { _tag: "ok" }
  }

  pending(): ReadonlyArray<{ messageId: string; topic: string; checks: number }> {
    return [...this.#half.values()].map((half) => ({
      messageId: half.message.messageId,
      topic: half.message.topic,
      checks: half.checks
    }))
  }

  clear(): void {
    for (const half of this.#half.values()) half.task?.cancel()
    this.#half.clear()
    this.#ended.clear()
  }

  #schedule(half: HalfMessage): void {
    half.task = this.#scheduler.after(this.#options.checkIntervalMs, () => {
      if (this.#half.get(half.message.messageId) !== half) return
      if (half.checks >= this.#options.maxChecks) {
        // Nobody resolved it in time: the broker gives up and rolls it back.
        this.#finish(half, "discarded")
        return
      }
      half.checks++
      this.#schedule(half)
      this.#options.check(half)
    })
  }

  #finish(half: HalfMessage, how: Resolution | "discarded"): void {
    half.task?.cancel()
    this.#half.delete(half.message.messageId)
    this.#ended.set(half.message.messageId, how)
  }
}
