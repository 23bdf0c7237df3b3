/**
 * The chaos test's consumer processes (`consumer.ts`), owned by a scope:
 * started with this process's Node (which strips the types), watched
 * through their status lines, killed on command, and stopped when the scope
 * closes — SIGTERM, then SIGKILL if they do not go — so that no run, passed
 * or failed, leaves one behind. A process whose parent dies sees its stdin
 * close and stops as well.
 */
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { Effect, type Scope } from "effect"
import { type ConsumerSettings, idleStatus, type Status, statusMarker } from "./shared.ts"

const script = fileURLToPath(new URL("./consumer.ts", import.meta.url))

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface ConsumerProcess {
  readonly name: string
  readonly pid: number
  /** The last status it reported. */
  readonly status: () => Status
  /** Whether it reported that both its consumers run. */
  readonly ready: () => boolean
  /** How it ended, once it has. */
  readonly exited: () => Exited | undefined
  /** Its last log lines, for failure messages. */
  readonly logs: () => string
  /** Kills it with SIGKILL, as a crash would, and waits until it is gone. */
  readonly kill: Effect.Effect<void>
}

const keptLogLines = 40

/** Spawns the process and follows its output; `stop` ends it, politely first. */
const launch = (name: string, settings: ConsumerSettings) => {
  const child = spawn(process.execPath, ["--conditions=@lossless/source", script, JSON.stringify(settings)], {
    stdio: ["pipe", "pipe", "pipe"]
  })
  let exited: Exited | undefined
  const gone = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = { code, signal }
      resolve()
    })
  )
  let status = idleStatus
  let ready = false
  const lines: Array<string> = []
  const keep = (line: string) => {
    lines.push(line)
    if (lines.length > keptLogLines) lines.shift()
  }
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (!line.startsWith(statusMarker)) return keep(line)
    status = JSON.parse(line.slice(statusMarker.length)) as Status
    if (status.event === "ready") ready = true
  })
  createInterface({ input: child.stderr }).on("line", keep)

  const stop = async (): Promise<void> => {
    if (exited !== undefined) return
    child.kill("SIGTERM")
    child.stdin.end()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([gone, new Promise<void>((resolve) => (timer = setTimeout(resolve, 15_000)))])
    clearTimeout(timer)
    if (exited === undefined) {
      child.kill("SIGKILL")
      await gone
    }
  }

  const handle: ConsumerProcess = {
    name,
    pid: child.pid ?? -1,
    status: () => status,
    ready: () => ready,
    exited: () => exited,
    logs: () => lines.join("\n"),
    kill: Effect.promise(() => {
      child.kill("SIGKILL")
      return gone
    })
  }
  return { handle, stop }
}

/** Starts a consumer process in the current scope; succeeds once both its consumers run. */
export const start = (
  name: string,
  settings: ConsumerSettings,
  readyWithinMillis = 60_000
): Effect.Effect<ConsumerProcess, never, Scope.Scope> =>
  Effect.gen(function* () {
    const launched = yield* Effect.acquireRelease(
      Effect.sync(() => launch(name, settings)),
      ({ stop }) => Effect.promise(stop)
    )
    const consumer = launched.handle
    const deadline = Date.now() + readyWithinMillis
    while (!consumer.ready()) {
      const exited = consumer.exited()
      if (exited !== undefined || Date.now() > deadline) {
        const why =
          exited === undefined ? `not ready after ${readyWithinMillis} ms` : `exited ${JSON.stringify(exited)}`
        return yield* Effect.die(new Error(`${name} did not start (${why}):\n${consumer.logs()}`))
      }
      yield* Effect.sleep("20 millis")
    }
    return consumer
  })
