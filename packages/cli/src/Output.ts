/**
 * What the cli prints: aligned tables and sentences for people, JSON for
 * scripts (`--json`), and the one error type commands fail with, whose
 * message is shown as it is.
 *
 * @since 0.1.0
 */
import { Console, Data, Effect } from "effect"
import { CliError } from "effect/cli"

/**
 * A command that could not do its work, with a message for the person who
 * ran it: what was wrong and where (a host, never a password). The cli prints
 * it and exits with 1.
 */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason
  }
  override get [CliError.userMessage](): string {
    return this.reason
  }
}

/** Fails the command with `reason`. */
export const fail = (reason: string): Effect.Effect<never, CommandFailed> => Effect.fail(new CommandFailed({ reason }))

/** One column of a table: its header and how to show a row's cell. */
export interface Column<A> {
  readonly header: string
  readonly cell: (row: A) => string
  /** Right-aligned (numbers). */
  readonly numeric?: boolean | undefined
}

/** Rows as an aligned text table with a header line; cells are cut at `maxWidth` characters. */
export const table = <A>(columns: ReadonlyArray<Column<A>>, rows: ReadonlyArray<A>, maxWidth = 60): string => {
  const clip = (text: string) => {
    const line = text.replace(/\s+/g, " ")
    return line.length > maxWidth ? `${line.slice(0, maxWidth - 1)}…` : line
  }
  const cells = rows.map((row) => columns.map((c) => clip(c.cell(row))))
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => (r[i] as string).length)))
  const render = (values: ReadonlyArray<string>) =>
    values
      .map((v, i) => {
        const width = widths[i] as number
        return columns[i]?.numeric === true ? v.padStart(width) : v.padEnd(width)
      })
      .join("  ")
      .trimEnd()
  return [render(columns.map((c) => c.header)), ...cells.map(render)].join("\n")
}

/** Prints `value` as JSON when `json` is set, otherwise the human text. */
export const emit = (json: boolean, value: unknown, human: () => string): Effect.Effect<void> =>
  Console.log(json ? JSON.stringify(value, null, 2) : human())

/** A duration in milliseconds as a short age: `45s`, `12m 3s`, `2h 5m`, `3d 4h`. */
export const age = (millis: number): string => {
  const s = Math.max(0, Math.floor(millis / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${s % 60}s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h ${m % 60}m`
  return `${Math.floor(h / 24)}d ${h % 24}h`
}

/** Epoch milliseconds as an ISO-8601 time, or `-`. */
export const time = (millis: number | undefined): string =>
  millis === undefined || !Number.isFinite(millis) ? "-" : new Date(millis).toISOString()

/** "1 dead letter", "3 dead letters". */
export const plural = (n: number, noun: string, nouns = `${noun}s`): string => `${n} ${n === 1 ? noun : nouns}`
