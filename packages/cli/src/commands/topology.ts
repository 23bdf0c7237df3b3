/**
 * `lossless topology apply`: declares topics and groups (and what they need:
 * retry and dead-letter destinations) on the transport. Idempotent.
 *
 * From flags: `--topic orders --group billing` (a bare group joins every
 * `--topic`), or `--group orders/billing`; or from a JSON file:
 * `{ "topics": ["orders"], "groups": [{ "topic": "orders", "group": "billing" }] }`.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { Names, Transport } from "@lossless/core"
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { lossless } from "../Args.ts"
import { withTransport } from "../Connections.ts"
import { emit, fail, plural } from "../Output.ts"

/** Reads and checks a topology file; every problem names the file and the entry. */
const fromFile = (path: string): Transport.Topology => {
  let raw: string
  try {
    raw = readFileSync(path, "utf8")
  } catch (error) {
    throw new Error(`--file: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch (error) {
    throw new Error(`--file: ${path} is not JSON: ${error instanceof Error ? error.message : String(error)}`)
  }
  const shape = parsed as { topics?: unknown; groups?: unknown }
  const topics = shape?.topics ?? []
  const groups = shape?.groups ?? []
  if (!Array.isArray(topics) || !topics.every((t) => typeof t === "string")) {
    throw new Error(`--file: ${path}: "topics" must be an array of names`)
  }
  if (
    !Array.isArray(groups) ||
    !groups.every(
      (g) => typeof g === "object" && g !== null && typeof g.topic === "string" && typeof g.group === "string"
    )
  ) {
    throw new Error(`--file: ${path}: "groups" must be an array of { "topic": ..., "group": ... }`)
  }
  return { topics, groups }
}

/** The topology the flags describe. */
const fromFlags = (topics: ReadonlyArray<string>, groups: ReadonlyArray<string>): Transport.Topology => ({
  topics,
  groups: groups.flatMap((spec) => {
    const slash = spec.indexOf("/")
    if (slash >= 0) return [{ topic: spec.slice(0, slash), group: spec.slice(slash + 1) }]
    if (topics.length === 0) throw new Error(`--group ${spec}: name its topic (--topic t, or --group t/${spec})`)
    return topics.map((topic) => ({ topic, group: spec }))
  })
})

const check = (topology: Transport.Topology): Transport.Topology => {
  for (const topic of [...topology.topics, ...topology.groups.map((g) => g.topic)]) Names.validateSync("topic", topic)
  for (const { group } of topology.groups) Names.validateSync("group", group)
  return { topics: [...new Set([...topology.topics, ...topology.groups.map((g) => g.topic)])], groups: topology.groups }
}

const apply = Command.make(
  "apply",
  {
    topics: Flag.String("topic").pipe(Flag.withDescription("a topic to declare (repeatable)"), Flag.atLeast(0)),
    groups: Flag.String("group").pipe(
      Flag.withDescription("a group to declare: <group> on every --topic, or <topic>/<group> (repeatable)"),
      Flag.atLeast(0)
    ),
    file: Flag.String("file").pipe(Flag.withDescription("a JSON file with topics and groups"), Flag.optional)
  },
  Effect.fn(function* ({ topics, groups, file }) {
    const { json } = yield* lossless
    if (Option.isSome(file) && (topics.length > 0 || groups.length > 0)) {
      return yield* fail("give either --file or --topic/--group, not both")
    }
    const topology = yield* Effect.try({
      try: () => check(Option.isSome(file) ? fromFile(file.value) : fromFlags(topics, groups)),
      catch: (error) => (error instanceof Error ? error.message : String(error))
    }).pipe(Effect.catch(fail))
    if (topology.topics.length === 0) return yield* fail("nothing to declare: give --topic, --group or --file")
    yield* withTransport(Transport.Transport.use((transport) => transport.ensureTopology(topology)))
    yield* emit(json, { applied: topology }, () =>
      [
        `declared ${plural(topology.topics.length, "topic")} and ${plural(topology.groups.length, "group")}`,
        ...topology.topics.map((t) => `  topic ${t}`),
        ...topology.groups.map((g) => `  group ${g.topic}/${g.group}`)
      ].join("\n")
    )
  })
).pipe(Command.withDescription("Declares topics and groups (idempotent)"))

export const topology = Command.make("topology").pipe(
  Command.withDescription("Topics and groups on the transport"),
  Command.withSubcommands([apply])
)
