/**
 * A slice of the conformance suite, driven through the Promise API: the
 * same guarantees core proves for Effect code, observed as a Promise user
 * sees them. Each transport's test file runs it with its own client factory.
 */
import type { TransportUrl } from "@lossless/core"
import { Harness } from "@lossless/testkit"
import { afterEach, describe, expect, it } from "vitest"
import {
  type Client,
  type ClientOptions,
  createClient,
  MessageTooLarge,
  type ReceivedMessage,
  SchemaViolation,
  SendFailed,
  TopicNotFound,
  topic
} from "../src/index.ts"

export interface SliceOptions {
  /** Shown in the suite's name. */
  readonly name: string
  readonly plugins: ReadonlyArray<TransportUrl.TransportPlugin>
  /**
   * A URL for one test. Clients made with the same URL must reach the same
   * broker (for the memory transport: a named broker).
   */
  readonly url: () => string
}

const uniqueName = Harness.uniqueName

/** Polls `condition` until it holds, failing with `what` after `within` milliseconds. */
const eventually = async (what: string, condition: () => boolean, within = 10_000): Promise<void> => {
  const deadline = Date.now() + within
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(10)
  }
}

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** How long to watch for something that must not happen (a redelivery, a rolled-back message). */
const quiet = 400

/** The rejection of `promise`, failing the test when it resolves. */
const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection, but the promise resolved")
}

const countBy = (ids: ReadonlyArray<string>): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1)
  return counts
}

export const promiseApiCases = (slice: SliceOptions): void => {
  describe(`Promise API: ${slice.name}`, () => {
    const open: Array<Client> = []
    const client = async (extra: Partial<ClientOptions> = {}, url = slice.url()): Promise<Client> => {
      const made = await createClient({ url, plugins: slice.plugins, shutdownTimeout: "10 seconds", ...extra })
      open.push(made)
      return made
    }
    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((c) => c.close()))
    })

    it("round trip: each message sent is handled once and acked", async () => {
      const c = await client()
      const orders = topic(uniqueName("orders"), (value) => {
        const order = value as { n?: unknown }
        if (typeof order.n !== "number") throw new TypeError("an order has a number n")
        return { n: order.n }
      })
      const group = uniqueName("g")
      const handled: Array<ReceivedMessage<{ n: number }>> = []
      const consumer = await c.consume(orders, group, async (message) => {
        handled.push(message)
      })
      const sent = [
        ...(await c.sendBatch(
          orders,
          Array.from({ length: 5 }, (_, n) => ({ payload: { n }, key: `k${n % 2}` }))
        ))
      ]
      sent.push(await c.send(orders, { n: 5 }, { headers: { origin: "test" } }))
      expect(sent.every((s) => s.attempts >= 1)).toBe(true)

      await eventually("six messages are handled", () => handled.length >= 6)
      await consumer.stop()
      expect(handled.map((m) => m.id).sort()).toEqual(sent.map((s) => s.id).sort())
      expect(handled.map((m) => m.payload.n).sort()).toEqual([0, 1, 2, 3, 4, 5])
      expect(handled.find((m) => m.payload.n === 5)?.headers.origin).toBe("test")

      // Acked: a new consumer of the group gets nothing back.
      const again: Array<string> = []
      const second = await c.consume(orders, group, (message) => {
        again.push(message.id)
      })
      await sleep(quiet)
      await second.stop()
      expect(again).toEqual([])
      expect(handled).toHaveLength(6)
    })

    it("a send to an unknown topic, an oversized or an invalid payload rejects with the typed error", async () => {
      const c = await client()
      const unknown = await rejectionOf(c.send(uniqueName("never-declared"), { n: 1 }))
      expect(unknown).toBeInstanceOf(SendFailed)
      const notFound = unknown as SendFailed
      expect(notFound.retryable).toBe(false)
      expect(notFound.failures).toHaveLength(1)
      expect(notFound.failures[0]?.error).toBeInstanceOf(TopicNotFound)

      const limit = c.capabilities.maxMessageBytes
      expect(limit).toBeDefined()
      const big = topic(uniqueName("big"))
      const group = uniqueName("g")
      await c.declare(big, [group])
      const tooLarge = await rejectionOf(c.send(big, { blob: "x".repeat((limit ?? 0) + 1) }))
      expect(tooLarge).toBeInstanceOf(SendFailed)
      const failure = (tooLarge as SendFailed).failures[0]?.error
      expect(failure).toBeInstanceOf(MessageTooLarge)
      expect((failure as MessageTooLarge).limit).toBe(limit)

      const strict = topic(big.name, (value) => {
        if (typeof value !== "string") throw new TypeError("a string is expected")
        return value
      })
      const invalid = await rejectionOf(c.send(strict, 42 as unknown as string))
      expect(invalid).toBeInstanceOf(SchemaViolation)
      expect((invalid as SchemaViolation).reason).toContain("a string is expected")

      // Nothing of the three reached the group.
      const received: Array<string> = []
      const consumer = await c.consume(big, group, (message) => {
        received.push(message.id)
      })
      const control = await c.send(big, { small: true })
      await eventually("the control message arrives", () => received.includes(control.id))
      await sleep(quiet)
      await consumer.stop()
      expect(received).toEqual([control.id])
    })

    const deadLetterCase = (how: string, fail: (attempt: number) => Promise<void> | void) =>
      it(`a ${how} handler error is retried, then dead-lettered with the reason`, async () => {
        const c = await client()
        const jobs = topic(uniqueName("jobs"))
        const group = uniqueName("g")
        const attempts: Array<number> = []
        const consumer = await c.consume(
          jobs,
          group,
          (_message, context) => {
            attempts.push(context.attempt)
            return fail(context.attempt)
          },
          { retry: { immediate: 1, delays: [50, 50] } }
        )
        const sent = await c.send(jobs, { job: 1 })
        await eventually("three deliveries of two runs each", () => attempts.length >= 6)

        const dead = await c.deadLetters(jobs, group, { limit: 1, wait: 5_000 })
        expect(dead).toHaveLength(1)
        expect(dead[0]?.id).toBe(sent.id)
        expect(dead[0]?.payload).toEqual({ job: 1 })
        expect(dead[0]?.reason?.group).toBe(group)
        expect(dead[0]?.reason?.originalTopic).toBe(jobs.name)
        expect(dead[0]?.reason?.attempt).toBe(3)
        expect(dead[0]?.reason?.error).toContain("retries exhausted after 3 attempt(s)")
        expect(dead[0]?.reason?.error).toContain("boom on attempt 3")

        await sleep(quiet)
        await consumer.stop()
        // One immediate retry per delivery, two delayed retries, then no more.
        expect(attempts).toEqual([1, 1, 2, 2, 3, 3])
        // Exactly one, and reading dead letters does not remove them.
        const again = await c.deadLetters(jobs, group, { wait: 500 })
        expect(again.map((d) => d.id)).toEqual([sent.id])
      })

    deadLetterCase("rejected (async)", async (attempt) => {
      await sleep(1)
      throw new Error(`boom on attempt ${attempt}`)
    })
    deadLetterCase("thrown (synchronous)", (attempt) => {
      throw new Error(`boom on attempt ${attempt}`)
    })

    it("with dedupe, a message sent twice under one id is handled once", async () => {
      const c = await client()
      const payments = topic(uniqueName("payments"))
      const deduped = uniqueName("deduped")
      const plain = uniqueName("plain")
      const onceIds: Array<string> = []
      const everyIds: Array<string> = []
      const once = await c.consume(
        payments,
        deduped,
        (message) => {
          onceIds.push(message.id)
        },
        { dedupe: { busyDelay: 50 } }
      )
      // A group without dedupe proves the broker really delivered the copy.
      const every = await c.consume(payments, plain, (message) => {
        everyIds.push(message.id)
      })
      const id = uniqueName("payment")
      await c.send(payments, { amount: 10 }, { id })
      await c.send(payments, { amount: 10 }, { id })
      const other = await c.send(payments, { amount: 20 })

      await eventually("the plain group handles all three deliveries", () => everyIds.length >= 3)
      await eventually("the deduped group handles the other payment", () => onceIds.includes(other.id))
      await sleep(quiet)
      await Promise.all([once.stop(), every.stop()])
      expect(countBy(everyIds).get(id)).toBe(2)
      expect(countBy(onceIds).get(id)).toBe(1)
      expect(onceIds).toHaveLength(2)

      // The copy was settled, not left behind: a new consumer of the group gets nothing.
      const left: Array<string> = []
      const after = await c.consume(payments, deduped, (message) => {
        left.push(message.id)
      })
      await sleep(quiet)
      await after.stop()
      expect(left).toEqual([])
    })

    it("close() with a running consumer lets the running handler finish and loses nothing", async () => {
      const url = slice.url()
      // A second client on the same broker outlives the first and picks up what it left.
      const survivor = await client({}, url)
      const c = await client({}, url)
      const work = topic(uniqueName("work"))
      const group = uniqueName("g")
      await c.declare(work, [group])
      const sent = await c.sendBatch(
        work,
        Array.from({ length: 20 }, (_, n) => ({ payload: { n } }))
      )

      const finished: Array<string> = []
      let running = 0
      await c.consume(
        work,
        group,
        async (message) => {
          running++
          await sleep(150)
          finished.push(message.id)
          running--
        },
        { concurrency: 2, ordering: "none" }
      )
      await eventually("a handler is running", () => running > 0)
      await c.close()
      const atClose = finished.length
      expect(running).toBe(0)
      expect(atClose).toBeGreaterThan(0)
      expect(atClose).toBeLessThan(sent.length)
      await sleep(200)
      expect(finished).toHaveLength(atClose)

      const rest: Array<string> = []
      await survivor.consume(work, group, (message) => {
        rest.push(message.id)
      })
      await eventually("the rest are handled", () => finished.length + rest.length >= sent.length)
      await sleep(quiet)
      const all = [...finished, ...rest]
      expect(all.sort()).toEqual(sent.map((s) => s.id).sort())
    })

    it("sendTransactional delivers on commit and not on rollback", async () => {
      const c = await client()
      const orders = topic(uniqueName("tx-orders"))
      const group = uniqueName("g")
      const handled: Array<ReceivedMessage<unknown>> = []
      const consumer = await c.consume(orders, group, (message) => {
        handled.push(message)
      })

      const refused = new Error("insufficient stock")
      const rolledBack = await rejectionOf(
        c.sendTransactional(orders, { order: "rolled-back" }, async () => {
          throw refused
        })
      )
      expect(rolledBack).toBe(refused)

      const committed = await c.sendTransactional(orders, { order: "committed" }, async () => "order-1")
      expect(committed).toBe("order-1")

      await eventually("the committed message arrives", () => handled.length >= 1)
      await sleep(quiet)
      await consumer.stop()
      expect(handled.map((m) => m.payload)).toEqual([{ order: "committed" }])
    })
  })
}
