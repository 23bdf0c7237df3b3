/**
 * Runs the cli in-process, as the executable does, with its output captured
 * and the environment it reads given explicitly.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { NodeServices } from "@effect/platform-node"
import { ConfigProvider, Console, Effect, Layer } from "effect"
import { Cli } from "../src/index.ts"

export interface Outcome {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** `lossless <args>` in this process; `env` stands in for the process environment (empty by default). */
export const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Effect.Effect<Outcome> =>
  Effect.gen(function* () {
    const out: Array<string> = []
    const err: Array<string> = []
    const capture: Console.Console = {
      ...globalThis.console,
      log: (...parts: ReadonlyArray<unknown>) => out.push(parts.join(" ")),
      info: (...parts: ReadonlyArray<unknown>) => out.push(parts.join(" ")),
      error: (...parts: ReadonlyArray<unknown>) => err.push(parts.join(" ")),
      warn: (...parts: ReadonlyArray<unknown>) => err.push(parts.join(" "))
    }
    const code = yield* Cli.main(args).pipe(
      Effect.provideService(Console.Console, capture),
      Effect.provide(Layer.mergeAll(NodeServices.layer, ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
    )
    return { code, stdout: out.join("\n"), stderr: err.join("\n") }
  })

/** Parses the JSON a `--json` run printed. */
// biome-ignore lint/suspicious/noExplicitAny: the assertions check the shape
export const json = <A = any>(outcome: Outcome): A => {
  if (outcome.code !== 0) throw new Error(`exit ${outcome.code}: ${outcome.stderr}`)
  return JSON.parse(outcome.stdout) as A
}

const root = fileURLToPath(new URL("../../../", import.meta.url))

/** `lossless <args>` as a child process, from source, with the toolchain's Node.js. */
export const spawnCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Outcome> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--conditions=@lossless/source", "packages/cli/src/main.ts", ...args],
      { cwd: root, env: { PATH: process.env.PATH ?? "", ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        resolve({ code, stdout, stderr })
      }
    )
  })
