/**
 * Every TypeScript sample in the guides is a real program: each ```ts block
 * in `docs/`, the README and the package READMEs is preceded by
 * `<!-- example: examples/<file>.ts[#region] -->` and must equal that file
 * (or that `// #region` of it), so a sample cannot drift from code that the
 * typecheck compiles and this suite runs.
 *
 * Each example exports `main` (an Effect, or a function returning a
 * Promise); a sample that needs a server says so in `requires`.
 */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Services } from "@lossless/testkit"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"

const docs = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const root = resolve(docs, "..")
const examplesDir = join(docs, "examples")

const markdownFiles = (): Array<string> => {
  const found: Array<string> = [join(root, "README.md")]
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === "node_modules" || entry.name === "examples" || entry.name === "test") continue
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith(".md")) found.push(path)
    }
  }
  walk(docs)
  for (const pkg of readdirSync(join(root, "packages"), { withFileTypes: true })) {
    if (!pkg.isDirectory()) continue
    for (const entry of readdirSync(join(root, "packages", pkg.name), { withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith(".md")) found.push(join(root, "packages", pkg.name, entry.name))
    }
  }
  return found
}

interface Sample {
  readonly file: string
  readonly line: number
  readonly code: string
  readonly example: string | undefined
  readonly region: string | undefined
}

const fence = /^```(\w*)\s*$/
const marker = /^<!--\s*example:\s*(\S+?)(?:#([\w-]+))?\s*-->$/

/** The ```ts blocks of a Markdown file with the example each names. */
const samples = (file: string): Array<Sample> => {
  const lines = readFileSync(file, "utf8").split("\n")
  const out: Array<Sample> = []
  for (let i = 0; i < lines.length; i++) {
    const open = fence.exec(lines[i] ?? "")
    if (open === null) continue
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l))
    if (end < 0) break
    const lang = open[1] ?? ""
    if (lang === "ts" || lang === "typescript") {
      let k = i - 1
      while (k >= 0 && (lines[k] ?? "").trim() === "") k--
      const named = marker.exec((lines[k] ?? "").trim())
      out.push({
        file,
        line: i + 1,
        code: lines.slice(i + 1, end).join("\n"),
        example: named?.[1],
        region: named?.[2]
      })
    }
    i = end
  }
  return out
}

const regionPattern = /^\s*\/\/ #(end)?region\b\s*([\w-]*)\s*$/

/** The text of an example, or of one region of it, without the region markers. */
const exampleText = (path: string, region: string | undefined): string => {
  const lines = readFileSync(path, "utf8").replace(/\n+$/, "").split("\n")
  if (region === undefined) return lines.filter((l) => !regionPattern.test(l)).join("\n")
  const start = lines.findIndex((l) => {
    const m = regionPattern.exec(l)
    return m !== null && m[1] === undefined && m[2] === region
  })
  if (start < 0) throw new Error(`${relative(root, path)} has no region "${region}"`)
  const body: Array<string> = []
  for (const l of lines.slice(start + 1)) {
    const m = regionPattern.exec(l)
    if (m !== null && m[1] === "end") break
    if (m === null) body.push(l)
  }
  // A region inside a function is shown without the function's indentation.
  const indent = Math.min(...body.filter((l) => l.trim() !== "").map((l) => (/^ */.exec(l)?.[0] ?? "").length))
  return body.map((l) => l.slice(Number.isFinite(indent) ? indent : 0)).join("\n")
}

const all = markdownFiles().flatMap(samples)

describe("the guides' TypeScript samples", () => {
  it("are found", () => {
    expect(all.length).toBeGreaterThan(5)
  })

  for (const sample of all) {
    const where = `${relative(root, sample.file)}:${sample.line}`
    it(`${where} is ${sample.example === undefined ? "(unnamed)" : sample.example} verbatim`, () => {
      expect(sample.example, `${where}: add <!-- example: examples/<file>.ts --> above the block`).toBeDefined()
      const text = exampleText(join(docs, sample.example as string), sample.region)
      expect(sample.code.replace(/\n+$/, "")).toBe(text)
    })
  }
})

type Main = Effect.Effect<unknown, unknown> | (() => Promise<unknown>)

describe("the examples run", () => {
  const files = readdirSync(examplesDir).filter((f) => f.endsWith(".ts"))
  for (const name of files) {
    it(`examples/${name}`, async () => {
      const module = (await import(join(examplesDir, name))) as {
        readonly main: Main
        readonly requires?: ReadonlyArray<Services.ServiceName>
      }
      for (const service of module.requires ?? []) {
        const status = await Services.require(service)
        if (!status.available) {
          // Outside CI a missing server skips the run; under CI `require` has already failed the file.
          console.warn(`examples/${name}: skipped, ${service} unavailable: ${status.reason}`)
          return
        }
      }
      const main = module.main
      await (Effect.isEffect(main) ? Effect.runPromise(main) : main())
    }, 60_000)
  }
})
