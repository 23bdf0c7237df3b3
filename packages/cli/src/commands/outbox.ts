/**
 * `lossless outbox`: the SQL outbox seen and steered by an operator.
 *
 * - `status`: rows per status, the age of the oldest unsent and parked rows.
 * - `list [--status s] [--topic t] [--limit n]`: rows oldest first.
 * - `retry <id...> | --all-parked`: parked or failed rows become pending, due now.
 * - `park <id...>`: pending or failed rows are parked; the relay leaves them alone.
 *
 * @since 0.1.0
 */
import type { Outbox } from "@lossless/core"
import type { OutboxAdmin } from "@lossless/sql"
import { Clock, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { lossless, name, positive } from "../Args.ts"
import { withOutbox } from "../Connections.ts"
import { age, emit, fail, plural, table, time } from "../Output.ts"

const statuses: ReadonlyArray<Outbox.Status> = ["pending", "failed", "parked", "prepared", "sent"]

const status = Command.make(
  "status",
  {},
  Effect.fn(function* () {
    const { json } = yield* lossless
    const result = yield* withOutbox((admin) => admin.status)
    const now = yield* Clock.currentTimeMillis
    const oldestPendingAge = result.oldestUnsentAt === undefined ? null : now - result.oldestUnsentAt
    const oldestParkedAge = result.oldestParkedAt === undefined ? null : now - result.oldestParkedAt
    yield* emit(
      json,
      {
        counts: result.counts,
        parked: result.counts.parked,
        oldestPendingAgeMs: oldestPendingAge,
        oldestParkedAgeMs: oldestParkedAge
      },
      () =>
        [
          table(
            [
              { header: "STATUS", cell: (s: Outbox.Status) => s },
              { header: "ROWS", cell: (s: Outbox.Status) => String(result.counts[s]), numeric: true }
            ],
            statuses
          ),
          "",
          `oldest pending: ${oldestPendingAge === null ? "none" : `${age(oldestPendingAge)} old`}`,
          `parked: ${result.counts.parked}${oldestParkedAge === null ? "" : ` (oldest ${age(oldestParkedAge)} old)`}`
        ].join("\n")
    )
  })
).pipe(Command.withDescription("Counts outbox rows per status, with the age of the oldest pending row"))

const list = Command.make(
  "list",
  {
    status: Flag.Literals("status", ["prepared", "pending", "failed", "sent", "parked"] as const).pipe(
      Flag.withDescription("only rows with this status"),
      Flag.optional
    ),
    topic: name("topic").pipe(Flag.withDescription("only rows for this topic"), Flag.optional),
    limit: positive("limit").pipe(Flag.withDescription("most rows shown"), Flag.withDefault(50))
  },
  Effect.fn(function* ({ status, topic, limit }) {
    const { json } = yield* lossless
    const rows = yield* withOutbox((admin) =>
      admin.list({
        status: status._tag === "Some" ? status.value : undefined,
        topic: topic._tag === "Some" ? topic.value : undefined,
        limit
      })
    )
    yield* emit(json, rows, () =>
      rows.length === 0
        ? "no outbox rows match"
        : table<OutboxAdmin.Row>(
            [
              { header: "ID", cell: (r) => r.id },
              { header: "TOPIC", cell: (r) => r.topic },
              { header: "KEY", cell: (r) => r.key ?? "-" },
              { header: "STATUS", cell: (r) => r.status },
              { header: "ATTEMPTS", cell: (r) => String(r.attempts), numeric: true },
              { header: "CREATED", cell: (r) => time(r.createdAt) },
              {
                header: "NEXT ATTEMPT",
                cell: (r) => (r.status === "pending" || r.status === "failed" ? time(r.nextAttemptAt) : "-")
              },
              { header: "LAST ERROR", cell: (r) => r.lastError ?? "-" }
            ],
            rows
          )
    )
  })
).pipe(Command.withDescription("Lists outbox rows, oldest first"))

const ids = Argument.String("id").pipe(Argument.withDescription("outbox row (message) ids"), Argument.variadic())

/** Says which ids changed and which were left alone, and fails when one asked for could not be changed. */
const outcome = (verb: string, from: string, asked: ReadonlyArray<string> | "all", changed: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { json } = yield* lossless
    const skipped = asked === "all" ? [] : asked.filter((id) => !changed.includes(id))
    const total = asked === "all" ? changed.length : asked.length
    yield* emit(json, { [verb]: changed, skipped }, () =>
      [
        `${verb} ${changed.length} of ${plural(total, "outbox row")}`,
        ...skipped.map((id) => `  ${id}: not found or not ${from}`)
      ].join("\n")
    )
    if (skipped.length > 0) {
      return yield* fail(`${plural(skipped.length, "row")} could not be ${verb} (not found or not ${from})`)
    }
  })

const retry = Command.make(
  "retry",
  {
    ids,
    allParked: Flag.Boolean("all-parked").pipe(Flag.withDescription("retry every parked row"), Flag.withDefault(false))
  },
  Effect.fn(function* ({ ids, allParked }) {
    if (allParked && ids.length > 0) return yield* fail("give either ids or --all-parked, not both")
    if (!allParked && ids.length === 0) return yield* fail("give the ids of the rows to retry, or --all-parked")
    const changed = yield* withOutbox((admin) => (allParked ? admin.retryAllParked : admin.retry(ids)))
    yield* outcome("retried", "parked or failed", allParked ? "all" : ids, changed)
  })
).pipe(Command.withDescription("Makes parked or failed rows pending, due now, with a fresh attempt count"))

const park = Command.make(
  "park",
  { ids },
  Effect.fn(function* ({ ids }) {
    if (ids.length === 0) return yield* fail("give the ids of the rows to park")
    const changed = yield* withOutbox((admin) => admin.park(ids))
    yield* outcome("parked", "pending or failed", ids, changed)
  })
).pipe(Command.withDescription("Parks pending or failed rows: the relay leaves them until retried"))

export const outbox = Command.make("outbox").pipe(
  Command.withDescription("The SQL outbox: status, rows, retry and park"),
  Command.withSubcommands([status, list, retry, park])
)
