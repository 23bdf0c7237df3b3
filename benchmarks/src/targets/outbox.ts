/**
 * The transactional outbox end to end: `@lossless/sql` on the PostgreSQL at
 * `LOSSLESS_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
 * core's `OutboxRelay` publishing to the RabbitMQ at `LOSSLESS_RABBITMQ_URL`
 * through `@lossless/rabbitmq`.
 *
 * - A publish call of the harness is one transaction: one business row per
 *   message (`INSERT ... <prefix>orders`), then the messages through the
 *   outbox publisher (`SqlOutbox.layerPublisher`, `Publisher.sendBatch`),
 *   whose INSERT joins the transaction. It completes at the commit.
 * - `consume` runs the relay for the round (`relay` below: the library's
 *   defaults) over the store, observed: when the relay marks rows sent, the
 *   broker has confirmed them, and each is reported to the harness with its
 *   commit time, so the latency is the relay lag from commit to confirm; the
 *   message counts as done once the mark is written.
 * - Tables have a unique prefix per opened client (`bench_<pid>_<time>_<random>_`),
 *   are emptied before each round (outside its timing) and dropped at the end.
 *   The broker's exchange and queues go after each round, as for the other
 *   RabbitMQ targets; nothing consumes the queue.
 */
import { type Outbox, OutboxRelay, Publisher, Transport } from "@lossless/core"
import { OutboxSchema, Postgres, SqlOutbox } from "@lossless/sql"
import { Services } from "@lossless/testkit"
import { Array as Arr, Context, Deferred, Effect, Layer, Redacted, type Scope, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { outboxTarget } from "../Scenario.ts"
import { exclusive, rabbitAdmin, rabbitTransport } from "./rabbitmq.ts"
import { bytesTopic } from "./runtime.ts"
import { type Availability, type BenchClient, BenchError, type Sink, type Target } from "./Target.ts"
import { seqHeader } from "./transport.ts"

/**
 * The relay as an application would run it with `SqlOutbox.layerRelay()`:
 * one relay, the library's defaults (256 rows per claim and per publish,
 * woken by LISTEN/NOTIFY, sweeping every second).
 */
export const relay = { relays: 1, batchSize: 256 } as const

/** A business row: one per message, written in the message's transaction. */
type OrderRow = { readonly ref: number; readonly amount_cents: number }

/** Enough for four transactions at once, the relay's statements and its LISTEN connection. */
const maxConnections = 10

const failed = (what: string) => (cause: unknown) =>
  new BenchError({
    message: `outbox: ${what}: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  })

/**
 * The store with the relay's progress reported to the harness: claims and
 * hand-offs remember each row's number; a mark reports its rows received (the broker
 * confirmed them; latency from `committedAt`) and, once written, settled.
 */
const observed = (
  store: Outbox.OutboxStore,
  sink: Sink,
  stop: Deferred.Deferred<void>,
  committedAt: ReadonlyArray<number>
): Outbox.OutboxStore => {
  const seqs = new Map<string, number>()
  const remember = (rows: ReadonlyArray<Outbox.Claimed>) => {
    for (const row of rows) seqs.set(row.envelope.id, Number(row.envelope.headers[seqHeader]))
  }
  const handoffs = store.handoffs
  return {
    ...store,
    claim: (limit, lease) =>
      Effect.map(store.claim(limit, lease), (rows) => {
        remember(rows)
        return rows
      }),
    handoffs:
      handoffs === undefined
        ? undefined
        : (options) => Stream.tap(handoffs(options), (handoff) => Effect.sync(() => remember(handoff.rows))),
    markSent: (rows) =>
      Effect.suspend(() => {
        for (const row of rows) {
          const seq = seqs.get(row.id)
          if (seq !== undefined) sink.onReceive(seq, committedAt[seq])
        }
        return Effect.map(store.markSent(rows), () => {
          for (const row of rows) {
            if (seqs.delete(row.id) && !sink.onSettled()) Deferred.doneUnsafe(stop, Effect.void)
          }
        })
      })
  }
}

const open: Effect.Effect<BenchClient, BenchError, Scope.Scope> = Effect.gen(function* () {
  const prefix = `bench_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}_`
  const tables = OutboxSchema.withPrefix(prefix)
  const orders = `${prefix}orders`

  const postgres = yield* Layer.build(
    Postgres.layer({
      url: Redacted.make(Services.url("postgres")),
      maxConnections,
      applicationName: "lossless-bench"
    })
  ).pipe(Effect.mapError(failed("could not connect to PostgreSQL")))
  const sql = Context.get(postgres, SqlClient.SqlClient)
  // Registered before anything is created, so a failed migration leaves nothing behind;
  // it runs before the pool closes (finalizers run in reverse order).
  yield* Effect.addFinalizer(() =>
    Effect.ignore(
      sql`DROP TABLE IF EXISTS ${sql(orders)}, ${sql(tables.outbox)}, ${sql(tables.inbox)}, ${sql(tables.migrations)}`
    )
  )
  yield* sql`CREATE TABLE ${sql(orders)} (
    id BIGSERIAL PRIMARY KEY,
    ref INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
  )`.pipe(Effect.mapError(failed("could not create the business table")))

  const outbox = yield* Layer.build(
    SqlOutbox.layerPublisher().pipe(
      Layer.provideMerge(SqlOutbox.layerStore({ tables })),
      Layer.provide(Layer.succeedContext(postgres))
    )
  ).pipe(Effect.mapError(failed("could not migrate the outbox tables")))
  const store = Context.get(outbox, SqlOutbox.Store)
  const publisher = Context.get(outbox, Publisher.Publisher)

  const transport = yield* rabbitTransport
  const cleanup = yield* rabbitAdmin
  // By message number: when its transaction committed (`performance.now()`), NaN while it runs.
  const committedAt: Array<number> = []

  return {
    prepare: (topic, group) =>
      Effect.andThen(
        // The previous round's rows go, so every round starts from empty tables.
        sql`TRUNCATE ${sql(orders)}, ${sql(tables.outbox)}`.pipe(Effect.mapError(failed("could not empty the tables"))),
        transport
          .ensureTopology({ topics: [topic], groups: [{ topic, group }] })
          .pipe(Effect.mapError(failed("ensureTopology failed")))
      ),

    prepareBatch: (topic, firstSeq, count, payload) => {
      const t = bytesTopic(topic)
      const messages = Arr.makeBy(
        count,
        (i): Publisher.Outgoing<Uint8Array> => ({
          payload,
          headers: { [seqHeader]: String(firstSeq + i) }
        })
      )
      const rows = Arr.makeBy(
        count,
        (i): OrderRow => ({ ref: firstSeq + i, amount_cents: 100 + ((firstSeq + i) % 10_000) })
      )
      const transaction = sql.withTransaction(
        Effect.andThen(
          sql`INSERT INTO ${sql(orders)} ${sql.insert(rows)}`,
          // Each run encodes the messages afresh: new ids, as an application's sends have.
          Effect.suspend(() => publisher.sendBatch(t, messages))
        )
      )
      const mark = (time: number) => () => {
        for (let i = 0; i < count; i++) committedAt[firstSeq + i] = time
      }
      return Effect.sync(mark(Number.NaN)).pipe(
        Effect.andThen(transaction),
        Effect.andThen(Effect.sync(() => mark(performance.now())())),
        Effect.mapError(failed("transaction failed"))
      )
    },

    consume: (_topic, _group, _prefetch, sink) =>
      Effect.scoped(
        Effect.gen(function* () {
          const stop = Deferred.makeUnsafe<void>()
          const watched = observed(store, sink, stop, committedAt)
          for (let i = 0; i < relay.relays; i++) {
            yield* Effect.forkScoped(
              OutboxRelay.run({ store: watched, batchSize: relay.batchSize }).pipe(
                Effect.provideService(Transport.Transport, transport)
              )
            )
          }
          yield* Deferred.await(stop)
        })
      ),

    cleanup
  } satisfies BenchClient
})

const probe: Effect.Effect<Availability> = Effect.promise(async (): Promise<Availability> => {
  const [postgres, rabbitmq] = await Promise.all([Services.check("postgres", 1000), Services.check("rabbitmq", 1000)])
  if (!postgres.available) return { available: false, reason: `PostgreSQL at ${postgres.url}: ${postgres.reason}` }
  if (!rabbitmq.available) return { available: false, reason: `RabbitMQ at ${rabbitmq.url}: ${rabbitmq.reason}` }
  return { available: true }
})

export const outbox: Target = {
  name: outboxTarget,
  broker: "rabbitmq",
  kind: "runtime",
  description: "@lossless/sql outbox on PostgreSQL, core OutboxRelay publishing to @lossless/rabbitmq",
  probe,
  open,
  exclusive
}
