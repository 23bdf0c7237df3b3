import { describe, expect, it } from "vitest"
import { Scheduler } from "../../src/rocketmq/Scheduler.ts"

const until = async (done: () => boolean): Promise<void> => {
  const deadline = Date.now() + 5000
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
}

describe("Scheduler", () => {
  it("runs tasks in due order, ties in scheduling order, and skips cancelled ones", async () => {
    const scheduler = new Scheduler()
    const ran: Array<string> = []
    const now = Date.now()
    scheduler.at(now + 60, () => ran.push("c"))
    scheduler.at(now + 20, () => ran.push("a"))
    scheduler.at(now + 20, () => ran.push("b"))
    scheduler.at(now + 40, () => ran.push("cancelled")).cancel()
    scheduler.at(now - 10, () => ran.push("overdue"))
    await until(() => ran.length >= 4)
    expect(ran).toEqual(["overdue", "a", "b", "c"])
    scheduler.close()
  })

  it("runs a task scheduled from inside another at its own time", async () => {
    const scheduler = new Scheduler()
    const ran: Array<number> = []
    const started = Date.now()
    scheduler.after(10, () => scheduler.after(30, () => ran.push(Date.now() - started)))
    await until(() => ran.length >= 1)
    expect(ran).toHaveLength(1)
    expect(ran[0]).toBeGreaterThanOrEqual(39)
    scheduler.close()
  })

  it("keeps 10 000 tasks in order", async () => {
    const scheduler = new Scheduler()
    const ran: Array<number> = []
    const base = Date.now() + 20
    const offsets = Array.from({ length: 10_000 }, (_, i) => (i * 7919) % 50)
    for (const offset of offsets) scheduler.at(base + offset, () => ran.push(offset))
    await until(() => ran.length >= 10_000)
    expect(ran).toHaveLength(10_000)
    expect(ran).toEqual([...ran].sort((a, b) => a - b))
    scheduler.close()
  })

  it("runs nothing after close", async () => {
    const scheduler = new Scheduler()
    let ran = false
    scheduler.after(10, () => {
      ran = true
    })
    scheduler.close()
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(ran).toBe(false)
  })
})
