/**
 * The executable as a shell runs it: a child process from source, its
 * output and exit code.
 */
import { describe, expect, it } from "vitest"
import { spawnCli } from "./support.ts"

describe("the lossless executable", () => {
  it("prints help listing the commands, exit 0", async () => {
    const out = await spawnCli(["--help"])
    expect(out.code).toBe(0)
    for (const command of ["outbox", "dlq", "loss", "topology", "bench"]) expect(out.stdout).toContain(command)
  })

  it("exits 2 on a missing flag, naming it", async () => {
    const out = await spawnCli(["dlq", "redrive", "--group", "billing"])
    expect(out.code).toBe(2)
    expect(out.stderr).toContain("Missing required flag: --topic")
  })

  it("exits 1 when the broker cannot be reached, naming the host and not the password", async () => {
    const out = await spawnCli(["topology", "apply", "--topic", "orders"], {
      LOSSLESS_URL: "amqp://ops:hunter2@127.0.0.1:1/"
    })
    expect(out.code).toBe(1)
    expect(out.stderr).toContain("cannot reach the broker at amqp://ops:***@127.0.0.1:1/")
    expect(out.stderr + out.stdout).not.toContain("hunter2")
  })

  it("declares topology on the embedded broker by default", async () => {
    const out = await spawnCli(["--json", "topology", "apply", "--group", "orders/billing"])
    expect(out.code).toBe(0)
    expect(JSON.parse(out.stdout)).toEqual({
      applied: { topics: ["orders"], groups: [{ topic: "orders", group: "billing" }] }
    })
  })

  it("passes arguments after -- to the benchmark suite and returns its failure", async () => {
    const help = await spawnCli(["bench", "--", "--help"])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain("usage: pnpm bench")
    // Contradictory options stop the suite before it measures anything.
    const bad = await spawnCli(["bench", "--", "--quick", "--full"])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain("--quick and --full exclude each other")
    expect(bad.stderr).toContain("the benchmarks exited with code 1")
  })
})
