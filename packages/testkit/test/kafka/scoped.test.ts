/**
 * The Effect entry point: the emulator is listening inside the scope and closed after it.
 */
import * as net from "node:net"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { scoped } from "../../src/kafka/index.ts"

const accepts = (address: string) =>
  new Promise<boolean>((resolve) => {
    const [host, port] = address.split(":") as [string, string]
    const socket = net.connect(Number(port), host)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

describe("scoped kafka emulator", () => {
  it("listens while the scope is open and stops when it closes", async () => {
    const address = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const emulator = yield* scoped({ defaultPartitions: 2 })
          expect(yield* Effect.promise(() => accepts(emulator.brokers[0]!))).toBe(true)
          return emulator.brokers[0]!
        })
      )
    )
    expect(await accepts(address)).toBe(false)
  })
})
