/**
 * `lossless loss report`: gaps in the producers' sequence numbers, seen on
 * one topic for a window of time.
 *
 * Two ways to watch, neither of which loses or takes a message from the
 * application:
 *
 * - **Peek** (default) at an existing group: the command subscribes to the
 *   group, observes what it is handed, and never settles it. When the window
 *   ends the deliveries are released and the broker hands them out again to
 *   the group's own consumers. It sees the backlog waiting in the group (up
 *   to `--scan` messages) and a share of the new messages while it runs.
 * - **Audit** (`--audit`): the group is the command's own, declared on the
 *   topic if missing. Every group gets every message, so it sees the whole
 *   stream without competing with anyone; it acks what it read, which only
 *   removes the audit group's copies.
 *
 * A gap still open when the window ends is reported missing.
 *
 * @since 0.1.0
 */
import { Headers, LossDetector, Transport } from "@lossless/core"
import { Clock, Duration, Effect, Stream } from "effect"
import { Command, Flag } from "effect/cli"
import { duration, lossless, name, positive } from "../Args.ts"
import { withTransport } from "../Connections.ts"
import { emit, plural, table } from "../Output.ts"

/** What was seen of one sequence stream (producer, topic, partition). */
interface StreamSeen {
  readonly producerId: string
  readonly topic: string
  readonly partition: number
  observed: number
  first: number
  last: number
}

interface Missing {
  readonly producerId: string
  readonly topic: string
  readonly partition: number
  readonly from: number
  readonly to: number
  readonly count: number
}

const report = Command.make(
  "report",
  {
    topic: name("topic").pipe(Flag.withDescription("the topic to watch")),
    group: name("group").pipe(Flag.withDescription("the group to peek at, or the audit group with --audit")),
    window: duration("window").pipe(
      Flag.withDescription("how long to watch; gaps still open then are reported"),
      Flag.withDefault(Duration.seconds(5))
    ),
    audit: Flag.Boolean("audit").pipe(
      Flag.withDescription("the group is a dedicated audit group: declare it and ack what it reads"),
      Flag.withDefault(false)
    ),
    scan: positive("scan").pipe(
      Flag.withDescription("most messages held unsettled at once while peeking"),
      Flag.withDefault(1000)
    )
  },
  Effect.fn(function* (args) {
    const { json } = yield* lossless
    const start = yield* Clock.currentTimeMillis
    const tracker = new LossDetector.Tracker(start, { graceWindow: args.window, maxReportedGaps: 10_000 })
    const streams = new Map<string, StreamSeen>()
    let messages = 0
    yield* withTransport(
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        if (args.audit) {
          yield* transport.ensureTopology({ topics: [args.topic], groups: [{ topic: args.topic, group: args.group }] })
        }
        const deliveries = transport
          .subscribe(args.topic, args.group, { prefetch: args.scan })
          .pipe(Stream.interruptWhen(Effect.sleep(args.window)))
        yield* Stream.runForEach(deliveries, (delivery) =>
          Effect.gen(function* () {
            messages++
            const envelope = delivery.envelope
            tracker.observe(
              envelope,
              { attempt: delivery.attempt, redelivered: delivery.redelivered },
              yield* Clock.currentTimeMillis
            )
            const producerId = envelope.headers[Headers.ProducerId]
            const [partition, sequence] = (envelope.headers[Headers.Sequence] ?? "").split(":").map(Number)
            if (producerId !== undefined && Number.isInteger(partition) && Number.isInteger(sequence)) {
              const id = `${producerId}\u0000${partition}`
              const seen = streams.get(id)
              if (seen === undefined) {
                streams.set(id, {
                  producerId,
                  topic: envelope.topic,
                  partition: partition as number,
                  observed: 1,
                  first: sequence as number,
                  last: sequence as number
                })
              } else {
                seen.observed++
                seen.first = Math.min(seen.first, sequence as number)
                seen.last = Math.max(seen.last, sequence as number)
              }
            }
            // Peeking never settles: the deliveries go back to the group when the window ends.
            if (args.audit) yield* delivery.ack
          })
        )
      })
    )
    // The window is over: whatever is still missing counts, however recently the gap opened.
    const end = yield* Clock.currentTimeMillis
    tracker.sweep(end + Duration.toMillis(args.window) + 1)
    const result = tracker.report()
    const missing: Array<Missing> = result.gaps.map((g) => ({
      producerId: g.producerId,
      topic: g.topic,
      partition: g.partition,
      from: g.from,
      to: g.to,
      count: g.to - g.from + 1
    }))
    const seen = [...streams.values()].sort((a, b) =>
      a.producerId === b.producerId ? a.partition - b.partition : a.producerId < b.producerId ? -1 : 1
    )
    const mode = args.audit ? "audit group" : "peek, nothing settled"
    yield* emit(
      json,
      {
        topic: args.topic,
        group: args.group,
        mode: args.audit ? "audit" : "peek",
        windowMs: Duration.toMillis(args.window),
        messages,
        stamped: result.observed,
        missing: missing.reduce((n, m) => n + m.count, 0),
        duplicates: result.duplicates,
        streams: seen.map((s) => ({
          ...s,
          missing: missing.filter((m) => m.producerId === s.producerId && m.partition === s.partition)
        })),
        gaps: missing
      },
      () =>
        [
          `watched ${args.topic}/${args.group} for ${Duration.format(args.window)} (${mode}): ${plural(messages, "message")}, ${result.observed} stamped, ${plural(seen.length, "stream")}`,
          ...(seen.length === 0
            ? []
            : [
                "",
                table(
                  [
                    { header: "PRODUCER", cell: (s: StreamSeen) => s.producerId },
                    { header: "STREAM", cell: (s: StreamSeen) => `${s.topic}[${s.partition}]` },
                    { header: "SEEN", cell: (s: StreamSeen) => String(s.observed), numeric: true },
                    { header: "SEQUENCES", cell: (s: StreamSeen) => `${s.first}..${s.last}` },
                    {
                      header: "MISSING",
                      cell: (s: StreamSeen) =>
                        missing
                          .filter((m) => m.producerId === s.producerId && m.partition === s.partition)
                          .map((m) => (m.from === m.to ? `${m.from}` : `${m.from}..${m.to}`))
                          .join(", ") || "-"
                    }
                  ],
                  seen,
                  80
                )
              ]),
          "",
          missing.length === 0
            ? `no gaps${result.duplicates > 0 ? `; ${plural(result.duplicates, "duplicate")}` : ""}`
            : `${plural(
                missing.reduce((n, m) => n + m.count, 0),
                "message"
              )} missing in ${plural(missing.length, "gap")}${result.duplicates > 0 ? `; ${plural(result.duplicates, "duplicate")}` : ""}`
        ].join("\n")
    )
  })
).pipe(Command.withDescription("Watches a topic through a group and reports gaps in producers' sequences"))

export const loss = Command.make("loss").pipe(
  Command.withDescription("Loss detection: sequence gaps per producer and stream"),
  Command.withSubcommands([report])
)
