/**
 * Rounds on the real RabbitMQ and PostgreSQL: each RabbitMQ target publishes
 * and consumes, the outbox relays, and what a round or a client created is
 * gone afterwards. Skipped, with the reason, when a server does not answer.
 * The rounds hold the broker the way the RabbitMQ test suites do (`exclusive`).
 */
import { Postgres } from "@lossless/sql"
import { Services } from "@lossless/testkit"
import * as amqp from "amqplib"
import { Context, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { describe, expect, it } from "vitest"
import { runRound } from "../src/Runner.ts"
import { outboxTarget, rabbitmq, type Scenario } from "../src/Scenario.ts"
import { outbox } from "../src/targets/outbox.ts"
import { peerTargets } from "../src/targets/peers.ts"
import {
  rabbitmqRaw,
  rabbitmqRawWire,
  rabbitmqRuntime,
  rabbitmqRuntimeWith,
  rabbitmqTransport
} from "../src/targets/rabbitmq.ts"
import type { BenchClient, Target } from "../src/targets/Target.ts"

const rabbit = await Services.require("rabbitmq")
const postgres = await Services.require("postgres")

const scenario = (overrides: Partial<Scenario>): Scenario => ({
  id: "test",
  label: "test",
  target: rabbitmq.raw,
  operation: "publish",
  payloadBytes: 1024,
  amount: { messages: 2000 },
  batchSize: 100,
  publishConcurrency: 4,
  prefetch: 100,
  maxInFlight: 1000,
  ...overrides
})

/** Runs `rounds` on the target with the broker held, recording the topic and group of each round. */
const onTarget = <A>(target: Target, use: (client: BenchClient) => Effect.Effect<A, unknown>) => {
  const declared: Array<readonly [string, string]> = []
  const run = Effect.scoped(
    Effect.gen(function* () {
      if (target.exclusive !== undefined) yield* target.exclusive(() => {})
      const client = yield* target.open
      const recording: BenchClient = {
        ...client,
        prepare: (topic, group) => {
          declared.push([topic, group])
          return client.prepare(topic, group)
        }
      }
      return yield* use(recording)
    })
  )
  return Effect.runPromise(run).then((result) => ({ result, declared }))
}

/** Whether the broker still has the exchange (a passive declaration answers 404 when it does not). */
const exchangeExists = async (name: string): Promise<boolean> => {
  const connection = await amqp.connect(Services.url("rabbitmq"))
  try {
    const channel = await connection.createChannel()
    channel.on("error", () => {})
    return await channel.checkExchange(name).then(
      () => true,
      () => false
    )
  } finally {
    await connection.close().catch(() => {})
  }
}

const timeout = 180_000

describe.skipIf(!rabbit.available)(`RabbitMQ rounds (${rabbit.reason})`, () => {
  const targets = [
    rabbitmqRaw,
    rabbitmqRawWire,
    rabbitmqTransport,
    rabbitmqRuntime,
    rabbitmqRuntimeWith("loss-detection"),
    rabbitmqRuntimeWith("memory-dedupe"),
    ...peerTargets
  ]
  for (const target of targets) {
    it(
      `${target.name}: publishes and consumes every message once, then deletes what each round declared`,
      async () => {
        const { result, declared } = await onTarget(target, (client) =>
          Effect.all([
            runRound(client, scenario({ target: target.name, operation: "publish" }), 60_000),
            runRound(
              client,
              scenario({ target: target.name, operation: "consume", amount: { messages: 1503 } }),
              60_000
            )
          ])
        )
        const [published, consumed] = result
        expect(published).toMatchObject({ messages: 2000, duplicates: 0 })
        expect(published.latencyMs.count).toBe(2000)
        expect(consumed).toMatchObject({ messages: 1503, duplicates: 0 })
        expect(declared).toHaveLength(2)
        for (const [topic] of declared) expect(await exchangeExists(topic)).toBe(false)
      },
      timeout
    )
  }

  for (const target of [rabbitmqRaw, rabbitmqRuntime]) {
    it(
      `${target.name}: at a fixed rate, delivers every message once, from publish to handler`,
      async () => {
        const { result } = await onTarget(target, (client) =>
          runRound(
            client,
            scenario({
              target: target.name,
              operation: "publish-consume",
              amount: { messages: 600 },
              rate: 2000,
              batchSize: 1,
              publishConcurrency: 50,
              concurrency: 16
            }),
            60_000
          )
        )
        expect(result).toMatchObject({ messages: 600, duplicates: 0 })
        expect(result.latencyMs.count).toBe(600)
        // 600 messages at 2000/s take at least 300 ms to offer.
        expect(result.elapsedMs).toBeGreaterThanOrEqual(299)
        expect(result.latencyMs.p50).toBeGreaterThan(0)
      },
      timeout
    )
  }
})

describe.skipIf(!rabbit.available || !postgres.available)(
  `the outbox on PostgreSQL and RabbitMQ (${rabbit.reason}; ${postgres.reason})`,
  () => {
    it(
      "relays every committed message once, with a commit-to-confirm latency each, and drops its tables",
      async () => {
        const { result, declared } = await onTarget(outbox, (client) =>
          Effect.forEach(Array.from({ length: 2 }), () =>
            runRound(
              client,
              scenario({ target: outboxTarget, operation: "outbox", amount: { messages: 1250 }, maxInFlight: 500 }),
              60_000
            )
          )
        )
        for (const r of result) {
          expect(r).toMatchObject({ messages: 1250, duplicates: 0 })
          expect(r.latencyMs.count).toBe(1250)
          expect(r.latencyMs.p50).toBeGreaterThan(0)
        }
        for (const [topic] of declared) expect(await exchangeExists(topic)).toBe(false)
        const left = await Effect.runPromise(
          Effect.scoped(
            Effect.gen(function* () {
              const context = yield* Layer.build(Postgres.layer({ url: Redacted.make(Services.url("postgres")) }))
              const sql = Context.get(context, SqlClient.SqlClient)
              return yield* sql<{ readonly tablename: string }>`
                SELECT tablename FROM pg_tables WHERE tablename LIKE ${`bench\\_${process.pid}\\_%`}`
            })
          )
        )
        expect(left).toEqual([])
      },
      timeout
    )
  }
)
