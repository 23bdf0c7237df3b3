/**
 * The outbox in a SQL table, on PostgreSQL or SQLite: core's `OutboxStore`
 * with the semantics of its memory store, made durable and shared by every
 * process on the database.
 *
 * **Joining the caller's transaction.** `add` runs its INSERT on whatever
 * transaction of the same `SqlClient` is open in the calling fiber, so
 * `sql.withTransaction(insertOrder.pipe(Effect.andThen(Publisher.send(...))))`
 * with an outbox publisher stores the order and the message atomically: both
 * or neither. Every other operation is a statement of its own.
 *
 * **Claims.** A relay claims due rows for a lease with a token; marks with a
 * stale token (the lease ran out and another relay re-claimed) are ignored.
 * Per-key order: a row is claimable only when every older unsent row with the
 * same key is claimed in the same batch. On PostgreSQL several relays claim
 * at once: `FOR UPDATE SKIP LOCKED` keeps them off each other's rows, and a
 * second check in the same statement drops any row whose older same-key row
 * another relay is claiming at that moment (see `claimPg`). On SQLite the
 * claim is one UPDATE, which holds the database's write lock from its first
 * read to its last write, so claims never interleave.
 *
 * **Batches.** On PostgreSQL `add` passes each column of a batch as one
 * array parameter and `markSent` the (id, claim) pairs of any number of
 * claims as two: one statement of fixed text per batch, prepared once per
 * connection, instead of a parameter (and a longer statement) per row.
 * SQLite, in process and without arrays, takes a row of parameters each.
 *
 * **Time.** Every time (due, lease, created) is epoch milliseconds from the
 * Effect `Clock` of the caller, the clock the relay computes retry and
 * check-back times with, so tests can drive it with `TestClock`. Relays on
 * several hosts need synchronized clocks (NTP); keep leases far above the
 * skew.
 *
 * **Wake-ups.** On PostgreSQL `add`, `commit` and `retry` send a NOTIFY on
 * the outbox table's name inside their statement, so it is delivered when
 * the transaction commits and never for one rolled back; `wakeups` LISTENs
 * on one pooled connection (re-listening after a lost connection). On SQLite
 * (or with `notify: false`) the signal is in-process, sent after the
 * outermost transaction commits; writes by other processes are found by the
 * relay's sweep.
 *
 * **Hand-off.** While a relay of this process runs `handoffs`, a batch of
 * pending rows without keys (a `sendBatch` inside a transaction, say) is
 * claimed for it in its INSERT and handed to it when the outermost
 * transaction commits: the relay publishes the rows without claiming and
 * reading them back, and no NOTIFY is sent for them. A rolled-back
 * transaction hands over nothing and leaves no row. A relay that has fallen
 * behind (`handoffBacklog` batches waiting) gets no more until it catches
 * up; rows it cannot take, or has not taken when it stops, are released
 * (claimable at once, with a wake-up), and those of a process that dies are
 * claimed by any relay when their lease ends.
 *
 * @since 0.1.0
 */
import { type Envelope, MessageId, type Outbox, StoreUnavailable } from "@lossless/core"
import { Array as Arr, Clock, Duration, Effect, PubSub, Queue, Schedule, type Scope, Stream } from "effect"
import { SqlClient, type SqlError, type Statement } from "effect/sql"
import { type Dialect, dialectOf } from "./internal/dialect.ts"
import { orUnavailable } from "./internal/transaction.ts"
import * as OutboxSchema from "./OutboxSchema.ts"

export interface SqlOutboxStoreOptions {
  /** Checked against the client's dialect; read from the client when left out. */
  readonly dialect?: Dialect | undefined
  /** Table names; `lossless_outbox` by default. */
  readonly tables?: Partial<OutboxSchema.Tables> | undefined
  /**
   * PostgreSQL only: NOTIFY relays on new rows, and LISTEN in `wakeups`.
   * NOTIFY takes a database-wide lock at commit for a moment; at thousands of
   * commits a second turn it off and let relays sweep often instead.
   * @default true
   */
  readonly notify?: boolean | undefined
}

/** An outbox store over SQL, with operations beyond core's interface. */
export interface SqlOutboxStore extends Outbox.OutboxStore {
  readonly dialect: Dialect
  readonly tables: OutboxSchema.Tables
  /**
   * Deletes up to `limit` rows sent before `before` (epoch milliseconds),
   * oldest first; returns how many. Sent rows are kept until purged.
   */
  readonly purgeSent: (before: number, limit?: number) => Effect.Effect<number, StoreUnavailable>
}

/** Committed batches a relay may have waiting to be taken before rows go the usual way instead. */
const handoffBacklog = 16

/** A claim made in an INSERT: its token and the end of its lease (epoch milliseconds). */
type Claim = { readonly token: string; readonly until: number }

/** A relay of this process taking rows as their transactions commit. */
interface HandoffTaker {
  readonly queue: Queue.Queue<Outbox.Handoff>
  readonly leaseMillis: number
  readonly maxRows: number
  /** Cleared when the relay stops, before its queue is emptied: nothing is handed to it afterwards. */
  open: boolean
}

/** Rows per INSERT or UPDATE: far below either database's parameter limit. */
const chunkSize = 500

/** Rows per PostgreSQL mark: two array parameters whatever the count, so only the statement's size bounds it. */
const markChunkPg = 10_000

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<Arr.NonEmptyReadonlyArray<A>> => {
  const out: Array<Arr.NonEmptyReadonlyArray<A>> = []
  // Each slice starts below `items.length`: never empty.
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size) as unknown as Arr.NonEmptyArray<A>)
  return out
}

/** Integers come back as `bigint` from PostgreSQL's BIGINT and as `number` from SQLite. */
type Int = number | bigint

interface RowRecord {
  readonly seq: Int
  readonly id: string
  readonly topic: string
  readonly key: string | null
  readonly payload: Uint8Array
  readonly headers: string
  readonly timestamp: Int
  readonly deliver_at: Int | null
  readonly status: Outbox.Status
  readonly attempts: Int
  readonly last_error: string | null
  readonly next_attempt_at: Int
  readonly created_at: Int
}

type ClaimedRecord = Pick<
  RowRecord,
  "seq" | "id" | "topic" | "key" | "payload" | "headers" | "timestamp" | "deliver_at" | "attempts"
>

const headersOf = (row: { readonly id: string; readonly headers: string }): Record<string, string> => {
  const parsed: unknown = JSON.parse(row.headers)
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new TypeError(`outbox row ${row.id} has malformed headers`)
  }
  return parsed as Record<string, string>
}

/**
 * What decoding a claimed row reads. PostgreSQL's claim returns its rows in
 * `seq` order and without it, times as `float8` (no `bigint` to make per row).
 */
type OrderedClaimedRecord = Omit<ClaimedRecord, "seq">

const envelopeOf = (row: OrderedClaimedRecord): Envelope.Envelope => ({
  id: row.id,
  topic: row.topic,
  key: row.key ?? undefined,
  payload: row.payload,
  headers: headersOf(row),
  timestamp: Number(row.timestamp),
  deliverAt: row.deliver_at === null ? undefined : Number(row.deliver_at)
})

/** `RETURNING` order is unspecified on both databases; a batch goes out in `seq` order. */
const bySeq = <A extends { readonly seq: Int }>(rows: ReadonlyArray<A>): Array<A> =>
  [...rows].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0))

/** Reconnects LISTEN after a lost connection: 100 ms doubling, capped at 30 s, forever. */
const relisten = Schedule.min([Schedule.exponential("100 millis", 2), Schedule.spaced("30 seconds")])

/** The shape of `PgClient.listen` this store uses. */
type Listen = (
  channel: string
) => Effect.Effect<Queue.Dequeue<unknown, SqlError.SqlError>, SqlError.SqlError, Scope.Scope>

/** `PgClient.listen`, when the client is `@effect/sql-pg`'s (looked up by shape, so SQLite users never load it). */
const listenOf = (sql: SqlClient.SqlClient): Listen | undefined => {
  const candidate = (sql as { readonly listen?: unknown }).listen
  return typeof candidate === "function" ? (candidate.bind(sql) as Listen) : undefined
}

/**
 * Builds the store over the current `SqlClient`. The tables must exist:
 * run `OutboxSchema.migrate` first (the `SqlOutbox` layers do).
 */
export const make = (options: SqlOutboxStoreOptions = {}): Effect.Effect<SqlOutboxStore, never, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const dialect = yield* dialectOf(sql, options.dialect)
    const tables = OutboxSchema.resolve(options.tables)
    const pg = dialect === "pg"
    const name = `${dialect} ${tables.outbox}`
    const table = sql(tables.outbox)
    const channel = tables.outbox
    const listen = pg && (options.notify ?? true) ? listenOf(sql) : undefined
    // Without LISTEN, wake-ups are in-process: every relay stream gets each one, and a
    // relay that subscribes late still gets the last (replay), so none is lost in between.
    const signal = yield* PubSub.sliding<void>({ capacity: 1, replay: 1 })
    const wakeLocal =
      listen === undefined ? sql.afterCommit(Effect.asVoid(PubSub.publish(signal, undefined))) : Effect.void
    const notifying = listen !== undefined
    const lift = orUnavailable(name)

    /** Runs several statements as one unit (a savepoint inside the caller's transaction). */
    const atomically = (
      statements: ReadonlyArray<Effect.Effect<unknown, SqlError.SqlError>>
    ): Effect.Effect<void, SqlError.SqlError> =>
      statements.length === 1
        ? Effect.asVoid(statements[0] as Effect.Effect<unknown, SqlError.SqlError>)
        : sql.withTransaction(Effect.forEach(statements, (s) => s, { discard: true }))

    // A row this store cannot read back (edited by hand) stops the relay with an error it logs, not a defect.
    const decode = <A>(f: () => A): Effect.Effect<A, StoreUnavailable> =>
      Effect.try({ try: f, catch: (cause) => new StoreUnavailable({ store: name, reason: String(cause) }) })

    const claimedOf =
      (claim: string) =>
      (rows: ReadonlyArray<OrderedClaimedRecord>): Effect.Effect<ReadonlyArray<Outbox.Claimed>, StoreUnavailable> =>
        decode(() => rows.map((row) => ({ envelope: envelopeOf(row), attempts: Number(row.attempts), claim })))

    const claimedColumns = "seq, id, topic, key, payload, headers, timestamp, deliver_at, attempts"
    // PostgreSQL's claim joins other relations with the same column names; SQLite refuses qualified names here.
    const returning = sql.literal(pg ? claimedColumns.replace(/(\w+)/g, "o.$1") : claimedColumns)

    // `RETURNING` order is unspecified: PostgreSQL's claim sorts in the statement (the others with `bySeq`).
    const orderedColumns = sql.literal(
      "id, topic, key, payload, headers, timestamp::float8 AS timestamp, deliver_at::float8 AS deliver_at, attempts"
    )

    const unsent = sql.literal("('pending', 'failed')")

    /**
     * PostgreSQL claim, one statement, safe with any number of relays.
     *
     * `candidates` are the first `limit` rows, by `seq`, that are due and
     * unclaimed and whose older same-key unsent rows are all due and
     * unclaimed too (the exact rule when nobody else is claiming). They are
     * locked `FOR UPDATE SKIP LOCKED`, so a row another relay is claiming
     * right now is skipped instead of waited for.
     *
     * Skipping is where order could break: relay A is claiming rows 1-2 of
     * key k, not yet committed; relay B's snapshot still shows them free, so
     * row 3 of k passes B's first filter while rows 1-2 are skipped. So a
     * candidate is kept only when every older unsent row of its key is among
     * B's own candidates: `blockers` finds, per key, the oldest unsent row
     * older than the key's last candidate that B does not hold, and only
     * candidates before it are claimed, which drops row 3. A row that B's
     * snapshot shows unsent but that was sent meanwhile may hold a key back
     * for one cycle; never the other way round.
     *
     * `MATERIALIZED` makes the locking CTE run once, as every reference
     * needs the same set. `OFFSET 0` keeps the per-key check a per-row probe
     * of the `(key, seq)` index: flattened into an anti-join, PostgreSQL may
     * rescan every unsent row for each candidate when the table's statistics
     * are stale, as they are right after a burst of inserts.
     *
     * The scan itself must walk the `unsent` index in `seq` order and stop
     * after `limit` rows. Told the limit, and with statistics that show few
     * unsent rows (a table never analyzed, or analyzed while empty, before a
     * burst), PostgreSQL prefers reading every unsent row (and every index
     * entry of rows sent since the last vacuum) and sorting them: the whole
     * backlog on every claim. The limit is therefore a subquery, whose value
     * the planner does not see: planning for an unknown limit, it takes the
     * ordered index scan that stops early.
     */
    const claimPg = (now: number, until: number, limit: number, token: string) =>
      sql<OrderedClaimedRecord>`
        WITH candidates AS MATERIALIZED (
          SELECT c.id, c.key, c.seq FROM ${table} c
          WHERE c.status IN ${unsent} AND c.next_attempt_at <= ${now} AND c.claimed_until <= ${now}
            AND (c.key IS NULL OR NOT EXISTS (
              SELECT 1 FROM ${table} b
              WHERE b.key = c.key AND b.seq < c.seq AND b.status IN ${unsent}
                AND (b.next_attempt_at > ${now} OR b.claimed_until > ${now})
              OFFSET 0))
          ORDER BY c.seq
          LIMIT (SELECT ${limit}::int)
          FOR UPDATE OF c SKIP LOCKED
        ),
        blockers AS MATERIALIZED (
          SELECT l.key, (
            SELECT MIN(b.seq) FROM ${table} b
            WHERE b.key = l.key AND b.seq < l.seq AND b.status IN ${unsent}
              AND b.id NOT IN (SELECT id FROM candidates)) AS seq
          FROM (SELECT key, MAX(seq) AS seq FROM candidates WHERE key IS NOT NULL GROUP BY key) l
        ),
        claimed AS (
          UPDATE ${table} o SET claim = ${token}, claimed_until = ${until}
          FROM candidates c LEFT JOIN blockers x ON x.key = c.key
          WHERE o.id = c.id AND (x.seq IS NULL OR c.seq < x.seq)
          RETURNING ${returning}
        )
        SELECT ${orderedColumns} FROM claimed ORDER BY seq`

    /**
     * SQLite claim: the same rule in one UPDATE. A writing statement takes the
     * database's write lock before it reads (waiting up to the busy timeout
     * for another process), so what it reads is what it updates: no claim of
     * another connection can interleave, and no explicit transaction is needed.
     */
    const claimSqlite = (now: number, until: number, limit: number, token: string) =>
      sql<ClaimedRecord>`
        UPDATE ${table} AS o SET claim = ${token}, claimed_until = ${until}
        WHERE o.id IN (
          SELECT c.id FROM ${table} c
          WHERE c.status IN ${unsent} AND c.next_attempt_at <= ${now} AND c.claimed_until <= ${now}
            AND NOT EXISTS (
              SELECT 1 FROM ${table} b
              WHERE b.key = c.key AND b.seq < c.seq AND b.status IN ${unsent}
                AND (b.next_attempt_at > ${now} OR b.claimed_until > ${now}))
          ORDER BY c.seq
          LIMIT ${limit})
        RETURNING ${returning}`

    const lock = pg ? sql.literal("FOR UPDATE SKIP LOCKED") : sql.literal("")

    /**
     * Runs a statement that returns the rows it changed; says whether it
     * changed any. When notifying, one NOTIFY rides on the same statement (no
     * extra round trip) and only if something changed; PostgreSQL delivers
     * it when the transaction commits.
     */
    const changedAny = (statement: Statement.Statement<object>): Effect.Effect<boolean, SqlError.SqlError> =>
      Effect.map(
        notifying
          ? sql`WITH changed AS (${statement}) SELECT pg_notify(${channel}, '') WHERE EXISTS (SELECT 1 FROM changed)`
          : statement,
        (rows) => rows.length > 0
      )

    /**
     * PostgreSQL insert: each column travels as one array parameter, so the
     * statement is the same text whatever the batch size (prepared once per
     * connection) and the client encodes no per-row SQL. A batch of one
     * topic (`sendBatch`'s) sends its topic once. `ORDER BY ord` gives the
     * rows their `seq` in the batch's order. An id stored before is left as
     * it is, as in the memory store.
     */
    const insertPg = (
      envelopes: ReadonlyArray<Envelope.Envelope>,
      status: Outbox.Status,
      now: number,
      claim: Claim | undefined
    ) => {
      const n = envelopes.length
      const ids: Array<string> = new Array(n)
      const topics: Array<string> = new Array(n)
      const keys: Array<string | null> = new Array(n)
      const payloads: Array<Uint8Array> = new Array(n)
      const headers: Array<string> = new Array(n)
      const timestamps: Array<bigint> = new Array(n)
      const deliverAts: Array<bigint | null> = new Array(n)
      const first = envelopes[0]?.topic
      let oneTopic = true
      let anyKey = false
      let anyDeliverAt = false
      // One pass per batch: this runs for every message stored.
      for (let i = 0; i < n; i++) {
        const e = envelopes[i] as Envelope.Envelope
        ids[i] = e.id
        topics[i] = e.topic
        if (e.topic !== first) oneTopic = false
        keys[i] = e.key ?? null
        if (e.key !== undefined) anyKey = true
        payloads[i] = e.payload
        headers[i] = JSON.stringify(e.headers)
        timestamps[i] = BigInt(e.timestamp)
        deliverAts[i] = e.deliverAt === undefined ? null : BigInt(e.deliverAt)
        if (e.deliverAt !== undefined) anyDeliverAt = true
      }
      const topic = oneTopic ? sql`${first ?? ""}::text` : sql.literal("v.topic")
      // A column left out travels as a NULL array, which unnests as nulls (an array of
      // nulls alone has no type the driver can name).
      return sql`
        INSERT INTO ${table} (id, topic, key, payload, headers, timestamp, deliver_at, status, attempts,
                              next_attempt_at, created_at, claim, claimed_until)
        SELECT v.id, ${topic}, v.key, v.payload, v.headers, v.timestamp, v.deliver_at, ${status}, 0,
               ${BigInt(now)}, ${BigInt(now)}, ${claim?.token ?? null}::text, ${BigInt(claim?.until ?? 0)}
        FROM unnest(
          ${ids}::text[],
          ${oneTopic ? null : topics}::text[],
          ${anyKey ? keys : null}::text[],
          ${payloads}::bytea[],
          ${headers}::text[],
          ${timestamps}::int8[],
          ${anyDeliverAt ? deliverAts : null}::int8[]
        ) WITH ORDINALITY AS v(id, topic, key, payload, headers, timestamp, deliver_at, ord)
        ORDER BY v.ord
        ON CONFLICT (id) DO NOTHING RETURNING id`
    }

    /** Insert with a row of parameters per envelope (SQLite). An id stored before is left as it is. */
    const insertRows = (
      envelopes: Arr.NonEmptyReadonlyArray<Envelope.Envelope>,
      status: Outbox.Status,
      now: number,
      claim: Claim | undefined
    ) => {
      const rows = Arr.map(envelopes, (e) => ({
        id: e.id,
        topic: e.topic,
        key: e.key ?? null,
        payload: e.payload,
        headers: JSON.stringify(e.headers),
        timestamp: e.timestamp,
        deliver_at: e.deliverAt ?? null,
        status,
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
        claim: claim?.token ?? null,
        claimed_until: claim?.until ?? 0
      }))
      return sql`INSERT INTO ${table} ${sql.insert(rows)}
                 ON CONFLICT (id) DO NOTHING RETURNING id`
    }

    const token = MessageId.make

    // Relays of this process that take their rows as they commit (see "Hand-off" above), in turn.
    const takers: Array<HandoffTaker> = []
    let turn = 0

    /** The relay to claim a batch for: it has no key, fits one INSERT and the relay, and a relay has room. */
    const takerFor = (envelopes: ReadonlyArray<Envelope.Envelope>): HandoffTaker | undefined => {
      if (takers.length === 0 || envelopes.length > chunkSize) return undefined
      for (const e of envelopes) if (e.key !== undefined) return undefined
      for (let i = 0; i < takers.length; i++) {
        const taker = takers[(turn + i) % takers.length] as HandoffTaker
        if (taker.open && envelopes.length <= taker.maxRows && Queue.sizeUnsafe(taker.queue) < handoffBacklog) {
          turn = (turn + i + 1) % takers.length
          return taker
        }
      }
      return undefined
    }

    /** Stores a batch claimed for `taker`; once the outermost transaction commits, hands it over. */
    const addHandedOff = (
      envelopes: ReadonlyArray<Envelope.Envelope>,
      now: number,
      taker: HandoffTaker
    ): Effect.Effect<void, StoreUnavailable> =>
      Effect.gen(function* () {
        const claim = { token: yield* token, until: now + taker.leaseMillis }
        const chunk = envelopes as Arr.NonEmptyReadonlyArray<Envelope.Envelope>
        const inserted = yield* lift(
          pg ? insertPg(chunk, "pending", now, claim) : insertRows(chunk, "pending", now, claim)
        )
        // An id stored before keeps its row as it is: only the rows inserted now are this claim's.
        const stored =
          inserted.length === envelopes.length
            ? envelopes
            : ((ids) => envelopes.filter((e) => ids.has(e.id)))(new Set(inserted.map((r) => r.id)))
        if (stored.length === 0) return
        const rows = stored.map((envelope): Outbox.Claimed => ({ envelope, attempts: 0, claim: claim.token }))
        yield* sql.afterCommit(
          Effect.suspend(() =>
            taker.open && Queue.offerUnsafe(taker.queue, { rows, claimedAt: now }) ? Effect.void : release(rows)
          )
        )
      })

    /**
     * Makes the rows of one hand-off (one claim) claimable at once and wakes
     * the relays; a failure only logs, as the rows are claimed again when the lease ends.
     */
    const release = (rows: ReadonlyArray<Outbox.Claimed>): Effect.Effect<void> => {
      if (rows.length === 0) return Effect.void
      const statement = pg
        ? sql`UPDATE ${table} AS o SET claim = NULL, claimed_until = 0
              FROM unnest(${rows.map((r) => r.envelope.id)}::text[], ${rows.map((r) => r.claim)}::text[]) AS v(id, claim)
              WHERE o.id = v.id AND o.claim = v.claim RETURNING o.id`
        : sql`UPDATE ${table} SET claim = NULL, claimed_until = 0
              WHERE claim = ${(rows[0] as Outbox.Claimed).claim} AND id IN ${sql.in(rows.map((r) => r.envelope.id))}
              RETURNING id`
      return Effect.ignore(
        Effect.andThen(changedAny(statement), wakeLocal).pipe(
          Effect.tapError((e) =>
            Effect.logWarning(
              `lossless: ${name}: releasing handed-off rows failed (${e.message}); they wait for their lease`
            )
          )
        )
      )
    }

    const store: SqlOutboxStore = {
      name,
      dialect,
      tables,

      add: (envelopes, status) =>
        Effect.gen(function* () {
          if (envelopes.length === 0) return
          const now = yield* Clock.currentTimeMillis
          const taker = status === "pending" ? takerFor(envelopes) : undefined
          if (taker !== undefined) return yield* addHandedOff(envelopes, now, taker)
          // Prepared rows wait for commit: nothing for a relay to do yet.
          const wake = status === "pending"
          const statements = chunks(envelopes, chunkSize).map((chunk) => {
            const insert = pg ? insertPg(chunk, status, now, undefined) : insertRows(chunk, status, now, undefined)
            return wake ? changedAny(insert) : insert
          })
          yield* lift(atomically(statements))
          if (wake) yield* wakeLocal
        }).pipe(Effect.withSpan("SqlOutboxStore.add", { attributes: { count: envelopes.length } })),

      handoffs: ({ lease, maxRows }) =>
        Stream.unwrap(
          Effect.map(
            Effect.acquireRelease(
              Effect.map(Queue.bounded<Outbox.Handoff>(handoffBacklog), (queue) => {
                const taker: HandoffTaker = {
                  queue,
                  leaseMillis: Duration.toMillis(lease),
                  maxRows: Math.max(1, Math.floor(maxRows)),
                  open: true
                }
                takers.push(taker)
                return taker
              }),
              (taker) =>
                Effect.suspend(() => {
                  taker.open = false
                  takers.splice(takers.indexOf(taker), 1)
                  return Effect.flatMap(Queue.clear(taker.queue), (left) =>
                    Effect.andThen(
                      Effect.forEach(left, (batch) => release(batch.rows), { discard: true }),
                      Queue.shutdown(taker.queue)
                    )
                  )
                })
            ),
            (taker) => Stream.fromQueue(taker.queue)
          )
        ),

      claim: (limit, lease) =>
        Effect.gen(function* () {
          const n = Math.floor(limit)
          if (n <= 0) return []
          const now = yield* Clock.currentTimeMillis
          const claim = yield* token
          const until = now + Duration.toMillis(lease)
          const rows = pg
            ? yield* lift(claimPg(now, until, n, claim))
            : bySeq(yield* lift(claimSqlite(now, until, n, claim)))
          return yield* claimedOf(claim)(rows)
        }).pipe(Effect.withSpan("SqlOutboxStore.claim")),

      markSent: (sent) =>
        Effect.gen(function* () {
          if (sent.length === 0) return
          const now = yield* Clock.currentTimeMillis
          if (pg) {
            // Rows of any number of claims in one statement: the (id, claim) pairs travel as two arrays.
            const statements = chunks(sent, markChunkPg).map(
              (chunk) =>
                sql`UPDATE ${table} AS o SET status = 'sent', attempts = o.attempts + 1, claim = NULL, sent_at = ${now}
                    FROM unnest(${chunk.map((r) => r.id)}::text[], ${chunk.map((r) => r.claim)}::text[]) AS v(id, claim)
                    WHERE o.id = v.id AND o.claim = v.claim`
            )
            return yield* lift(atomically(statements))
          }
          // One claim token per batch: one UPDATE per claim and chunk, not per row.
          const byClaim = new Map<string, Array<string>>()
          for (const { id, claim } of sent) {
            const ids = byClaim.get(claim)
            if (ids === undefined) byClaim.set(claim, [id])
            else ids.push(id)
          }
          const statements = [...byClaim].flatMap(([claim, ids]) =>
            chunks(ids, chunkSize).map(
              (chunk) =>
                sql`UPDATE ${table} SET status = 'sent', attempts = attempts + 1, claim = NULL, sent_at = ${now}
                    WHERE claim = ${claim} AND id IN ${sql.in(chunk)}`
            )
          )
          yield* lift(atomically(statements))
        }).pipe(Effect.withSpan("SqlOutboxStore.markSent")),

      markFailed: (failures) =>
        Effect.gen(function* () {
          if (failures.length === 0) return
          // Each row has its own error and retry time: one UPDATE joined with a VALUES list per chunk.
          const statements = chunks(failures, chunkSize).map((chunk) => {
            const values = sql.join(
              ", ",
              false
            )(chunk.map((f) => sql`(${f.id}, ${f.claim}, ${f.error}, CAST(${f.retryAt ?? null} AS BIGINT))`))
            return sql`
              UPDATE ${table} AS o SET
                attempts = o.attempts + 1,
                last_error = v.column3,
                claim = NULL,
                claimed_until = 0,
                status = CASE WHEN v.column4 IS NULL THEN 'parked' ELSE 'failed' END,
                next_attempt_at = COALESCE(v.column4, o.next_attempt_at)
              FROM (VALUES ${values}) AS v
              WHERE o.id = v.column1 AND o.claim = v.column2`
          })
          yield* lift(atomically(statements))
        }).pipe(Effect.withSpan("SqlOutboxStore.markFailed")),

      commit: (id) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const committed = yield* lift(
            changedAny(sql`
              UPDATE ${table} SET status = 'pending', attempts = 0, next_attempt_at = ${now}, claim = NULL, claimed_until = 0
              WHERE id = ${id} AND status = 'prepared'
              RETURNING id`)
          )
          if (committed) yield* wakeLocal
          return committed
        }),

      rollback: (id) =>
        Effect.map(
          lift(sql`DELETE FROM ${table} WHERE id = ${id} AND status = 'prepared' RETURNING id`),
          (rows) => rows.length > 0
        ),

      claimUndecided: (olderThan, limit, lease) =>
        Effect.gen(function* () {
          const n = Math.floor(limit)
          if (n <= 0) return []
          const now = yield* Clock.currentTimeMillis
          const claim = yield* token
          const rows = yield* lift(sql<ClaimedRecord>`
            UPDATE ${table} AS o SET claim = ${claim}, claimed_until = ${now + Duration.toMillis(lease)}
            WHERE o.id IN (
              SELECT id FROM ${table}
              WHERE status = 'prepared' AND created_at < ${olderThan}
                AND next_attempt_at <= ${now} AND claimed_until <= ${now}
              ORDER BY seq
              LIMIT ${n}
              ${lock})
            RETURNING ${returning}`)
          return yield* claimedOf(claim)(bySeq(rows))
        }),

      markUndecided: (id, claim, retryAt, reason) => {
        const retry = retryAt ?? null
        return Effect.asVoid(
          lift(sql`
            UPDATE ${table} SET
              attempts = attempts + 1,
              last_error = ${reason},
              claim = NULL,
              claimed_until = 0,
              status = CASE WHEN CAST(${retry} AS BIGINT) IS NULL THEN 'parked' ELSE status END,
              next_attempt_at = COALESCE(CAST(${retry} AS BIGINT), next_attempt_at)
            WHERE id = ${id} AND claim = ${claim} AND status = 'prepared'`)
        )
      },

      wakeups:
        listen === undefined
          ? Stream.fromPubSub(signal)
          : Stream.unwrap(
              Effect.map(listen(channel), (queue) =>
                // One signal on (re)connecting: rows committed while not listening are due too.
                Stream.concat(
                  Stream.succeed(undefined),
                  Stream.map(Stream.fromQueue(queue), () => undefined)
                )
              )
            ).pipe(
              Stream.tapError((error) =>
                Effect.logWarning(`lossless: LISTEN ${channel} failed (${error.message}); listening again`)
              ),
              Stream.retry(relisten),
              Stream.catchCause(() => Stream.empty)
            ),

      stats: Effect.map(
        lift(sql<{ readonly status: Outbox.Status; readonly n: Int; readonly oldest: Int | null }>`
          SELECT status, COUNT(*) AS n, MIN(created_at) AS oldest FROM ${table} GROUP BY status`),
        (rows) => {
          const stats = { prepared: 0, pending: 0, failed: 0, sent: 0, parked: 0 }
          let oldestUnsentAt: number | undefined
          for (const row of rows) {
            stats[row.status] = Number(row.n)
            if ((row.status === "pending" || row.status === "failed") && row.oldest !== null) {
              const oldest = Number(row.oldest)
              oldestUnsentAt = oldestUnsentAt === undefined ? oldest : Math.min(oldestUnsentAt, oldest)
            }
          }
          return { ...stats, oldestUnsentAt }
        }
      ),

      list: (status, limit) =>
        Effect.flatMap(
          lift(sql<RowRecord>`
            SELECT seq, id, topic, key, payload, headers, timestamp, deliver_at, status, attempts, last_error,
                   next_attempt_at, created_at
            FROM ${table} WHERE status = ${status} ORDER BY seq LIMIT ${Math.max(0, Math.floor(limit))}`),
          (rows) =>
            decode(() =>
              rows.map(
                (row): Outbox.Row => ({
                  envelope: envelopeOf(row),
                  status: row.status,
                  attempts: Number(row.attempts),
                  lastError: row.last_error ?? undefined,
                  nextAttemptAt: Number(row.next_attempt_at),
                  createdAt: Number(row.created_at)
                })
              )
            )
        ),

      retry: (id) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const changed = yield* lift(
            changedAny(sql`
              UPDATE ${table} SET status = 'pending', next_attempt_at = ${now}
              WHERE id = ${id} AND status IN ('parked', 'failed')
              RETURNING id`)
          )
          if (changed) yield* wakeLocal
          return changed
        }),

      purgeSent: (before, limit = 10_000) =>
        Effect.map(
          lift(sql`
            DELETE FROM ${table} WHERE id IN (
              SELECT id FROM ${table} WHERE status = 'sent' AND sent_at < ${before}
              ORDER BY seq LIMIT ${Math.max(0, Math.floor(limit))})
            RETURNING id`),
          (rows) => rows.length
        )
    }
    return store
  })

/** Whether an outbox store is a SQL store (for operations that need `purgeSent`). */
export const isSqlOutboxStore = (store: Outbox.OutboxStore): store is SqlOutboxStore =>
  "purgeSent" in store && typeof (store as SqlOutboxStore).purgeSent === "function"
