/**
 * Chaos on a real RabbitMQ. 20,000 messages go out through the core
 * publisher, stamped for loss detection, while the broker closes every
 * connection four times, the broker application restarts, and one of two
 * consumer processes is killed with SIGKILL in the middle of its handlers
 * (a replacement takes its place). Then, for every confirmed send:
 *
 * - the group deduped by the SQL inbox has exactly one effect: none lost,
 *   none doubled, the inbox key committed with each;
 * - the group deduped by Redis claims has at least one effect, and the only
 *   repeated ones are effects of the killed process, which died between an
 *   effect and recording it done — all a claim store can promise;
 * - a loss detector consuming every message in a group of its own saw it,
 *   and reports no gap.
 *
 * The tally is independent of Lossless: the handlers write one row per run
 * to a PostgreSQL table, which the test reads directly.
 *
 * The test restarts the broker, so it takes turns on it with the RabbitMQ
 * package's suites (`exclusiveBroker`). Under CI a missing RabbitMQ, Redis or
 * PostgreSQL fails the file; elsewhere the test is skipped with the reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Publisher } from "@lossless/core"
import { RabbitTransport } from "@lossless/rabbitmq"
import { RedisClient } from "@lossless/redis"
import { OutboxSchema, Postgres } from "@lossless/sql"
import { Harness, Services } from "@lossless/testkit"
import { Effect, Fiber, Layer, Redacted, Schedule, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import { afterAll } from "vitest"
import * as RabbitSupport from "../../packages/rabbitmq/test/support.ts"
import { startAudit } from "./Audit.ts"
import * as ConsumerProcess from "./ConsumerProcess.ts"
import { makeSends, sender } from "./Senders.ts"
import { type ConsumerSettings, jobTopic, type Status } from "./shared.ts"

const rabbit = await Services.require("rabbitmq")
const redis = await Services.require("redis")
const postgres = await Services.require("postgres")
const controllable = rabbit.available && (await RabbitSupport.canControlBroker())
if (rabbit.available && !controllable && process.env.CI !== undefined && !["", "false"].includes(process.env.CI)) {
  // Under CI the chaos must run, not turn into a silent skip.
  throw new Error("RabbitMQ is up but rabbitmqctl cannot control it (neither locally nor in its Compose container)")
}
const missing = [
  ...[rabbit, redis, postgres].filter((s) => !s.available).map((s) => `${s.service}: ${s.reason}`),
  ...(rabbit.available && !controllable ? ["rabbitmqctl cannot control the broker"] : [])
]
if (missing.length === 0) afterAll(await RabbitSupport.exclusiveBroker())

const total = 20_000
// Small batches from several senders keep publishes outstanding most of the time, for the faults to hit.
const senders = 16
const batchSize = 10
/** Each sender rests this long between batches, so that sending lasts through the whole timeline. */
const batchPause = "200 millis"
const groups = { inbox: "inbox", claims: "claims", audit: "audit" } as const

type Fault = "close connections" | "restart the broker" | "kill a consumer"

/** The faults, in order, each when that many sends are confirmed. */
const timeline: ReadonlyArray<{ readonly at: number; readonly fault: Fault }> = [
  { at: 2_000, fault: "close connections" },
  { at: 5_000, fault: "close connections" },
  { at: 8_000, fault: "restart the broker" },
  { at: 11_000, fault: "kill a consumer" },
  { at: 14_000, fault: "close connections" },
  { at: 17_000, fault: "close connections" }
]

const Live = Layer.mergeAll(
  RabbitSupport.tidy(RabbitTransport.layer(RabbitSupport.options({ connectionName: "lossless-chaos-test" }))),
  Postgres.layer({ url: Redacted.make(Services.url("postgres")), maxConnections: 4 })
).pipe(Layer.orDie)

const seconds = (from: number) => `${((Date.now() - from) / 1000).toFixed(1)} s`

/** Messages in each of the topic's queues (work, retry and dead-letter), ready or unacknowledged. */
const queueDepths = (topic: string) =>
  Effect.map(RabbitSupport.rabbitmqctl("list_queues", "-q", "--no-table-headers", "name", "messages"), (out) => {
    const depths = new Map<string, number>()
    for (const line of out.split("\n")) {
      const [name, messages] = line.trim().split(/\s+/)
      if (name?.startsWith(`${topic}__`)) depths.set(name, Number(messages))
    }
    return depths
  })

/**
 * The run's own names and storage, removed again when the scope closes: the
 * topic and its groups (the transport deletes them, retry queues here), the
 * inbox and effects tables, the Redis claims.
 */
const prepare = Effect.gen(function* () {
  const topic = Harness.uniqueName("e2e-chaos")
  const prefix = `${topic.replaceAll("-", "_")}_`
  const tables = OutboxSchema.withPrefix(prefix)
  const effectsTable = `${prefix}effects`
  const redisPrefix = `lossless:${topic}:`
  const sql = yield* SqlClient.SqlClient

  const client = yield* RedisClient.make(Services.url("redis"))
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      const keys = await client.keys(`${redisPrefix}*`)
      for (let i = 0; i < keys.length; i += 1000) await client.unlink(...keys.slice(i, i + 1000))
    }).pipe(Effect.ignore)
  )
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      const own = yield* sql<{ readonly tablename: string }>`
        SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND starts_with(tablename, ${prefix})`
      for (const { tablename } of own) yield* sql`DROP TABLE IF EXISTS ${sql(tablename)}`
    }).pipe(Effect.ignore)
  )
  yield* OutboxSchema.migrate({ tables }).pipe(Effect.orDie)
  // No unique constraint: a handler that runs twice must leave a second row, not fail.
  yield* sql`CREATE TABLE ${sql(effectsTable)} (
    seq BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL,
    consumer_group TEXT NOT NULL,
    pid INTEGER NOT NULL
  )`.pipe(Effect.orDie)

  yield* Harness.declare(
    [topic],
    [groups.inbox, groups.claims, groups.audit].map((g) => [topic, g] as const)
  )
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      const retryQueues = [...(yield* queueDepths(topic)).keys()].filter((name) => name.includes("__retry__"))
      yield* RabbitSupport.admin(async (channel) => {
        for (const name of retryQueues) await channel.deleteQueue(name)
      })
    }).pipe(Effect.ignore)
  )

  const settings: ConsumerSettings = {
    rabbitUrl: RabbitSupport.url,
    postgresUrl: Services.url("postgres"),
    redisUrl: Services.url("redis"),
    topic,
    inboxGroup: groups.inbox,
    claimsGroup: groups.claims,
    inboxTable: tables.inbox,
    effectsTable,
    redisPrefix,
    claimLeaseMillis: 5_000,
    handlerMillis: 5,
    concurrency: 8
  }

  /** Per group, the message ids with an effect and how many rows each has. */
  const effectCounts = Effect.map(
    sql<{ readonly consumer_group: string; readonly ids: number; readonly rows: number }>`
      SELECT consumer_group, count(DISTINCT message_id)::int AS ids, count(*)::int AS rows
      FROM ${sql(effectsTable)} GROUP BY consumer_group`.pipe(Effect.orDie),
    (result) => {
      const of = (group: string) => result.find((r) => r.consumer_group === group) ?? { ids: 0, rows: 0 }
      return { inbox: of(groups.inbox), claims: of(groups.claims) }
    }
  )

  /** Every effect row: which message, which group, which process. */
  const effectRows = sql<{ readonly message_id: string; readonly consumer_group: string; readonly pid: number }>`
    SELECT message_id, consumer_group, pid FROM ${sql(effectsTable)} ORDER BY seq`.pipe(Effect.orDie)

  const inboxKeys = Effect.map(
    sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM ${sql(tables.inbox)}`.pipe(Effect.orDie),
    (rows) => rows[0]?.n ?? 0
  )

  return { topic, settings, effectCounts, effectRows, inboxKeys }
})

/** Per message id, the processes whose handler ran for it, in one group. */
const runsByMessage = (
  rows: ReadonlyArray<{ message_id: string; consumer_group: string; pid: number }>,
  group: string
) => {
  const runs = new Map<string, Array<number>>()
  for (const row of rows) {
    if (row.consumer_group !== group) continue
    const pids = runs.get(row.message_id)
    if (pids === undefined) runs.set(row.message_id, [row.pid])
    else pids.push(row.pid)
  }
  return runs
}

const sample = (ids: ReadonlyArray<string>) => (ids.length === 0 ? "" : `: ${ids.slice(0, 5).join(", ")}`)

if (missing.length > 0) {
  describe("chaos on RabbitMQ", () => {
    it.skip(`needs ${missing.join("; ")}`, () => {})
  })
} else {
  describe(`chaos on RabbitMQ (${rabbit.url}), consumers deduping through PostgreSQL and Redis`, () => {
    it.live(
      "20,000 sends through killed connections, a broker restart and a SIGKILLed consumer: none lost, no effect doubled, no gap",
      () =>
        Effect.gen(function* () {
          const began = Date.now()
          const { topic, settings, effectCounts, effectRows, inboxKeys } = yield* prepare
          const Jobs = jobTopic(topic)

          // The audit group (see Audit.ts): one still open gap at the end fails the test as pending.
          const { detector, gapsReported, audited } = yield* startAudit(Jobs, groups.audit, 200)

          const consumers = yield* Effect.all(
            [ConsumerProcess.start("consumer-1", settings), ConsumerProcess.start("consumer-2", settings)],
            { concurrency: 2 }
          )
          yield* Effect.log(
            `chaos setup (${seconds(began)}): topic ${topic}, consumer processes ${consumers.map((c) => c.pid).join(", ")}`
          )

          const publisher = yield* Publisher.make({
            lossDetection: { name: "chaos" },
            // Outlasts every outage of the timeline: a retry every 250 ms for two minutes.
            retry: Schedule.spaced("250 millis").pipe(Schedule.upTo({ times: 480 })),
            attemptTimeout: "10 seconds"
          })
          const sends = makeSends()
          const send = sender({ publisher, topic: Jobs, sends, total, batchSize, pause: batchPause })

          const progress = (phase: string) =>
            Effect.gen(function* () {
              const effects = yield* effectCounts
              const statuses = consumers
                .map((c) => `${c.name} ${c.exited() === undefined ? `${c.status().inflight} in flight` : "dead"}`)
                .join(", ")
              yield* Effect.log(
                `chaos ${phase} (${seconds(began)}): ${sends.confirmed.size}/${total} confirmed (${sends.resent} re-sent), ` +
                  `effects inbox ${effects.inbox.ids} / claims ${effects.claims.ids}, audited ${audited.size}; ${statuses}`
              )
            })

          /** Running totals that show what a fault hit: sends it made retry, redeliveries the dedupe absorbed. */
          const hits = () => {
            const statuses = consumers.map((c) => c.status())
            return {
              resent: sends.resent,
              absorbed: statuses.reduce((n, s) => n + s.suppressed.inbox + s.suppressed.claimsDone, 0)
            }
          }
          const strikes: Array<{
            readonly fault: Fault
            readonly confirmed: number
            readonly detail: string
            readonly before: ReturnType<typeof hits>
          }> = []
          let killed: { readonly pid: number; readonly inflight: number } | undefined
          const strike = (fault: Fault): Effect.Effect<string, never, Scope.Scope> => {
            switch (fault) {
              case "close connections":
                return Effect.as(
                  RabbitSupport.rabbitmqctl("close_all_connections", "lossless chaos test"),
                  "every connection closed"
                )
              case "restart the broker":
                return Effect.acquireUseRelease(
                  RabbitSupport.rabbitmqctl("stop_app"),
                  () => Effect.sleep("2 seconds"),
                  // Released even if the test is interrupted: the broker is always left running.
                  () =>
                    RabbitSupport.rabbitmqctl("start_app").pipe(
                      Effect.andThen(RabbitSupport.rabbitmqctl("await_startup"))
                    )
                ).pipe(Effect.as("stopped for 2 s, started again"))
              case "kill a consumer":
                return Effect.gen(function* () {
                  const victim = consumers[0] as ConsumerProcess.ConsumerProcess
                  // Kill it while its handlers run.
                  yield* Harness.eventually(
                    `handlers running in ${victim.name}`,
                    () => victim.status().inflight > 0,
                    "20 seconds"
                  )
                  const inflight = victim.status().inflight
                  yield* victim.kill
                  killed = { pid: victim.pid, inflight }
                  const replacement = yield* ConsumerProcess.start("consumer-3", settings)
                  consumers.push(replacement)
                  return `SIGKILLed ${victim.name} (pid ${victim.pid}) with ${inflight} handler(s) running; ${replacement.name} (pid ${replacement.pid}) took over`
                })
            }
          }
          const chaos = Effect.forEach(
            timeline,
            ({ at, fault }) =>
              Effect.gen(function* () {
                yield* Harness.eventually(`${at} sends confirmed`, () => sends.confirmed.size >= at, "2 minutes")
                const confirmed = sends.confirmed.size
                const before = hits()
                const detail = yield* strike(fault)
                strikes.push({ fault, confirmed, detail, before })
                yield* Effect.log(`chaos fault at ${confirmed} confirmed (${seconds(began)}): ${fault}: ${detail}`)
              }),
            { discard: true }
          )

          const sendingFrom = Date.now()
          const reporter = yield* Effect.forkScoped(Effect.repeat(progress("sending"), Schedule.spaced("3 seconds")))
          const sendAll = Effect.forEach(Array.from({ length: senders }), () => send, {
            concurrency: "unbounded",
            discard: true
          })
          yield* Effect.all([sendAll, chaos], { concurrency: "unbounded", discard: true })
          const sendingTook = seconds(sendingFrom)
          yield* Fiber.interrupt(reporter)
          yield* progress("sent")

          // Drain: every confirmed message handled in each group, and nothing left on the broker
          // (a message waiting for a retry or held by a consumer is still in one of the topic's queues).
          const drainFrom = Date.now()
          const survivors = consumers.filter((c) => c.pid !== killed?.pid)
          let lastProgress = Date.now()
          for (;;) {
            const crashed = survivors.find((c) => c.exited() !== undefined)
            if (crashed !== undefined) {
              return yield* Effect.die(
                new Error(`${crashed.name} exited ${JSON.stringify(crashed.exited())}:\n${crashed.logs()}`)
              )
            }
            const effects = yield* effectCounts
            const depths = yield* queueDepths(topic)
            const queued = [...depths].reduce((n, [name, depth]) => (name.endsWith("__dlq") ? n : n + depth), 0)
            const confirmed = sends.confirmed.size
            const unaudited = [...sends.confirmed].filter((id) => !audited.has(id)).length
            if (effects.inbox.ids >= confirmed && effects.claims.ids >= confirmed && unaudited === 0 && queued === 0)
              break
            if (Date.now() - drainFrom > 90_000) {
              return yield* Effect.die(
                new Error(
                  `not drained after 90 s: effects inbox ${effects.inbox.ids} / claims ${effects.claims.ids} of ${confirmed}, ` +
                    `${unaudited} unaudited, queues ${JSON.stringify([...depths])}`
                )
              )
            }
            if (Date.now() - lastProgress >= 3000) {
              lastProgress = Date.now()
              yield* progress(`draining, ${queued} queued`)
            }
            yield* Effect.sleep("1 second")
          }
          const drainingTook = seconds(drainFrom)
          yield* progress("drained")

          const confirmed = [...sends.confirmed]
          const depths = yield* queueDepths(topic)
          const deadLettered = [...depths].filter(([name, depth]) => name.endsWith("__dlq") && depth > 0)
          const rows = yield* effectRows
          const inbox = runsByMessage(rows, groups.inbox)
          const claims = runsByMessage(rows, groups.claims)
          const inboxLost = confirmed.filter((id) => !inbox.has(id))
          const inboxDoubled = [...inbox].filter(([, pids]) => pids.length > 1).map(([id]) => id)
          const claimsLost = confirmed.filter((id) => !claims.has(id))
          const claimsRepeated = [...claims].filter(([, pids]) => pids.length > 1)
          const report = yield* detector.report
          const statuses = consumers.map((c) => c.status())
          const sumOver = (count: (status: Status) => number) => statuses.reduce((n, s) => n + count(s), 0)
          const hit = hits()

          // The tally first, so that a failing run shows its counts.
          yield* Effect.log(
            [
              `chaos tally (${seconds(began)} in all; sending ${sendingTook}, draining ${drainingTook}):`,
              `  sent ${total}, confirmed ${sends.confirmed.size}, failed ${sends.failed}, re-sent after a failed attempt ${sends.resent}`,
              ...strikes.map((s, i) => {
                const after = strikes[i + 1]?.before ?? hit
                return (
                  `  at ${s.confirmed} confirmed: ${s.fault}: ${s.detail}; then ${after.resent - s.before.resent} ` +
                  `re-sent, ${after.absorbed - s.before.absorbed} redeliveries absorbed by dedupe`
                )
              }),
              `  inbox group: ${inbox.size} messages with an effect, ${inboxLost.length} lost, ${inboxDoubled.length} doubled; ` +
                `${sumOver((s) => s.suppressed.inbox)} deliveries found handled before`,
              `  claims group: ${claims.size} messages with an effect, ${claimsLost.length} lost, ${claimsRepeated.length} repeated; ` +
                `claims refused: ${sumOver((s) => s.suppressed.claimsDone)} done, ${sumOver((s) => s.suppressed.claimsBusy)} busy`,
              `  detector: ${report.observed} observed over ${report.streams} streams, lost ${report.lost}, pending ${report.pending}, ` +
                `duplicates ${report.duplicates}, late ${report.late}, gaps ${report.gaps.length}`,
              `  dead-lettered: ${deadLettered.length === 0 ? "none" : JSON.stringify(deadLettered)}`
            ].join("\n")
          )

          // The producer: every send confirmed, none given up.
          expect(sends.failed).toBe(0)
          expect(sends.confirmed.size).toBe(total)
          // Every fault struck while messages were still being sent; they hit work in flight
          // (sends that had to be retried, deliveries handled again), the kill mid-handler.
          expect(strikes.map((s) => s.fault)).toEqual(timeline.map((t) => t.fault))
          expect(strikes.every((s) => s.confirmed < total)).toBe(true)
          expect(hit.resent + hit.absorbed).toBeGreaterThan(0)
          expect(killed?.inflight).toBeGreaterThan(0)
          expect(deadLettered).toEqual([])

          // The inbox group: exactly one effect per confirmed send, each committed with its inbox key.
          expect(inboxLost.length, `lost${sample(inboxLost)}`).toBe(0)
          expect(inboxDoubled.length, `doubled${sample(inboxDoubled)}`).toBe(0)
          expect(yield* inboxKeys).toBe(inbox.size)

          // The claims group: at least one effect per confirmed send; a repeat only where the
          // killed process ran the handler and died before its claim was recorded done.
          expect(claimsLost.length, `lost${sample(claimsLost)}`).toBe(0)
          expect(
            claimsRepeated
              .filter(([, pids]) => pids.length !== 2 || pids[0] !== killed?.pid)
              .map(([id, pids]) => `${id} by ${pids.join(", ")}`)
          ).toEqual([])

          // The audit group saw every confirmed send, and its detector found no gap.
          expect(confirmed.filter((id) => !audited.has(id))).toEqual([])
          expect(report.observed).toBeGreaterThanOrEqual(total)
          expect({ lost: report.lost, late: report.late, pending: report.pending, gaps: report.gaps }).toEqual({
            lost: 0,
            late: 0,
            pending: 0,
            gaps: []
          })
          expect(gapsReported).toEqual([])
        }).pipe(Effect.scoped, Effect.provide(Live)),
      180_000
    )
  })
}
