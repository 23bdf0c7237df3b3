/**
 * The `lossless` command tree, and `main`, which runs it on arguments and
 * turns the outcome into an exit code: 0 on success, 1 when a command
 * failed, 2 for arguments the cli does not accept. Every failure is printed
 * before `main` returns.
 *
 * @since 0.1.0
 */
import { Cause, Console, Effect, References } from "effect"
import { CliError, Command } from "effect/cli"
import { lossless } from "./Args.ts"
import { bench } from "./commands/bench.ts"
import { dlq } from "./commands/dlq.ts"
import { loss } from "./commands/loss.ts"
import { outbox } from "./commands/outbox.ts"
import { topology } from "./commands/topology.ts"
import { CommandFailed } from "./Output.ts"

/** The cli's version, as `lossless --version` prints it. */
export const version = "0.1.0"

/** Every command. */
export const command = lossless.pipe(
  Command.withDescription("Operate Lossless: outbox, dead letters, loss reports, topology, benchmarks"),
  Command.withSubcommands([outbox, dlq, loss, topology, bench])
)

/** Exit codes. */
export const exitCodes = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const

/** Runs the cli on `args` (without `node` and the script); returns the exit code. */
export const main = (args: ReadonlyArray<string>) =>
  Command.runWith(command, { version })(args).pipe(
    // Library warnings (reconnect attempts) would clutter the output; --log-level shows them.
    Effect.provideService(References.MinimumLogLevel, "Error"),
    Effect.as(exitCodes.ok as number),
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.succeed(exitCodes.interrupted)
      const error = Cause.squash(cause)
      // effect/cli has already printed help with the parse errors, and our own failures' messages.
      if (error instanceof CommandFailed) return Effect.succeed(exitCodes.failed)
      if (CliError.isCliError(error)) {
        return Effect.succeed(error._tag === "ShowHelp" && error.errors.length === 0 ? exitCodes.ok : exitCodes.usage)
      }
      return Effect.as(Console.error(`lossless: unexpected failure: ${Cause.pretty(cause)}`), exitCodes.failed)
    })
  )
