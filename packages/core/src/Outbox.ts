/**
 * The transactional outbox (local message table): a send that is stored in
 * the application's own database, in the same transaction as its business
 * writes, and published afterwards by the relay.
 *
 * A row goes `pending → sent`; a failed publish makes it `failed` with the
 * error and the time of its next attempt, then `sent`; after the last attempt
 * it is `parked` for a human (or the cli) to re-drive. Half messages start as
 * `prepared`, invisible to the relay, until committed (→ `pending`) or rolled
 * back (deleted).
 *
 * A store claims rows for a lease, so a relay that dies mid-batch leaves them
 * to be claimed again: a message can be published twice (dedupe removes the
 * duplicate), never lost. A row is claimable only when every older unsent row
 * with the same key is claimed in the same batch, so per-key order survives
 * retries, several relays and a relay with several batches in flight (a row
 * stays claimed until its mark is written). (Within one batch, a broker that confirms a
 * later message of a key but fails an earlier one breaks that key's order;
 * brokers fail whole batches on connection loss, which keeps it.)
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Queue, Semaphore, Stream } from "effect"
import type { Envelope } from "./Envelope.ts"
import type { StoreUnavailable } from "./Errors.ts"

export type Status = "prepared" | "pending" | "failed" | "sent" | "parked"

/** One row of the outbox. */
export interface Row {
  readonly envelope: Envelope
  readonly status: Status
  /** Publish attempts made (or check-backs asked, for a prepared row). */
  readonly attempts: number
  readonly lastError: string | undefined
  /** Epoch milliseconds before which the relay leaves the row alone. */
  readonly nextAttemptAt: number
  readonly createdAt: number
}

/** A claimed row: the relay holds it until `markSent` / `markFailed` or the lease ends. */
export interface Claimed {
  readonly envelope: Envelope
  readonly attempts: number
  /** Proves the claim to the mark operations; a stale claim's marks are ignored. */
  readonly claim: string
}

/**
 * Rows a store claimed for a relay of its own process as it stored them, and
 * handed over once their transaction committed (see `OutboxStore.handoffs`).
 */
export interface Handoff {
  readonly rows: ReadonlyArray<Claimed>
  /** When the claim began (epoch milliseconds): its lease ends no earlier than this plus the lease. */
  readonly claimedAt: number
}

/** The outcome of a failed publish attempt for one row. */
export interface Failure {
  readonly id: string
  readonly claim: string
  readonly error: string
  /** When to try again; `undefined` parks the row. */
  readonly retryAt: number | undefined
}

/** Counts per status and the age of the oldest unsent row. */
export interface Stats {
  readonly prepared: number
  readonly pending: number
  readonly failed: number
  readonly sent: number
  readonly parked: number
  /** Epoch milliseconds of the oldest pending or failed row. */
  readonly oldestUnsentAt: number | undefined
}

/**
 * Where outbox rows live. A SQL store joins the caller's transaction in
 * `add`; every other operation is its own transaction.
 */
export interface OutboxStore {
  readonly name: string
  /** Stores envelopes (`pending`, or `prepared` for half messages). */
  readonly add: (
    envelopes: ReadonlyArray<Envelope>,
    status: "pending" | "prepared"
  ) => Effect.Effect<void, StoreUnavailable>
  /** Claims up to `limit` due pending or failed rows, oldest first, for `lease`; per-key order is kept. */
  readonly claim: (limit: number, lease: Duration.Duration) => Effect.Effect<ReadonlyArray<Claimed>, StoreUnavailable>
  /**
   * Marks rows the broker confirmed `sent`. The rows may come from several
   * claims (a pipelined relay merges the marks of the batches confirmed
   * meanwhile); each is marked only while its own claim still holds it.
   */
  readonly markSent: (
    rows: ReadonlyArray<{ readonly id: string; readonly claim: string }>
  ) => Effect.Effect<void, StoreUnavailable>
  /** Records failed attempts (`failed` until `retryAt`, or `parked`); like `markSent`, across claims. */
  readonly markFailed: (failures: ReadonlyArray<Failure>) => Effect.Effect<void, StoreUnavailable>
  /** A prepared row becomes pending; `false` if it is not prepared (decided before, or unknown). */
  readonly commit: (id: string) => Effect.Effect<boolean, StoreUnavailable>
  /** A prepared row is removed; `false` if it is not prepared. */
  readonly rollback: (id: string) => Effect.Effect<boolean, StoreUnavailable>
  /** Claims prepared rows created before `olderThan` whose next check is due. */
  readonly claimUndecided: (
    olderThan: number,
    limit: number,
    lease: Duration.Duration
  ) => Effect.Effect<ReadonlyArray<Claimed>, StoreUnavailable>
  /** Records an undecided check-back: check again at `retryAt`, or park when `undefined`. */
  readonly markUndecided: (
    id: string,
    claim: string,
    retryAt: number | undefined,
    reason: string
  ) => Effect.Effect<void, StoreUnavailable>
  /** Signals that new rows may be ready (a write committed here or elsewhere). */
  readonly wakeups: Stream.Stream<void>
  /**
   * Optional: a relay in the store's own process subscribes by running the
   * stream. While it runs, `add` claims the pending rows of a batch in the
   * same INSERT, for `lease`, and the stream emits them once their
   * transaction commits, so the relay publishes them without claiming them
   * first (no claim round trip, no reading the rows back). A rolled-back
   * transaction hands over nothing. A batch that has a key in it, or more
   * than `maxRows` rows, is stored unclaimed as usual, since the claim is
   * what keeps per-key order. Rows the subscriber cannot take at once, or
   * that are still waiting when it stops, are released to be claimed as usual;
   * rows of a relay that dies are claimed again when their lease ends, like
   * any claimed row.
   */
  readonly handoffs?:
    | ((options: { readonly lease: Duration.Duration; readonly maxRows: number }) => Stream.Stream<Handoff>)
    | undefined
  readonly stats: Effect.Effect<Stats, StoreUnavailable>
  /** Rows by status, oldest first (operations). */
  readonly list: (status: Status, limit: number) => Effect.Effect<ReadonlyArray<Row>, StoreUnavailable>
  /** Makes a parked or failed row pending again, due now (operations). */
  readonly retry: (id: string) => Effect.Effect<boolean, StoreUnavailable>
}

const toRow = ({ envelope, status, attempts, lastError, nextAttemptAt, createdAt }: MemoryRow): Row => ({
  envelope,
  status,
  attempts,
  lastError,
  nextAttemptAt,
  createdAt
})

interface MemoryRow {
  envelope: Envelope
  status: Status
  attempts: number
  lastError: string | undefined
  nextAttemptAt: number
  createdAt: number
  claim: string | undefined
  claimedUntil: number
  seq: number
}

/**
 * An outbox in process memory, for tests and the memory transport. It has no
 * transaction to join and does not survive the process: use a SQL store for
 * anything durable.
 */
export const memoryStore: Effect.Effect<OutboxStore & { readonly rows: () => ReadonlyArray<Row> }> = Effect.gen(
  function* () {
    const rows = new Map<string, MemoryRow>()
    const lock = yield* Semaphore.make(1)
    const signal = yield* Queue.sliding<void>(1)
    let seq = 0
    let claims = 0
    const atomically = <A>(f: (now: number) => A) =>
      Semaphore.withPermit(
        lock,
        Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => f(now)))
      )
    const unsent = (r: MemoryRow) => r.status === "pending" || r.status === "failed"
    const ordered = () => [...rows.values()].sort((a, b) => a.seq - b.seq)
    const take = (r: MemoryRow, now: number, lease: Duration.Duration): Claimed => {
      r.claim = `c${++claims}`
      r.claimedUntil = now + Duration.toMillis(lease)
      return { envelope: r.envelope, attempts: r.attempts, claim: r.claim }
    }
    const held = (id: string, claim: string) => {
      const r = rows.get(id)
      return r !== undefined && r.claim === claim ? r : undefined
    }
    const store: OutboxStore = {
      name: "memory",
      add: (envelopes, status) =>
        Effect.andThen(
          atomically((now) => {
            for (const envelope of envelopes) {
              if (rows.has(envelope.id)) continue
              rows.set(envelope.id, {
                envelope,
                status,
                attempts: 0,
                lastError: undefined,
                nextAttemptAt: now,
                createdAt: now,
                claim: undefined,
                claimedUntil: 0,
                seq: seq++
              })
            }
          }),
          Queue.offer(signal, undefined)
        ),
      claim: (limit, lease) =>
        atomically((now) => {
          const out: Array<Claimed> = []
          const blockedKeys = new Set<string>()
          for (const r of ordered()) {
            if (!unsent(r)) continue
            const key = r.envelope.key
            if (key !== undefined && blockedKeys.has(key)) continue
            const free = r.nextAttemptAt <= now && r.claimedUntil <= now && out.length < limit
            // A row left behind blocks the later rows of its key; rows taken together stay in order.
            if (free) out.push(take(r, now, lease))
            else if (key !== undefined) blockedKeys.add(key)
          }
          return out
        }),
      markSent: (sent) =>
        atomically(() => {
          for (const { id, claim } of sent) {
            const r = held(id, claim)
            if (r !== undefined) {
              r.status = "sent"
              r.attempts++
              r.claim = undefined
            }
          }
        }),
      markFailed: (failures) =>
        atomically(() => {
          for (const f of failures) {
            const r = held(f.id, f.claim)
            if (r === undefined) continue
            r.attempts++
            r.lastError = f.error
            r.claim = undefined
            r.claimedUntil = 0
            if (f.retryAt === undefined) r.status = "parked"
            else {
              r.status = "failed"
              r.nextAttemptAt = f.retryAt
            }
          }
        }),
      commit: (id) =>
        Effect.tap(
          atomically((now) => {
            const r = rows.get(id)
            if (r?.status !== "prepared") return false
            r.status = "pending"
            r.attempts = 0
            r.nextAttemptAt = now
            r.claim = undefined
            r.claimedUntil = 0
            return true
          }),
          (committed) => (committed ? Queue.offer(signal, undefined) : Effect.void)
        ),
      rollback: (id) =>
        atomically(() => {
          const r = rows.get(id)
          if (r?.status !== "prepared") return false
          rows.delete(id)
          return true
        }),
      claimUndecided: (olderThan, limit, lease) =>
        atomically((now) => {
          const out: Array<Claimed> = []
          for (const r of ordered()) {
            if (out.length >= limit) break
            if (r.status === "prepared" && r.createdAt < olderThan && r.nextAttemptAt <= now && r.claimedUntil <= now) {
              out.push(take(r, now, lease))
            }
          }
          return out
        }),
      markUndecided: (id, claim, retryAt, reason) =>
        atomically(() => {
          const r = held(id, claim)
          if (r === undefined || r.status !== "prepared") return
          r.attempts++
          r.lastError = reason
          r.claim = undefined
          r.claimedUntil = 0
          if (retryAt === undefined) r.status = "parked"
          else r.nextAttemptAt = retryAt
        }),
      wakeups: Stream.fromQueue(signal),
      stats: atomically(() => {
        const stats = {
          prepared: 0,
          pending: 0,
          failed: 0,
          sent: 0,
          parked: 0,
          oldestUnsentAt: undefined as number | undefined
        }
        for (const r of rows.values()) {
          stats[r.status]++
          if (unsent(r) && (stats.oldestUnsentAt === undefined || r.createdAt < stats.oldestUnsentAt)) {
            stats.oldestUnsentAt = r.createdAt
          }
        }
        return stats
      }),
      list: (status, limit) =>
        atomically(() =>
          ordered()
            .filter((r) => r.status === status)
            .slice(0, limit)
            .map(toRow)
        ),
      retry: (id) =>
        Effect.tap(
          atomically((now) => {
            const r = rows.get(id)
            if (r === undefined || (r.status !== "parked" && r.status !== "failed")) return false
            r.status = "pending"
            r.nextAttemptAt = now
            return true
          }),
          (changed) => (changed ? Queue.offer(signal, undefined) : Effect.void)
        )
    }
    return {
      ...store,
      rows: () => ordered().map(toRow)
    }
  }
)
