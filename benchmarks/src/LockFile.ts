/**
 * A lock file naming its holder's process, the way the project's RabbitMQ
 * test suites take turns on the broker (some of them close every connection
 * or restart it). The benchmark takes the same lock while it measures
 * RabbitMQ, so neither disturbs the other.
 *
 * Created with `wx` (fails when it exists); a lock whose process is gone, or
 * older than `staleAfterMs`, has been left behind and is taken over.
 */
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { Effect, type Scope } from "effect"

export interface LockOptions {
  /** A lock older than this is taken over, whoever holds it. */
  readonly staleAfterMs: number
  /** How often to look again while another process holds it. */
  readonly pollMs: number
  /** Called once when the lock is held by another process and the caller starts waiting. */
  readonly onWait?: ((holder: number) => void) | undefined
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Tries once: `undefined` when taken, else the holder's pid (NaN when unreadable). */
export const tryLock = (path: string, staleAfterMs: number): number | undefined => {
  try {
    writeFileSync(path, String(process.pid), { flag: "wx" })
    return undefined
  } catch {
    let holder = Number.NaN
    try {
      holder = Number(readFileSync(path, "utf8"))
    } catch {
      // Released between the two calls: try again at once.
      return tryLock(path, staleAfterMs)
    }
    const age = Date.now() - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? Date.now())
    if ((Number.isInteger(holder) && holder > 0 && !alive(holder)) || age > staleAfterMs) {
      rmSync(path, { force: true })
      return tryLock(path, staleAfterMs)
    }
    return holder
  }
}

/** Holds the lock at `path` for the scope, waiting while another live process holds it. */
export const hold = (path: string, options: LockOptions): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      let told = false
      for (;;) {
        const holder = tryLock(path, options.staleAfterMs)
        if (holder === undefined) return
        if (!told) {
          told = true
          options.onWait?.(holder)
        }
        yield* Effect.sleep(options.pollMs)
      }
    }),
    () =>
      Effect.sync(() => {
        // Only our own: after a takeover the file may name another process.
        try {
          if (Number(readFileSync(path, "utf8")) === process.pid) rmSync(path, { force: true })
        } catch {
          // already gone
        }
      })
  )
