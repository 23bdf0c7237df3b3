/**
 * One consumer process of the RabbitMQ chaos test, which starts it with
 * `node --conditions=@lossless/source consumer.ts '<settings json>'` so that
 * it can be killed with SIGKILL in the middle of its handlers.
 *
 * It consumes the topic in two groups. Each handler writes one effect row
 * per run to PostgreSQL, then takes a few milliseconds more:
 *
 * - the inbox group dedupes with `SqlInbox`: the effect row and the inbox
 *   key commit in one transaction, so a process killed mid-handler leaves
 *   neither behind and the redelivery writes the effect once;
 * - the claims group dedupes with Redis claims: the effect row is committed
 *   before the claim is completed, so a process killed in between leaves an
 *   effect the redelivery repeats once the claim's lease has run out.
 *
 * It reports on stdout, one `@chaos <json>` line at a time: `ready` once both
 * consumers run, then its counters every 50 ms. Logs go to stderr. It shuts
 * down gracefully on SIGTERM, and when its stdin closes (the test process
 * has gone).
 */
import { Consumer, type Dedupe, type Message } from "@lossless/core"
import { RabbitTransport } from "@lossless/rabbitmq"
import { RedisClient, RedisDedupeStore } from "@lossless/redis"
import { Postgres, SqlInbox } from "@lossless/sql"
import { Cause, Effect, Exit, Layer, Logger, Redacted, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { type ConsumerSettings, jobTopic, type Status, statusMarker } from "./shared.ts"

const settings = JSON.parse(process.argv[2] ?? "{}") as ConsumerSettings
const Jobs = jobTopic(settings.topic)

const counters = {
  inflight: 0,
  handled: { inbox: 0, claims: 0 },
  suppressed: { inbox: 0, claimsDone: 0, claimsBusy: 0 },
  redelivered: 0
}

const report = (event: Status["event"]) => {
  const status: Status = {
    event,
    ...counters,
    handled: { ...counters.handled },
    suppressed: { ...counters.suppressed }
  }
  process.stdout.write(`${statusMarker}${JSON.stringify(status)}\n`)
}

/** The inbox, counting the deliveries it found handled before. */
const countingInbox = (inbox: Dedupe.Inbox): Dedupe.Inbox => ({
  name: inbox.name,
  once: (key, handle) =>
    Effect.tap(inbox.once(key, handle), (ran) =>
      Effect.sync(() => {
        if (!ran) counters.suppressed.inbox++
      })
    )
})

/** The claim store, counting the claims it refused. */
const countingClaims = (store: Dedupe.DedupeStore): Dedupe.DedupeStore => ({
  ...store,
  claim: (key, lease) =>
    Effect.tap(store.claim(key, lease), (claim) =>
      Effect.sync(() => {
        if (claim._tag === "Done") counters.suppressed.claimsDone++
        else if (claim._tag === "Busy") counters.suppressed.claimsBusy++
      })
    )
})

const program = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const effects = sql(settings.effectsTable)
  const inbox = yield* SqlInbox.make({ tables: { inbox: settings.inboxTable } })
  const redis = yield* RedisClient.make(settings.redisUrl)
  const claims = RedisDedupeStore.make(redis, { prefix: settings.redisPrefix })

  /**
   * The handler: the effect, then a little work, so that a kill can land between the two.
   * In the inbox group it runs inside the inbox's transaction on the same client, so the
   * effect row commits or rolls back with the inbox key.
   */
  const handler =
    (group: "inbox" | "claims", name: string) =>
    (message: Message.Message<{ readonly n: number }>, context: Consumer.Context) =>
      Effect.suspend(() => {
        counters.inflight++
        if (context.redelivered) counters.redelivered++
        return sql`INSERT INTO ${effects} (message_id, consumer_group, pid) VALUES (${message.id}, ${name}, ${process.pid})`
      }).pipe(
        Effect.andThen(Effect.sleep(settings.handlerMillis)),
        Effect.tap(() =>
          Effect.sync(() => {
            counters.handled[group]++
          })
        ),
        Effect.ensuring(
          Effect.sync(() => {
            counters.inflight--
          })
        )
      )

  const common = { topic: Jobs, concurrency: settings.concurrency, shutdownTimeout: "5 seconds" } as const
  yield* Consumer.start({
    ...common,
    group: settings.inboxGroup,
    dedupe: { store: countingInbox(inbox) },
    handler: handler("inbox", settings.inboxGroup)
  })
  yield* Consumer.start({
    ...common,
    group: settings.claimsGroup,
    dedupe: {
      store: countingClaims(claims),
      lease: settings.claimLeaseMillis,
      busyDelay: "500 millis",
      ttl: "1 hour"
    },
    handler: handler("claims", settings.claimsGroup)
  })
  report("ready")
  yield* Effect.forkScoped(
    Effect.repeat(
      Effect.sync(() => report("status")),
      Schedule.spaced("50 millis")
    )
  )
  return yield* Effect.never
})

const Live = Layer.mergeAll(
  RabbitTransport.layer({
    url: Redacted.make(settings.rabbitUrl),
    connectionName: `lossless-chaos-consumer-${process.pid}`,
    retryQueueIdle: "1 minute",
    reconnectSchedule: Schedule.spaced("200 millis"),
    reconnectWait: "10 seconds"
  }),
  // Enough connections for every inbox transaction and claims insert at once.
  Postgres.layer({
    url: Redacted.make(settings.postgresUrl),
    maxConnections: settings.concurrency * 2,
    applicationName: "lossless-chaos"
  })
)

const fiber = Effect.runFork(
  program.pipe(Effect.scoped, Effect.provide(Live), Effect.provideService(Logger.LogToStderr, true))
)
const shutdown = () => fiber.interruptUnsafe()
process.once("SIGTERM", shutdown)
process.stdin.once("close", shutdown)
process.stdin.resume()
fiber.addObserver((exit) => {
  if (Exit.isFailure(exit) && !Exit.hasInterrupts(exit))
    process.stderr.write(`consumer failed: ${Cause.pretty(exit.cause)}\n`)
  process.exit(Exit.isSuccess(exit) || Exit.hasInterrupts(exit) ? 0 : 1)
})
