/**
 * The global flags every command shares, and parsers for flag values that
 * name the problem when a value is wrong.
 *
 * @since 0.1.0
 */
import { Names } from "@lossless/core"
import { Duration, Option } from "effect"
import { Command, Flag } from "effect/cli"

/**
 * The root command with the global flags. Subcommands read them with
 * `yield* lossless`.
 */
export const lossless = Command.make("lossless").pipe(
  Command.withSharedFlags({
    url: Flag.String("url").pipe(
      Flag.withDescription("transport URL (default: LOSSLESS_URL, then memory://)"),
      Flag.optional
    ),
    store: Flag.String("store").pipe(
      Flag.withDescription(
        "outbox database: postgres://... or a SQLite file (default: LOSSLESS_POSTGRES_URL, then LOSSLESS_OUTBOX_URL)"
      ),
      Flag.optional
    ),
    tablePrefix: Flag.String("table-prefix").pipe(
      Flag.withDescription("prefix of the outbox table names, as the application configured them"),
      Flag.withDefault("lossless_")
    ),
    json: Flag.Boolean("json").pipe(Flag.withDescription("print JSON for scripts"), Flag.withDefault(false))
  })
)

const units: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000
}

/** A flag value that is wrong, with what is wrong about it. */
class BadValue extends Error {}

const why = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** `500ms`, `5s`, `10m`, `1h`, `2d`, or Effect's `5 seconds`; throws `BadValue` naming the problem. */
export const parseDuration = (raw: string): Duration.Duration => {
  const short = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)\s*$/i.exec(raw)
  if (short !== null) return Duration.millis(Number(short[1]) * (units[(short[2] as string).toLowerCase()] as number))
  const parsed = Option.liftThrowable(Duration.fromInputUnsafe)(raw as Duration.Input)
  if (Option.isSome(parsed) && Duration.isFinite(parsed.value)) return parsed.value
  throw new BadValue(`"${raw}" is not a duration (use e.g. 500ms, 30s, 10m, 1h, 2d)`)
}

/** A rate such as `50/s`, `600/m` or `20`, in messages per second; throws `BadValue` naming the problem. */
export const parseRate = (raw: string): number => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(s|sec|m|min|h))?\s*$/i.exec(raw)
  const per = match === null ? undefined : (units[(match[2] ?? "s").toLowerCase()] as number) / 1000
  const value = match === null || per === undefined ? Number.NaN : Number(match[1]) / per
  if (Number.isFinite(value) && value > 0) return value
  throw new BadValue(`"${raw}" is not a rate (use e.g. 50/s, 600/m or 20)`)
}

/** A duration flag, e.g. `--older-than 1h`. */
export const duration = (flag: string) =>
  Flag.String(flag).pipe(
    Flag.withMetavar("duration"),
    Flag.mapTryCatch(parseDuration, (e) => why(e))
  )

/** A rate flag, e.g. `--rate 50/s`. */
export const rate = (flag: string) =>
  Flag.String(flag).pipe(
    Flag.withMetavar("n/s"),
    Flag.mapTryCatch(parseRate, (e) => why(e))
  )

/** A positive whole number, e.g. `--limit 20`. */
export const positive = (flag: string) =>
  Flag.Int(flag).pipe(
    Flag.mapTryCatch(
      (n) => {
        if (n < 1) throw new BadValue(`must be at least 1, got ${n}`)
        return n
      },
      (e) => why(e)
    )
  )

/** A topic or group name, checked against the portable alphabet. */
export const name = (kind: "topic" | "group", flag: string = kind) =>
  Flag.String(flag).pipe(
    Flag.withMetavar(kind),
    Flag.mapTryCatch(
      (value) => Names.validateSync(kind, value),
      (e) => why(e)
    )
  )
