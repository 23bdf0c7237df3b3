/**
 * `lossless dlq`: a group's dead letters, read through
 * `Transport.subscribeDeadLetters`.
 *
 * Reading never consumes: `list` and `show` hold the dead letters they read
 * unsettled and release them when they finish, so the broker keeps every one.
 * `redrive` republishes the selected dead letters to their original topic
 * with the same message id (dedupe still recognises a message some group
 * already handled) and without the dead-letter reason headers, waits for the
 * broker's confirm, and only then acks the dead letter. Dead letters it does
 * not select are released, not acked: they stay in the dead-letter queue.
 *
 * A read ends after `--scan` dead letters or when none arrives for `--wait`.
 *
 * @since 0.1.0
 */
import { DeadLetter, type Delivery, type Envelope, Headers, Transport } from "@lossless/core"
import { Clock, Duration, Effect, Option, Schedule, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { duration, lossless, name, positive, rate } from "../Args.ts"
import { withTransport } from "../Connections.ts"
import { age, emit, fail, plural, table } from "../Output.ts"

/** A dead letter as the commands show it. */
interface Entry {
  readonly id: string
  readonly originalTopic: string
  readonly key: string | undefined
  readonly error: string
  readonly failedAt: string | undefined
  readonly attempt: number
  readonly ageMs: number | undefined
}

const entryOf = (envelope: Envelope.Envelope, topic: string, now: number): Entry => {
  const reason = DeadLetter.reason(envelope)
  const failedAt = reason?.failedAt ?? envelope.headers[Headers.FailedAt]
  const at = failedAt === undefined ? Number.NaN : Date.parse(failedAt)
  return {
    id: envelope.id,
    originalTopic: reason?.originalTopic ?? topic,
    key: envelope.key,
    error: reason?.error ?? envelope.headers[Headers.ErrorMessage] ?? "",
    failedAt,
    attempt: reason?.attempt ?? 1,
    ageMs: Number.isFinite(at) ? Math.max(0, now - at) : undefined
  }
}

interface Filters {
  readonly olderThan: Option.Option<Duration.Duration>
  readonly error: Option.Option<string>
}

const matches = (entry: Entry, filters: Filters): boolean =>
  (Option.isNone(filters.olderThan) ||
    (entry.ageMs !== undefined && entry.ageMs >= Duration.toMillis(filters.olderThan.value))) &&
  (Option.isNone(filters.error) || entry.error.toLowerCase().includes(filters.error.value.toLowerCase()))

const where = {
  topic: name("topic").pipe(Flag.withDescription("the topic the group consumes")),
  group: name("group").pipe(Flag.withDescription("the group whose dead letters to read")),
  scan: positive("scan").pipe(
    Flag.withDescription("most dead letters read (held unsettled while reading)"),
    Flag.withDefault(1000)
  ),
  wait: duration("wait").pipe(
    Flag.withDescription("stop reading when no dead letter arrives for this long"),
    Flag.withDefault(Duration.seconds(1))
  )
}

const filters = {
  olderThan: duration("older-than").pipe(
    Flag.withDescription("only dead letters that failed at least this long ago"),
    Flag.optional
  ),
  error: Flag.String("error").pipe(
    Flag.withDescription("only dead letters whose error contains this text (any case)"),
    Flag.optional
  )
}

/**
 * The group's dead letters, up to `scan`, ending when none arrives for
 * `wait`. Whatever the consumer of this stream leaves unsettled is released
 * when the stream ends.
 */
const deadLetters = (options: {
  readonly topic: string
  readonly group: string
  readonly scan: number
  readonly wait: Duration.Duration
}): Stream.Stream<Delivery.Delivery, unknown, Transport.Transport> =>
  Stream.unwrap(
    Effect.map(Transport.Transport, (transport) =>
      transport
        .subscribeDeadLetters(options.topic, options.group, { prefetch: options.scan })
        .pipe(Stream.take(options.scan), Stream.timeout(options.wait))
    )
  )

const entryColumns = [
  { header: "MESSAGE ID", cell: (e: Entry) => e.id },
  { header: "KEY", cell: (e: Entry) => e.key ?? "-" },
  { header: "FAILED", cell: (e: Entry) => (e.ageMs === undefined ? "-" : `${age(e.ageMs)} ago`) },
  { header: "ATTEMPT", cell: (e: Entry) => String(e.attempt), numeric: true },
  { header: "ERROR", cell: (e: Entry) => e.error }
]

const list = Command.make(
  "list",
  {
    ...where,
    ...filters,
    limit: positive("limit").pipe(Flag.withDescription("most dead letters shown"), Flag.withDefault(50))
  },
  Effect.fn(function* (args) {
    const { json } = yield* lossless
    const now = yield* Clock.currentTimeMillis
    const { read, shown } = yield* withTransport(
      Effect.gen(function* () {
        const all = yield* Stream.runCollect(deadLetters(args))
        const entries = all.map((d) => entryOf(d.envelope, args.topic, now))
        return { read: entries.length, shown: entries.filter((e) => matches(e, args)).slice(0, args.limit) }
      })
    )
    yield* emit(json, { topic: args.topic, group: args.group, read, deadLetters: shown }, () =>
      [
        `${read >= args.scan ? "at least " : ""}${plural(read, "dead letter")} in ${args.topic}/${args.group}, ${shown.length} shown (none consumed)${read >= args.scan ? "; raise --scan to read more" : ""}`,
        ...(shown.length === 0 ? [] : ["", table(entryColumns, shown)])
      ].join("\n")
    )
  })
).pipe(Command.withDescription("Lists a group's dead letters without consuming them"))

const text = new TextDecoder("utf-8", { fatal: true })

const payloadOf = (payload: Uint8Array): { readonly encoding: "utf8" | "base64"; readonly data: string } => {
  try {
    return { encoding: "utf8", data: text.decode(payload) }
  } catch {
    return { encoding: "base64", data: Buffer.from(payload).toString("base64") }
  }
}

const show = Command.make(
  "show",
  { ...where, id: Argument.String("message-id").pipe(Argument.withDescription("the dead letter's message id")) },
  Effect.fn(function* (args) {
    const { json } = yield* lossless
    const now = yield* Clock.currentTimeMillis
    const found = yield* withTransport(
      Effect.map(
        Stream.runHead(Stream.filter(deadLetters(args), (d) => d.envelope.id === args.id)),
        Option.map((d) => d.envelope)
      )
    )
    if (Option.isNone(found)) {
      return yield* fail(`no dead letter with id ${args.id} in ${args.topic}/${args.group}`)
    }
    const envelope = found.value
    const entry = entryOf(envelope, args.topic, now)
    const payload = payloadOf(envelope.payload)
    yield* emit(json, { ...entry, headers: envelope.headers, timestamp: envelope.timestamp, payload }, () =>
      [
        `message id:     ${entry.id}`,
        `original topic: ${entry.originalTopic}`,
        `group:          ${args.group}`,
        `key:            ${entry.key ?? "-"}`,
        `created:        ${new Date(envelope.timestamp).toISOString()}`,
        `failed at:      ${entry.failedAt ?? "-"}${entry.ageMs === undefined ? "" : ` (${age(entry.ageMs)} ago)`}`,
        `attempt:        ${entry.attempt}`,
        `error:          ${entry.error}`,
        "headers:",
        ...Object.entries(envelope.headers).map(([k, v]) => `  ${k}: ${v}`),
        `payload (${payload.encoding}):`,
        payload.data
      ].join("\n")
    )
  })
).pipe(Command.withDescription("Shows one dead letter, headers and payload, without consuming it"))

const redrive = Command.make(
  "redrive",
  {
    ...where,
    ...filters,
    limit: positive("limit").pipe(Flag.withDescription("most dead letters re-driven"), Flag.optional),
    rate: rate("rate").pipe(Flag.withDescription("most re-drives per second, e.g. 50/s"), Flag.optional),
    dryRun: Flag.Boolean("dry-run").pipe(
      Flag.withDescription("say what would be re-driven, change nothing"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* (args) {
    const { json } = yield* lossless
    const now = yield* Clock.currentTimeMillis
    const limit = Option.getOrElse(args.limit, () => Number.POSITIVE_INFINITY)
    const result = yield* withTransport(
      Effect.gen(function* () {
        // A re-driven message can fail again and come back during this run: never twice in one run.
        const seen = new Set<string>()
        let picked = 0
        let read = 0
        const chosen = deadLetters(args).pipe(
          Stream.filter((delivery) => {
            if (seen.has(delivery.envelope.id)) return false
            seen.add(delivery.envelope.id)
            read++
            const pick = picked < limit && matches(entryOf(delivery.envelope, args.topic, now), args)
            if (pick) picked++
            return pick
          })
        )
        const paced = Option.match(args.rate, {
          onNone: () => chosen,
          onSome: (perSecond) => Stream.schedule(chosen, Schedule.spaced(Duration.millis(1000 / perSecond)))
        })
        const redriven: Array<{ readonly id: string; readonly topic: string }> = []
        yield* Stream.runForEach(paced, (delivery) => {
          const back = DeadLetter.redrive(delivery.envelope)
          if (args.dryRun) return Effect.sync(() => redriven.push({ id: back.id, topic: back.topic }))
          return Transport.publishOne(back).pipe(
            Effect.andThen(delivery.ack),
            Effect.andThen(Effect.sync(() => redriven.push({ id: back.id, topic: back.topic })))
          )
        }).pipe(
          // What was re-driven before a failure stays re-driven: report it with the failure.
          Effect.mapError((error) => ({ error, redriven: redriven.length }))
        )
        return { read, redriven }
      }).pipe(
        Effect.catch(({ error, redriven }) =>
          fail(
            `re-drive stopped after ${plural(redriven, "dead letter")}: ${
              typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)
            }`
          )
        )
      )
    )
    const targets = [...new Set(result.redriven.map((r) => r.topic))]
    const sentence = `${args.dryRun ? "would redrive" : "redrove"} ${result.redriven.length} of ${plural(result.read, "dead letter")} from ${args.topic}/${args.group} to ${targets.length === 0 ? args.topic : targets.join(", ")}`
    yield* emit(
      json,
      { dryRun: args.dryRun, topic: args.topic, group: args.group, read: result.read, redriven: result.redriven },
      () => [sentence, ...(args.dryRun ? result.redriven.map((r) => `  ${r.id} -> ${r.topic}`) : [])].join("\n")
    )
  })
).pipe(Command.withDescription("Republishes selected dead letters to their topic (same id), then removes them"))

export const dlq = Command.make("dlq").pipe(
  Command.withDescription("A group's dead letters: list, show, redrive"),
  Command.withSubcommands([list, show, redrive])
)
