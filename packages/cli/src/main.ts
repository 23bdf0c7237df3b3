/**
 * The `lossless` executable: runs the cli on the process arguments and exits
 * with its exit code.
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect, Runtime } from "effect"
import { main } from "./Cli.ts"

/** A non-zero exit; what went wrong is already printed. */
class Exit {
  readonly [Runtime.errorExitCode]: number
  constructor(code: number) {
    this[Runtime.errorExitCode] = code
  }
}

main(process.argv.slice(2)).pipe(
  Effect.flatMap((code) => (code === 0 ? Effect.void : Effect.fail(new Exit(code)))),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
