/**
 * What the client adds over core, on the in-process broker: choosing the
 * transport, plain promises with core's errors, handler outcomes mapped to
 * the retry policy, shutdown, check-backs and loss detection.
 */
import { Message, Outbox } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { OutboxSchema, SqlInbox, SqliteClient, SqlOutboxStore } from "@lossless/sql"
import { Harness } from "@lossless/testkit"
import { Cause, Effect, ManagedRuntime, Schema } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import {
  AdapterMissing,
  Adapters,
  type Client,
  ClientClosed,
  type ClientOptions,
  checkBack,
  createClient,
  InvalidName,
  InvalidUrl,
  PermanentFailure,
  SchemaViolation,
  topic,
  UnknownScheme
} from "../src/index.ts"

const uniqueName = Harness.uniqueName
const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

const eventually = async (what: string, condition: () => boolean, within = 10_000): Promise<void> => {
  const deadline = Date.now() + within
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(10)
  }
}

const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection, but the promise resolved")
}

const open: Array<Client> = []
const client = async (extra: Partial<ClientOptions> = {}): Promise<Client> => {
  const made = await createClient({
    url: `memory://${uniqueName("broker")}`,
    plugins: [MemoryTransport.plugin],
    ...extra
  })
  open.push(made)
  return made
}
afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((c) => c.close()))
})

describe("createClient", () => {
  it("uses LOSSLESS_URL, and the in-process broker when it is unset", async () => {
    const saved = process.env.LOSSLESS_URL
    try {
      delete process.env.LOSSLESS_URL
      const fallback = await createClient({ plugins: [MemoryTransport.plugin] })
      open.push(fallback)
      expect(fallback.transport).toBe("memory")
      process.env.LOSSLESS_URL = "kafka://broker:9092"
      const refused = await rejectionOf(createClient({ plugins: [MemoryTransport.plugin] }))
      expect(refused).toBeInstanceOf(UnknownScheme)
      expect((refused as UnknownScheme).scheme).toBe("kafka")
    } finally {
      if (saved === undefined) delete process.env.LOSSLESS_URL
      else process.env.LOSSLESS_URL = saved
    }
  })

  it("rejects a URL it cannot parse or serve with the typed error", async () => {
    const invalid = await rejectionOf(createClient({ url: "no scheme here", plugins: [MemoryTransport.plugin] }))
    expect(invalid).toBeInstanceOf(InvalidUrl)
    expect((invalid as InvalidUrl).retryable).toBe(false)
    const unknown = await rejectionOf(createClient({ url: "amqp://rabbit", plugins: [MemoryTransport.plugin] }))
    expect(unknown).toBeInstanceOf(UnknownScheme)
    expect((unknown as UnknownScheme).supported).toEqual(["memory"])
  })
})

describe("topics", () => {
  it("an invalid name throws InvalidName where the topic is defined; an invalid group rejects consume", async () => {
    expect(() => topic("orders.eu")).toThrow(InvalidName)
    const c = await client()
    const refused = await rejectionOf(c.consume(uniqueName("orders"), "billing.eu", () => {}))
    expect(refused).toBeInstanceOf(InvalidName)
    expect((refused as InvalidName).kind).toBe("group")
  })

  it("an Effect Schema topic refuses an invalid payload and delivers a valid one typed", async () => {
    const c = await client()
    const Orders = topic(uniqueName("orders"), Schema.Struct({ id: Schema.String, total: Schema.Number }))
    const totals: Array<number> = []
    await c.consume(Orders, uniqueName("g"), (message) => {
      totals.push(message.payload.total)
    })
    const refused = await rejectionOf(
      c.send(Orders, { id: "o-1", total: "42" } as unknown as { id: string; total: number })
    )
    expect(refused).toBeInstanceOf(SchemaViolation)
    await c.send(Orders, { id: "o-2", total: 42 })
    await eventually("the valid order arrives", () => totals.length >= 1)
    await sleep(200)
    expect(totals).toEqual([42])
  })

  it("a payload the consumer's check refuses is dead-lettered without reaching the handler", async () => {
    const c = await client()
    const name = uniqueName("events")
    const group = uniqueName("g")
    const strict = topic(name, (value) => {
      if (typeof value !== "number") throw new TypeError("a number is expected")
      return value
    })
    let calls = 0
    await c.consume(strict, group, () => {
      calls++
    })
    // Sent through a plain topic of the same name, which checks nothing.
    const sent = await c.send(name, "not a number")
    const dead = await c.deadLetters(strict, group, { limit: 1, wait: 5_000 })
    expect(dead.map((d) => d.id)).toEqual([sent.id])
    expect(dead[0]?.payload).toBeUndefined()
    expect(dead[0]?.reason?.error).toContain("DecodeFailed")
    expect(calls).toBe(0)
  })
})

describe("handlers", () => {
  it("a thrown PermanentFailure is dead-lettered at once, without retries", async () => {
    const c = await client()
    const jobs = topic(uniqueName("jobs"))
    const group = uniqueName("g")
    const attempts: Array<number> = []
    await c.consume(jobs, group, async (_message, context) => {
      attempts.push(context.attempt)
      throw new PermanentFailure({ reason: "the account is closed" })
    })
    const sent = await c.send(jobs, { job: 1 })
    const dead = await c.deadLetters(jobs, group, { limit: 1, wait: 5_000 })
    expect(dead.map((d) => d.id)).toEqual([sent.id])
    expect(dead[0]?.reason?.error).toContain("permanent failure")
    expect(dead[0]?.reason?.error).toContain("the account is closed")
    await sleep(200)
    expect(attempts).toEqual([1])
  })

  it("retry: isPermanent marks the application's own errors as permanent", async () => {
    const c = await client()
    const jobs = topic(uniqueName("jobs"))
    const group = uniqueName("g")
    class Declined extends Error {}
    let calls = 0
    await c.consume(
      jobs,
      group,
      () => {
        calls++
        throw new Declined("card declined")
      },
      { retry: { immediate: 3, delays: [10, 10], isPermanent: (error) => error instanceof Declined } }
    )
    await c.send(jobs, { job: 1 })
    const dead = await c.deadLetters(jobs, group, { limit: 1, wait: 5_000 })
    expect(dead).toHaveLength(1)
    expect(dead[0]?.reason?.error).toContain("card declined")
    await sleep(200)
    expect(calls).toBe(1)
  })

  it("stop() past the shutdown timeout aborts the handler's signal and the message is redelivered", async () => {
    const url = `memory://${uniqueName("broker")}`
    const c = await client({ url })
    const jobs = topic(uniqueName("jobs"))
    const group = uniqueName("g")
    let aborted = 0
    let started = 0
    const stuck = await c.consume(
      jobs,
      group,
      (_message, context) =>
        new Promise<void>((_resolve, reject) => {
          started++
          context.signal.addEventListener("abort", () => {
            aborted++
            reject(new Error("aborted"))
          })
        }),
      { shutdownTimeout: 100 }
    )
    const sent = await c.send(jobs, { job: 1 })
    await eventually("the handler started", () => started === 1)
    await stuck.stop()
    expect(aborted).toBe(1)

    const redelivered: Array<{ id: string; redelivered: boolean }> = []
    await c.consume(jobs, group, (message, context) => {
      redelivered.push({ id: message.id, redelivered: context.redelivered })
    })
    await eventually("the message comes back", () => redelivered.length >= 1)
    expect(redelivered).toEqual([{ id: sent.id, redelivered: true }])
  })

  it("loss detection counts every stamped message and reports none lost", async () => {
    const c = await client({ send: { lossDetection: true } })
    const events = topic(uniqueName("events"))
    const seen: Array<string> = []
    const consumer = await c.consume(
      events,
      uniqueName("g"),
      (message) => {
        seen.push(message.id)
      },
      { lossDetection: true }
    )
    await c.sendBatch(
      events,
      Array.from({ length: 10 }, (_, n) => ({ payload: { n } }))
    )
    await eventually("ten messages handled", () => seen.length >= 10)
    const report = await consumer.lossReport()
    expect(report?.observed).toBe(10)
    expect(report?.lost).toBe(0)
    expect(report?.duplicates).toBe(0)
  })
})

describe("transactional sends", () => {
  it("a message a crash left prepared is committed by its topic's check-back", async () => {
    const store = await Effect.runPromise(Outbox.memoryStore)
    const Orders = topic(uniqueName("orders"), (value) => value as { id: string })
    const asked: Array<string> = []
    const c = await client({
      transactional: {
        outbox: store,
        checkBacks: [
          checkBack(Orders, (message) => {
            asked.push(message.payload.id)
            return message.payload.id === "booked" ? "commit" : "rollback"
          })
        ],
        relay: { checkInterval: 50, sweepInterval: 20 }
      }
    })
    const handled: Array<string> = []
    await c.consume(Orders, uniqueName("g"), (message) => {
      handled.push(message.payload.id)
    })
    // What a process that died between its local transaction and the commit leaves behind.
    const prepare = (id: string) =>
      Effect.runPromise(Effect.flatMap(Message.encode(Orders, { id }), (envelope) => store.add([envelope], "prepared")))
    await prepare("booked")
    await prepare("never-booked")

    await eventually("the booked order is delivered", () => handled.includes("booked"))
    await eventually("both were asked about", () => asked.includes("never-booked"))
    await sleep(200)
    expect(handled).toEqual(["booked"])
    const stats = await Effect.runPromise(store.stats)
    expect(stats.prepared).toBe(0)
    expect(stats.sent).toBe(1)
  })
})

describe("transactional sends: the relay", () => {
  it("reports a message it parks through onPark", async () => {
    const parked: Array<{ id: string; topic: string; error: string }> = []
    const c = await client({ transactional: { onPark: (message) => parked.push(message) } })
    const nowhere = topic(uniqueName("never-declared"))
    await c.sendTransactional(nowhere, { order: 1 }, async () => "committed")
    await eventually("the relay parks it", () => parked.length >= 1)
    expect(parked).toHaveLength(1)
    expect(parked[0]?.topic).toBe(nowhere.name)
    expect(parked[0]?.error).toContain("does not exist")
  })

  it("close() publishes what the in-process outbox still holds", async () => {
    const url = `memory://${uniqueName("broker")}`
    const survivor = await client({ url })
    const c = await client({ url })
    const orders = topic(uniqueName("orders"))
    const group = uniqueName("g")
    await survivor.declare(orders, [group])
    const ids = await Promise.all(
      Array.from({ length: 5 }, (_, n) => c.sendTransactional(orders, { n }, async () => n))
    )
    await c.close()
    const handled: Array<unknown> = []
    await survivor.consume(orders, group, (message) => {
      handled.push(message.payload)
    })
    await eventually("all five arrive", () => handled.length >= 5)
    await sleep(200)
    expect(ids).toEqual([0, 1, 2, 3, 4])
    expect(handled).toHaveLength(5)
  })
})

describe("transactional sends with a SQL outbox", () => {
  it("commits into the SQL outbox, the relay publishes from it, and a rollback leaves no row", async () => {
    const database = ManagedRuntime.make(SqliteClient.layer({ filename: ":memory:" }))
    try {
      const store = await database.runPromise(Effect.andThen(OutboxSchema.migrate(), SqlOutboxStore.make()))
      const c = await client({ transactional: { outbox: store, relay: { sweepInterval: 20 } } })
      const orders = topic(uniqueName("orders"))
      const handled: Array<string> = []
      await c.consume(orders, uniqueName("g"), (message) => {
        handled.push(message.id)
      })
      const refused = new Error("out of stock")
      expect(await rejectionOf(c.sendTransactional(orders, { order: 1 }, () => Promise.reject(refused)))).toBe(refused)
      expect(await c.sendTransactional(orders, { order: 2 }, async () => "booked")).toBe("booked")
      await eventually("the committed message is delivered", () => handled.length >= 1)
      // The relay marks the row after the broker's confirm, which may come after the delivery.
      let sent: ReadonlyArray<Outbox.Row> = []
      for (let tries = 0; sent.length === 0 && tries < 500; tries++) {
        await sleep(10)
        sent = await database.runPromise(store.list("sent", 10))
      }
      await sleep(200)
      expect(handled).toHaveLength(1)
      expect(sent.map((row) => row.envelope.id)).toEqual(handled)
      const stats = await database.runPromise(store.stats)
      expect({ prepared: stats.prepared, pending: stats.pending, failed: stats.failed, sent: stats.sent }).toEqual({
        prepared: 0,
        pending: 0,
        failed: 0,
        sent: 1
      })
    } finally {
      await Promise.allSettled(open.splice(0).map((c) => c.close()))
      await database.dispose()
    }
  })
})

describe("dedupe with a store the application passes", () => {
  it("a SQL inbox records the key once and the copy is not handled again", async () => {
    const database = ManagedRuntime.make(SqliteClient.layer({ filename: ":memory:" }))
    try {
      const inbox = await database.runPromise(Effect.andThen(OutboxSchema.migrate(), Effect.scoped(SqlInbox.make())))
      const c = await client()
      const payments = topic(uniqueName("payments"))
      const group = uniqueName("g")
      const handled: Array<string> = []
      await c.consume(
        payments,
        group,
        (message) => {
          handled.push(message.id)
        },
        { dedupe: { store: inbox }, concurrency: 1 }
      )
      const id = uniqueName("payment")
      await c.send(payments, { amount: 10 }, { id })
      await c.send(payments, { amount: 10 }, { id })
      const marker = await c.send(payments, { amount: 0 })
      await eventually("the marker is handled", () => handled.includes(marker.id))
      await sleep(200)
      expect(handled).toEqual([id, marker.id])
      expect(await database.runPromise(inbox.has(`${group}:${id}`))).toBe(true)
    } finally {
      await Promise.allSettled(open.splice(0).map((c) => c.close()))
      await database.dispose()
    }
  })
})

describe("close", () => {
  it("is idempotent, and every call after it rejects with ClientClosed", async () => {
    const c = await client()
    const jobs = topic(uniqueName("jobs"))
    await c.declare(jobs, [uniqueName("g")])
    await c.send(jobs, { before: true })
    const first = c.close()
    expect(c.close()).toBe(first)
    await first
    const send = await rejectionOf(c.send(jobs, { after: true }))
    expect(send).toBeInstanceOf(ClientClosed)
    expect((send as ClientClosed).retryable).toBe(false)
    expect(await rejectionOf(c.consume(jobs, "late", () => {}))).toBeInstanceOf(ClientClosed)
    expect(await rejectionOf(c.sendTransactional(jobs, { after: true }, async () => 1))).toBeInstanceOf(ClientClosed)
  })
})

describe("createClient without plugins", () => {
  it("loads the adapter of the URL's scheme: memory:// works out of the box", async () => {
    const client = await createClient({ url: "memory://" })
    try {
      const handled: Array<string> = []
      await client.consume("plain-orders", "billing", async (message) => {
        handled.push((message.payload as { id: string }).id)
      })
      await client.send("plain-orders", { id: "o-1" })
      for (let i = 0; i < 100 && handled.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
      expect(handled).toEqual(["o-1"])
    } finally {
      await client.close()
    }
  })

  it("names the package to install when the scheme's adapter is missing", async () => {
    const exit = await Effect.runPromiseExit(
      Adapters.forUrl("kafka://127.0.0.1:9092", { kafka: "@lossless/kafka-not-installed" })
    )
    const error = exit._tag === "Failure" ? Cause.squash(exit.cause) : undefined
    expect(error).toBeInstanceOf(AdapterMissing)
    expect((error as AdapterMissing).message).toContain("npm install @lossless/kafka-not-installed")
  })

  it("finds the plugin in an installed adapter package", async () => {
    const plugin = await Effect.runPromise(Adapters.forUrl("amqp://guest:guest@127.0.0.1:5672"))
    expect(plugin.schemes).toContain("amqp")
  })

  it("rejects an unknown scheme with the schemes it knows", async () => {
    const error = await createClient({ url: "carrier-pigeon://coop" }).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(error).toBeInstanceOf(UnknownScheme)
  })
})
