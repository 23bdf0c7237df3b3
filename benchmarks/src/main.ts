/**
 * `pnpm bench`: runs the benchmark plan on every available target and reports.
 *
 *   --quick          small plan, three to four minutes with every server up (default)
 *   --full           adds every payload size, the batch/prefetch sweep, the adapter alone, core's
 *                    features on RabbitMQ, outbox off, and the scaling sweeps
 *   --only <text>    only scenarios whose id, label or comparison contains <text>
 *   --out <dir>      where latest.{json,md,svg} go (default benchmarks/results)
 *
 * Progress goes to stderr, one line per round; the tables go to stdout.
 */
import { mkdir, writeFile } from "node:fs/promises"
import { cpus } from "node:os"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Effect } from "effect"
import * as Report from "./Report.ts"
import { runPlan, useGarbageCollector } from "./Runner.ts"
import * as Scenario from "./Scenario.ts"
import { targets } from "./targets/index.ts"
import type { Target } from "./targets/Target.ts"

const usage = `usage: pnpm bench [--quick | --full] [--only <text>] [--out <dir>]`

const parse = () => {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      full: { type: "boolean", default: false },
      only: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false }
    },
    strict: true
  })
  if (values.help) {
    process.stdout.write(`${usage}\n`)
    process.exit(0)
  }
  if (values.quick && values.full) throw new Error(`--quick and --full exclude each other\n${usage}`)
  const mode: Scenario.Mode = values.full ? "full" : "quick"
  const out = values.out === undefined ? fileURLToPath(new URL("../results/", import.meta.url)) : resolve(values.out)
  return { mode, only: values.only, out }
}

/** A full GC between rounds makes their heap figures comparable; Node exposes it when asked at run time. */
const enableGc = (): boolean => {
  try {
    setFlagsFromString("--expose-gc")
    const gc = runInNewContext("gc") as unknown
    if (typeof gc !== "function") return false
    useGarbageCollector(gc as () => void)
    return true
  } catch {
    return false
  }
}

const log = (line: string) => {
  process.stderr.write(`${line}\n`)
}

const main = Effect.gen(function* () {
  const options = yield* Effect.try({ try: parse, catch: (e) => (e instanceof Error ? e : new Error(String(e))) })
  const gc = enableGc()
  const startedAt = new Date()
  const t0 = performance.now()

  const statuses = yield* Effect.forEach(targets, (target) =>
    Effect.map(target.probe, (availability) => ({ target, availability }))
  )
  const available = new Map<string, Target>(
    statuses.filter((s) => s.availability.available).map((s) => [s.target.name, s.target])
  )
  const full = Scenario.plan(options.mode, [...available.values()])
  const plan =
    options.only === undefined ? full : { ...full, comparisons: Scenario.only(full.comparisons, options.only) }
  const used = new Set(plan.comparisons.flatMap((c) => c.scenarios.map((s) => s.target)))
  const targetStatus: Array<Report.TargetStatus> = statuses.map(({ target, availability }) => ({
    name: target.name,
    kind: target.kind,
    description: target.description,
    available: availability.available,
    reason: availability.available ? undefined : availability.reason,
    used: used.has(target.name),
    note: target.note
  }))
  log(`Targets:\n${Report.targetLines(targetStatus)}`)
  const count = plan.comparisons.reduce((n, c) => n + c.scenarios.length, 0)
  if (count === 0) {
    log(`no scenario matches${options.only === undefined ? "" : ` "${options.only}"`}`)
    return 1
  }
  log(
    `${options.mode} mode: ${count} scenarios in ${plan.comparisons.length} comparisons, ` +
      `${plan.warmupRounds} warm-up + ${plan.rounds} rounds each${gc ? ", GC before each round" : ""}`
  )

  const results = yield* runPlan(plan, available, log)
  const report: Report.RunReport = {
    startedAt: startedAt.toISOString(),
    durationMs: performance.now() - t0,
    mode: options.mode,
    only: options.only,
    environment: {
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? "unknown",
      gc
    },
    warmupRounds: plan.warmupRounds,
    rounds: plan.rounds,
    targets: targetStatus,
    skipped: plan.skipped,
    results
  }

  process.stdout.write(`\n${Report.tables(results)}\n\n`)
  const peers = Report.peerNotes(results, targetStatus)
  if (peers.length > 0) process.stdout.write(`${Report.peerNotesTitle}:\n${peers.join("\n")}\n\n`)
  const requirements = Report.requirementSummary(results)
  if (requirements.length > 0) process.stdout.write(`Requirements:\n${requirements.join("\n")}\n\n`)
  const skipped = Report.skippedLines(targetStatus, plan.skipped)
  if (skipped.length > 0) process.stdout.write(`Skipped:\n${skipped.join("\n")}\n`)

  yield* Effect.tryPromise({
    try: async () => {
      await mkdir(options.out, { recursive: true })
      await writeFile(join(options.out, "latest.json"), Report.json(report))
      await writeFile(join(options.out, "latest.md"), Report.markdown(report))
      await writeFile(join(options.out, "latest.svg"), Report.svg(report))
    },
    catch: (e) => new Error(`could not write results to ${options.out}: ${String(e)}`)
  })
  log(`Wrote ${join(options.out, "latest.{json,md,svg}")} in ${(report.durationMs / 1000).toFixed(1)} s`)
  return results.some((r) => r.error !== undefined) ? 1 : 0
})

Effect.runPromise(main).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = 1
  }
)
