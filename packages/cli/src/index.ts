/**
 * @lossless/cli: the `lossless` command for operating Lossless: the SQL
 * outbox, dead letters, loss reports, topology and benchmarks, against any
 * transport and store chosen by URL.
 *
 * The executable is `bin/lossless.js`; this entry point exposes the command
 * tree so it can be run in-process (`Cli.main(args)` returns the exit code).
 *
 * @since 0.1.0
 */

/** The command tree and `main`. */
export * as Cli from "./Cli.ts"
/** Where the cli connects: transport and outbox database by URL. */
export * as Connections from "./Connections.ts"
/** Tables, JSON and the command failure type. */
export * as Output from "./Output.ts"
