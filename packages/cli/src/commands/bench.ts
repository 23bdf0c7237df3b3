/**
 * `lossless bench [args...]`: runs the repository's benchmark suite
 * (`benchmarks/src/main.ts`) in a child process with the same Node.js,
 * passing the arguments through (`lossless bench -- --full --only rabbitmq`).
 * Its output goes straight to the terminal; its exit code becomes ours.
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { Argument, Command } from "effect/cli"
import { fail } from "../Output.ts"

/** `src/commands` (or `dist/commands`) → the repository root → the suite. */
const suite = fileURLToPath(new URL("../../../../benchmarks/src/main.ts", import.meta.url))

const run = (args: ReadonlyArray<string>) =>
  Effect.callback<number, Error>((resume) => {
    const child = spawn(process.execPath, ["--conditions=@lossless/source", suite, ...args], { stdio: "inherit" })
    child.once("error", (error) => resume(Effect.fail(error)))
    child.once("exit", (code, signal) => resume(Effect.succeed(code ?? (signal === null ? 1 : 128))))
    // Interrupted (Ctrl-C): stop the suite too.
    return Effect.sync(() => {
      if (child.exitCode === null) child.kill("SIGINT")
    })
  })

export const bench = Command.make(
  "bench",
  {
    args: Argument.String("args").pipe(
      Argument.withDescription("passed to the benchmark suite (after --), e.g. -- --full --only rabbitmq"),
      Argument.variadic()
    )
  },
  Effect.fn(function* ({ args }) {
    if (!existsSync(suite)) {
      return yield* fail(
        `the benchmark suite is not part of this installation (looked for ${suite}); run it from a checkout`
      )
    }
    const code = yield* run(args).pipe(Effect.catch((error) => fail(`cannot start the benchmarks: ${error.message}`)))
    if (code !== 0) return yield* fail(`the benchmarks exited with code ${code}`)
  })
).pipe(Command.withDescription("Runs the benchmark suite (arguments after -- are passed through)"))
