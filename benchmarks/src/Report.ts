/**
 * Renders a run: aligned Markdown tables (for the terminal and `latest.md`),
 * JSON with every round (`latest.json`), and an SVG bar chart of throughput
 * (`latest.svg`), written by hand so the harness needs nothing but Node.
 */
import type { MinRatio, Relative, ScenarioResult } from "./Runner.ts"
import { formatRate, latencyMeaning, type Mode, type Skip } from "./Scenario.ts"
import * as Stats from "./Stats.ts"
import type { Kind } from "./targets/Target.ts"

export interface TargetStatus {
  readonly name: string
  readonly kind: Kind
  readonly description: string
  readonly available: boolean
  readonly reason: string | undefined
  /** Whether a scenario of the run used it (an available target may have none in this mode or selection). */
  readonly used?: boolean | undefined
  /** For a peer library: where its guarantees differ from Lossless's. */
  readonly note?: string | undefined
}

export interface RunReport {
  readonly startedAt: string
  readonly durationMs: number
  readonly mode: Mode
  readonly only: string | undefined
  readonly environment: {
    readonly node: string
    readonly platform: string
    readonly cpus: number
    readonly cpuModel: string
    readonly gc: boolean
  }
  readonly warmupRounds: number
  readonly rounds: number
  readonly targets: ReadonlyArray<TargetStatus>
  /** What the plan left out in this mode, and why (targets that did not answer are in `targets`). */
  readonly skipped: ReadonlyArray<Skip>
  readonly results: ReadonlyArray<ScenarioResult>
}

const rate = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-")
const ms = (n: number): string => (Number.isFinite(n) ? n.toFixed(n < 10 ? 3 : n < 100 ? 2 : 1) : "-")
const mib = (n: number): string => (Number.isFinite(n) ? (Math.abs(n) < 0.05 ? 0 : n).toFixed(1) : "-")
const pct = (fraction: number): string => (Number.isFinite(fraction) ? `±${(fraction * 100).toFixed(1)} %` : "-")
const times = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(2)}×` : "-")

/**
 * A ratio judged against `limit`, with as many decimals as it takes for the
 * printed figure to fall on the side of the limit the verdict says (0.795
 * against 0.8 prints "0.795×", not "0.80×").
 */
export const timesAgainst = (n: number, limit: number): string => {
  if (!Number.isFinite(n)) return "-"
  for (let digits = 2; digits < 6; digits++) {
    const shown = Number(n.toFixed(digits))
    if (shown >= limit === n >= limit) return `${n.toFixed(digits)}×`
  }
  return `${n}×`
}

const kib = (bytes: number): string =>
  Number.isFinite(bytes) ? (bytes / 1024).toFixed(bytes < 10 * 1024 ? 2 : 1) : "-"

const percent = (fraction: number): string => `${Number((fraction * 100).toFixed(1))} %`

const verdict = (met: boolean | undefined, straddles: boolean): string =>
  met === undefined ? "-" : `${met ? "met" : "missed"}${straddles ? " (borderline)" : ""}`

/** "≤5 % cost: met", with "(borderline)" when the rounds fall on both sides of the limit. */
const costCell = (r: ScenarioResult): string | undefined => {
  const q = r.requirement
  if (q === undefined) return r.scenario.maxCost === undefined ? undefined : `≤${percent(r.scenario.maxCost)} cost: -`
  return `≤${percent(q.maxCost)} cost: ${verdict(q.met, q.straddles)}`
}

/**
 * "≥0.9×: met" against the scenario's own reference (its ratio is in the
 * "vs baseline" column); "≥8× vs naive (9.10×): met" against another, with the ratio.
 */
const minRatioCell = (q: MinRatio, label: Label): string => {
  const measured = q.ratio === undefined ? "" : ` (${timesAgainst(q.ratio.median, q.atLeast)})`
  const versus = q.ownReference ? "" : ` vs ${label(q.versus)}${measured}`
  return `≥${Number(q.atLeast.toFixed(3))}×${versus}: ${verdict(q.met, q.straddles)}`
}

/** "0.93× (0.90–0.97) vs <label>": a ratio for information, against another scenario of the comparison. */
const relativeCell = (q: Relative, label: Label): string =>
  q.ratio === undefined
    ? `- vs ${label(q.versus)}`
    : `${times(q.ratio.median)} (${q.ratio.min.toFixed(2)}–${q.ratio.max.toFixed(2)}) vs ${label(q.versus)}`

const requirementText = (r: ScenarioResult, label: Label): string =>
  [costCell(r), ...r.atLeast.map((q) => minRatioCell(q, label))].filter((c) => c !== undefined).join("; ")

/**
 * Every requirement of the scenario with its verdict, "; "-separated; "" when
 * it has none. Other scenarios are named by their labels in `group` (the
 * results of its comparison), else by id.
 */
export const requirementCell = (r: ScenarioResult, group: ReadonlyArray<ScenarioResult> = [r]): string =>
  requirementText(r, labelsOf(group))

const hasRequirement = (r: ScenarioResult): boolean => r.scenario.maxCost !== undefined || r.atLeast.length > 0

/** A scenario's label by its id. */
type Label = (id: string) => string

/** Labels by id from `results`; the id itself for a scenario not among them. */
const labelsOf = (results: ReadonlyArray<ScenarioResult>): Label => {
  const labels = new Map(results.map((r) => [r.scenario.id, r.scenario.label]))
  return (id) => labels.get(id) ?? id
}

/** The label of the scenario a result is divided by, when that is not its comparison's baseline. */
type ReferenceLabel = (r: ScenarioResult) => string | undefined

const referenceLabels = (results: ReadonlyArray<ScenarioResult>): ReferenceLabel => {
  const labels = new Map(results.map((r) => [r.scenario.id, r.scenario.label]))
  const baselines = new Set(results.filter((r) => r.isBaseline).map((r) => r.scenario.id))
  return (r) => {
    const id = r.ratio?.baseline ?? r.scenario.versus
    return id === undefined || baselines.has(id) ? undefined : (labels.get(id) ?? id)
  }
}

interface Column {
  readonly title: string
  readonly right: boolean
  readonly cell: (r: ScenarioResult, reference: ReferenceLabel, label: Label) => string
  /** Shown only when some row has it. */
  readonly optional?: (r: ScenarioResult) => boolean
}

const columns: ReadonlyArray<Column> = [
  { title: "scenario", right: false, cell: (r) => r.scenario.label },
  { title: "target", right: false, cell: (r) => r.scenario.target },
  // A consume round's batches only fill the queue, before the clock starts.
  {
    title: "batch",
    right: true,
    cell: (r) => (r.scenario.operation === "consume" ? "-" : String(r.scenario.batchSize))
  },
  {
    title: "prefetch",
    right: true,
    // Publishers alone, and the outbox's relay, have no prefetch.
    cell: (r) =>
      r.scenario.operation === "publish" || r.scenario.operation === "outbox" ? "-" : String(r.scenario.prefetch)
  },
  {
    title: "conc.",
    right: true,
    cell: (r) => (r.scenario.concurrency === undefined ? "-" : String(r.scenario.concurrency)),
    optional: (r) => r.scenario.concurrency !== undefined
  },
  {
    title: "offered",
    right: true,
    cell: (r) => (r.scenario.rate === undefined ? "-" : formatRate(r.scenario.rate)),
    optional: (r) => r.scenario.rate !== undefined
  },
  { title: "msg/s", right: true, cell: (r) => (r.error === undefined ? rate(r.throughput.median) : "FAILED") },
  { title: "spread", right: true, cell: (r) => pct(Stats.relativeSpread(r.throughput)) },
  {
    title: "vs baseline",
    right: true,
    cell: (r, reference) => {
      if (r.isBaseline) return "baseline"
      const versus = reference(r)
      const suffix = versus === undefined ? "" : ` vs ${versus}`
      return r.ratio === undefined
        ? `-${suffix}`
        : `${times(r.ratio.median)} (${r.ratio.min.toFixed(2)}–${r.ratio.max.toFixed(2)})${suffix}`
    }
  },
  {
    title: "also vs",
    right: false,
    cell: (r, _reference, label) => r.relative.map((q) => relativeCell(q, label)).join("; "),
    optional: (r) => r.relative.length > 0
  },
  {
    title: "requirement",
    right: false,
    cell: (r, _reference, label) => requirementText(r, label),
    optional: hasRequirement
  },
  {
    title: "CPU µs/msg",
    right: true,
    cell: (r) => (Number.isFinite(r.cpuMicrosPerMessage) ? r.cpuMicrosPerMessage.toFixed(1) : "-")
  },
  {
    title: "latency",
    right: false,
    cell: (r) => (r.scenario.rate === undefined ? latencyMeaning[r.scenario.operation] : "due→handler"),
    optional: (r) => r.scenario.operation !== "publish-consume" || r.scenario.rate !== undefined
  },
  { title: "p50 ms", right: true, cell: (r) => ms(r.latencyMs.p50) },
  { title: "p95 ms", right: true, cell: (r) => ms(r.latencyMs.p95) },
  { title: "p99 ms", right: true, cell: (r) => ms(r.latencyMs.p99) },
  { title: "max ms", right: true, cell: (r) => ms(r.latencyMs.max) },
  { title: "heap Δ MiB", right: true, cell: (r) => mib(r.heapPeakDeltaMiB) },
  {
    title: "KiB/in-flight",
    right: true,
    // With a handful in flight the figure is the round's garbage, not what a message holds.
    cell: (r) => (r.peakInFlight >= 100 ? kib(r.heapPerInFlightBytes) : "-"),
    optional: (r) => r.peakInFlight >= 1000 && r.scenario.rate === undefined
  },
  { title: "retained MiB", right: true, cell: (r) => mib(r.heapRetainedMiB) },
  { title: "RSS MiB", right: true, cell: (r) => mib(r.rssPeakMiB) }
]

/** One aligned Markdown table. */
export const table = (results: ReadonlyArray<ScenarioResult>): string => {
  const shown = columns.filter((c) => c.optional === undefined || results.some(c.optional))
  const reference = referenceLabels(results)
  const label = labelsOf(results)
  const rows = results.map((r) => shown.map((c) => c.cell(r, reference, label)))
  const widths = shown.map((c, i) => Math.max(c.title.length, ...rows.map((row) => (row[i] as string).length), 3))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells
      .map((cell, i) => {
        const w = widths[i] as number
        return (shown[i] as Column).right ? cell.padStart(w) : cell.padEnd(w)
      })
      .join(" | ")} |`
  const rule = `| ${widths
    .map((w, i) => ((shown[i] as Column).right ? `${"-".repeat(w - 1)}:` : "-".repeat(w)))
    .join(" | ")} |`
  return [line(shown.map((c) => c.title)), rule, ...rows.map(line)].join("\n")
}

/** One line per requirement: the scenario's throughput against the reference and the verdict. */
export const requirementLines = (results: ReadonlyArray<ScenarioResult>): Array<string> => {
  const labels = new Map(results.map((r) => [r.scenario.id, r.scenario.label]))
  const label = labelsOf(results)
  return results.flatMap((r) => [...costLines(r, labels), ...r.atLeast.map((q) => minRatioLine(r, q, label))])
}

const minRatioLine = (r: ScenarioResult, q: MinRatio, label: Label): string => {
  const required = `≥${Number(q.atLeast.toFixed(3))}×`
  if (q.ratio === undefined) {
    return `- ${r.scenario.label}: no ratio to ${label(q.versus)}, so its requirement (${required}) was not checked`
  }
  return (
    `- ${r.scenario.label} reaches ${timesAgainst(q.ratio.median, q.atLeast)} ${label(q.versus)}'s throughput (rounds ` +
    `${q.ratio.min.toFixed(2)}–${q.ratio.max.toFixed(2)}; required ${required}): ${verdict(q.met, q.straddles)}`
  )
}

const costLines = (r: ScenarioResult, labels: ReadonlyMap<string, string>): Array<string> => {
  if (r.scenario.maxCost === undefined) return []
  const versus = labels.get(r.ratio?.baseline ?? r.scenario.versus ?? "") ?? "its baseline"
  if (r.ratio === undefined || r.requirement === undefined) {
    return [
      `- ${r.scenario.label}: no ratio to ${versus}, so its requirement (≤${percent(r.scenario.maxCost)} cost) was not checked`
    ]
  }
  const q = r.requirement
  const change = q.cost >= 0 ? `costs ${percent(q.cost)}` : `is ${percent(-q.cost)} faster`
  const cpu =
    r.cpuRatio === undefined || !Number.isFinite(r.cpuRatio.median)
      ? ""
      : `; CPU per message ${times(r.cpuRatio.median)} (rounds ${r.cpuRatio.min.toFixed(2)}–${r.cpuRatio.max.toFixed(2)})`
  const server = Number.isFinite(r.serverCpuMicrosPerMessage)
    ? `; its store server's CPU ${r.serverCpuMicrosPerMessage.toFixed(1)} µs/msg beside this process's ${r.cpuMicrosPerMessage.toFixed(1)}`
    : ""
  return [
    `- ${r.scenario.label} ${change} of ${versus}'s throughput (${times(r.ratio.median)}, rounds ` +
      `${r.ratio.min.toFixed(2)}–${r.ratio.max.toFixed(2)}${cpu}${server}): ${costCell(r)}`
  ]
}

/**
 * Heap per additional message in flight, between the baseline and each
 * scenario of the same target that kept at least twice as many in flight: the difference of
 * their peak heap growth over the difference of their peak in-flight counts,
 * in bytes. Heap growth is mostly garbage between collections, which both
 * rounds have alike, so the slope is a better estimate than either ratio.
 * `undefined` when the counts are too close to tell.
 */
export const heapSlope = (baseline: ScenarioResult, other: ScenarioResult): number | undefined => {
  // Only the same target with another window: across targets the heap differs for other reasons.
  if (other.scenario.target !== baseline.scenario.target) return undefined
  const extra = other.peakInFlight - baseline.peakInFlight
  if (!(baseline.peakInFlight > 0) || !(other.peakInFlight >= 2 * baseline.peakInFlight)) return undefined
  const grown = (other.heapPeakDeltaMiB - baseline.heapPeakDeltaMiB) * 1024 * 1024
  return Number.isFinite(grown) ? grown / extra : undefined
}

const heapSlopeLines = (group: ReadonlyArray<ScenarioResult>): Array<string> => {
  const baseline = group.find((r) => r.isBaseline)
  if (baseline === undefined) return []
  return group.flatMap((r) => {
    const slope = r.isBaseline ? undefined : heapSlope(baseline, r)
    return slope === undefined
      ? []
      : [
          `- ${r.scenario.label}: about ${kib(slope)} KiB of heap per message in flight beyond ${baseline.scenario.label}'s ` +
            `(peak heap growth ${mib(r.heapPeakDeltaMiB)} vs ${mib(baseline.heapPeakDeltaMiB)} MiB, ` +
            `${Math.round(r.peakInFlight).toLocaleString("en-US")} vs ${Math.round(baseline.peakInFlight).toLocaleString("en-US")} in flight; rough)`
        ]
  })
}

/** One line per scenario with `compareTo`: its throughput against each of them. */
export const relativeLines = (results: ReadonlyArray<ScenarioResult>): Array<string> => {
  const label = labelsOf(results)
  return results.flatMap((r) =>
    r.relative.length === 0
      ? []
      : [`- ${r.scenario.label}: ${r.relative.map((q) => relativeCell(q, label)).join("; ")}`]
  )
}

/**
 * Every requirement of the run with its verdict, grouped by comparison: the
 * targets the project set, met or missed, in one place. A requirement that
 * could not be judged says so.
 */
export const requirementSummary = (results: ReadonlyArray<ScenarioResult>): Array<string> =>
  byComparison(results).flatMap(([name, group]) => {
    const lines = requirementLines(group)
    return lines.length === 0 ? [] : [`${name}:`, ...lines.map((line) => `  ${line}`)]
  })

/** "skipped: <what> (<why>)", one a line: targets that did not answer, then what the plan left out. */
export const skippedLines = (targets: ReadonlyArray<TargetStatus>, skipped: ReadonlyArray<Skip>): Array<string> => [
  ...targets.filter((t) => !t.available).map((t) => `- skipped: ${t.name} (${t.reason ?? "not available"})`),
  ...skipped.map((s) => `- skipped: ${s.what} (${s.why})`)
]

/** Results grouped by comparison, in run order. */
const byComparison = (results: ReadonlyArray<ScenarioResult>): Array<[string, Array<ScenarioResult>]> => {
  const groups = new Map<string, Array<ScenarioResult>>()
  for (const r of results) {
    const group = groups.get(r.comparison)
    if (group === undefined) groups.set(r.comparison, [r])
    else group.push(r)
  }
  return [...groups]
}

/**
 * One line per peer library that ran: where its guarantees differ from
 * Lossless's, so its ratios are read with what they buy.
 */
export const peerNotes = (
  results: ReadonlyArray<ScenarioResult>,
  targets: ReadonlyArray<TargetStatus>
): Array<string> => {
  const used = new Set(results.map((r) => r.scenario.target))
  return targets
    .filter((t) => t.kind === "peer" && t.note !== undefined && used.has(t.name))
    .map((t) => `- ${t.name}: ${t.note}`)
}

/** The title of the peers' notes. */
export const peerNotesTitle = "Peer libraries, where their guarantees differ from Lossless's"

/** The tables, one per comparison, with requirement verdicts, other ratios and failures spelled out below each. */
export const tables = (results: ReadonlyArray<ScenarioResult>): string =>
  byComparison(results)
    .map(([name, group]) => {
      const notes = [
        ...requirementLines(group),
        ...relativeLines(group),
        ...heapSlopeLines(group),
        ...group.flatMap((r) => [
          ...(r.error === undefined ? [] : [`- ${r.scenario.label}: ${r.error}`]),
          ...(r.duplicates === 0 ? [] : [`- ${r.scenario.label}: ${r.duplicates} messages received more than once`])
        ])
      ].join("\n")
      return `### ${name}\n\n${table(group)}${notes === "" ? "" : `\n\n${notes}`}`
    })
    .join("\n\n")

/** Which targets ran, which were available but had no scenario in this run, and which were skipped, and why. */
export const targetLines = (targets: ReadonlyArray<TargetStatus>): string =>
  targets
    .map((t) =>
      !t.available
        ? `- ${t.name} (${t.kind}): skipped — ${t.reason ?? "not available"}`
        : t.used === false
          ? `- ${t.name} (${t.kind}): available, no scenario of this run — ${t.description}`
          : `- ${t.name} (${t.kind}): ran — ${t.description}`
    )
    .join("\n")

/** A titled list, or nothing when it is empty. */
const section = (title: string, lines: ReadonlyArray<string>): Array<string> =>
  lines.length === 0 ? [] : [`${title}:`, "", ...lines, ""]

/** `latest.md`: what ran, where, the requirements' verdicts, what was skipped, and the tables. */
export const markdown = (report: RunReport): string =>
  [
    "# Lossless benchmarks",
    "",
    `Run ${report.startedAt}, ${report.mode} mode${report.only === undefined ? "" : ` (only "${report.only}")`}, ` +
      `${(report.durationMs / 1000).toFixed(1)} s. Node ${report.environment.node} on ${report.environment.platform}, ` +
      `${report.environment.cpus} × ${report.environment.cpuModel}. ` +
      `${report.warmupRounds} warm-up and ${report.rounds} measured rounds per scenario (other counts where a comparison sets its own), interleaved within each comparison; ` +
      `figures are medians over rounds${report.environment.gc ? ", each round starting after a full GC" : ""}.`,
    "",
    "Targets:",
    "",
    targetLines(report.targets),
    "",
    ...section("Requirements", requirementSummary(report.results)),
    ...section("Skipped", skippedLines(report.targets, report.skipped)),
    tables(report.results),
    "",
    ...section(peerNotesTitle, peerNotes(report.results, report.targets)),
    "msg/s: messages per second from first publish to last ack (publish: to last confirm; consume: first delivery " +
      "to last ack; outbox: to the relay's last mark). spread: half the min–max range over rounds, relative to the median. " +
      "vs baseline: throughput ÷ the comparison's baseline in the same round (median, then min–max), " +
      'or ÷ the scenario named after "vs". requirement: "≤x % cost", the most throughput the scenario may lose against that ' +
      'reference; "≥n×", the least multiple of the reference (or of the scenario named after "vs") it must reach; both ' +
      "judged by the median of the per-round ratios (borderline: the rounds fall on both sides of the limit). " +
      "CPU µs/msg: process CPU time (all threads) per message while the round ran. " +
      "p50…max: latency, publish to receipt unless the latency column says otherwise (publish→confirm: a batch's publish " +
      "to its confirm; commit→confirm: the outbox transaction's commit to the broker's confirm of the relay's publish, " +
      "the relay lag; due→handler: from when a message was due on the fixed-rate schedule to its handler). " +
      "conc.: handlers the consumer runs at once. offered: the fixed rate the publishers kept to (its msg/s near the " +
      "offered rate means the target kept up). also vs: throughput ÷ that of another scenario of the same rounds, " +
      "for information. heap Δ: peak heap during the round above the heap at its start " +
      "(mostly young-generation garbage between collections). KiB/in-flight: heap Δ over the most messages published and " +
      "not yet settled at once, an upper bound of what each holds. retained: heap left after the round and a full GC. " +
      "RSS: peak resident set of the process.",
    ""
  ].join("\n")

/** `latest.json`: everything, every round included. */
export const json = (report: RunReport): string =>
  `${JSON.stringify(report, (_key, value) => (typeof value === "number" && !Number.isFinite(value) ? null : value), 2)}\n`

const escapeXml = (text: string): string =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;")

/**
 * `latest.svg`: median throughput per scenario as horizontal bars, with a
 * whisker over the min–max of the rounds, grouped by comparison. Each
 * comparison has a linear scale of its own: in-process and networked brokers
 * differ by more than an order of magnitude, and only bars of one comparison
 * are meant to be set against each other.
 */
export const svg = (report: RunReport): string => {
  const width = 1100
  const labelWidth = 360
  // Room for the throughput and the ratio after the longest bar.
  const valueWidth = 300
  const barLeft = labelWidth + 10
  const barMax = width - barLeft - valueWidth
  const rowHeight = 24
  const noteHeight = 14
  const groupGap = 30
  const groups = byComparison(report.results)
  const scaleOf = (group: ReadonlyArray<ScenarioResult>) =>
    Math.max(
      1,
      ...group.filter((r) => r.error === undefined && Number.isFinite(r.throughput.max)).map((r) => r.throughput.max)
    )
  const parts: Array<string> = []
  let y = 56
  for (const [name, group] of groups) {
    const scaleMax = scaleOf(group)
    const x = (value: number) => barLeft + (value / scaleMax) * barMax
    const reference = referenceLabels(group)
    parts.push(`<text x="10" y="${y}" class="group">${escapeXml(name)}</text>`)
    y += 10
    for (const r of group) {
      const top = y
      const mid = top + rowHeight / 2
      parts.push(
        `<text x="${labelWidth}" y="${mid + 4}" class="label" text-anchor="end">${escapeXml(r.scenario.label)}</text>`
      )
      if (r.error !== undefined || !Number.isFinite(r.throughput.median)) {
        parts.push(`<text x="${barLeft}" y="${mid + 4}" class="value">failed</text>`)
      } else {
        const w = Math.max(1, x(r.throughput.median) - barLeft)
        const fill = r.isBaseline ? "#2f5d8a" : "#7fa7cf"
        parts.push(
          `<rect x="${barLeft}" y="${top + 4}" width="${w.toFixed(1)}" height="${rowHeight - 8}" fill="${fill}"/>`,
          `<line x1="${x(r.throughput.min).toFixed(1)}" x2="${x(r.throughput.max).toFixed(1)}" y1="${mid}" y2="${mid}" class="whisker"/>`,
          `<line x1="${x(r.throughput.min).toFixed(1)}" x2="${x(r.throughput.min).toFixed(1)}" y1="${mid - 4}" y2="${mid + 4}" class="whisker"/>`,
          `<line x1="${x(r.throughput.max).toFixed(1)}" x2="${x(r.throughput.max).toFixed(1)}" y1="${mid - 4}" y2="${mid + 4}" class="whisker"/>`
        )
        const versus = reference(r)
        const ratio = r.isBaseline
          ? " (baseline)"
          : r.ratio === undefined
            ? ""
            : ` (${times(r.ratio.median)}${versus === undefined ? "" : ` vs ${versus}`})`
        parts.push(
          `<text x="${(x(r.throughput.max) + 6).toFixed(1)}" y="${mid + 4}" class="value">${rate(r.throughput.median)}${escapeXml(ratio)}</text>`
        )
      }
      // Verdicts on a line of their own under the bar: beside it they would run off the chart.
      const requirements = requirementCell(r, group)
      if (requirements !== "") {
        parts.push(`<text x="${barLeft}" y="${top + rowHeight + 6}" class="note">${escapeXml(requirements)}</text>`)
        y += noteHeight
      }
      y += rowHeight
    }
    y += groupGap - 10
  }
  const height = y + 20
  const title = `Lossless benchmarks: messages/second (median, min–max whisker; each comparison on its own scale), ${report.mode} mode`
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif">`,
    "<style>.title{font-size:15px;font-weight:600}.group{font-size:13px;font-weight:600}.label,.value{font-size:12px}.note{font-size:11px;fill:#555}.whisker{stroke:#222;stroke-width:1}</style>",
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="22" class="title">${escapeXml(title)}</text>`,
    `<text x="10" y="40" class="note">${escapeXml(`${report.startedAt} · Node ${report.environment.node} · ${report.environment.cpus} × ${report.environment.cpuModel}`)}</text>`,
    ...parts,
    "</svg>",
    ""
  ].join("\n")
}
