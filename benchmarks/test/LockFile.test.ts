import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Fiber } from "effect"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import * as LockFile from "../src/LockFile.ts"

const dir = mkdtempSync(join(tmpdir(), "lossless-bench-lock-"))
const path = join(dir, "broker.lock")
afterEach(() => rmSync(path, { force: true }))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A process id that no running process has: that of a child that has exited. */
const deadPid = (): number => {
  const child = spawnSync(process.execPath, ["-e", "0"])
  return child.pid as number
}

const options = { staleAfterMs: 60_000, pollMs: 10 }

describe("the lock file", () => {
  it("is written with this process's id, and removed when the scope closes", async () => {
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          yield* LockFile.hold(path, options)
          expect(readFileSync(path, "utf8")).toBe(String(process.pid))
        })
      )
    )
    expect(existsSync(path)).toBe(false)
  })

  it("waits while a live process holds it, saying so once, and takes it when released", async () => {
    writeFileSync(path, String(process.ppid))
    const waits: Array<number> = []
    const taken = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(
            LockFile.hold(path, { ...options, onWait: (holder) => waits.push(holder) })
          )
          yield* Effect.sleep(80)
          const waiting = readFileSync(path, "utf8")
          rmSync(path)
          yield* Fiber.join(fiber)
          return { waiting, holder: readFileSync(path, "utf8") }
        })
      )
    )
    expect(taken).toEqual({ waiting: String(process.ppid), holder: String(process.pid) })
    expect(waits).toEqual([process.ppid])
  })

  it("takes over a lock whose process is gone, or that is older than the limit", () => {
    writeFileSync(path, String(deadPid()))
    expect(LockFile.tryLock(path, 60_000)).toBeUndefined()
    expect(readFileSync(path, "utf8")).toBe(String(process.pid))

    writeFileSync(path, String(process.ppid))
    expect(LockFile.tryLock(path, 60_000)).toBe(process.ppid)
    const old = new Date(Date.now() - 120_000)
    utimesSync(path, old, old)
    expect(LockFile.tryLock(path, 60_000)).toBeUndefined()
  })

  it("leaves a lock another process took over in place when released", async () => {
    await Effect.runPromise(
      Effect.scoped(
        Effect.andThen(
          LockFile.hold(path, options),
          Effect.sync(() => writeFileSync(path, String(process.ppid)))
        )
      )
    )
    expect(readFileSync(path, "utf8")).toBe(String(process.ppid))
  })
})
