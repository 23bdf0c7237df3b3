import * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import { SimpleConsumer } from "rocketmq-client-nodejs"
import { expect, it } from "vitest"
import { scoped, start } from "../../src/rocketmq/index.ts"
import { service, serviceGrpc } from "../../src/rocketmq/Protocol.ts"
import { logger } from "./support.ts"

const queryRoute = (endpoint: string) =>
  new Promise<number | undefined>((resolve, reject) => {
    const client = new serviceGrpc.MessagingServiceClient(endpoint, grpc.credentials.createInsecure())
    client.queryRoute(
      new service.QueryRouteRequest(),
      new grpc.Metadata(),
      { deadline: Date.now() + 1000 },
      (error, response) => {
        client.close()
        if (error) reject(error)
        else resolve(response.getStatus()?.getCode())
      }
    )
  })

it("scoped serves for the life of the scope and stops with it", async () => {
  const endpoint = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const emulator = yield* scoped()
        // A route query without a topic is answered, so the server is up.
        expect(yield* Effect.promise(() => queryRoute(emulator.endpoint))).toBeTypeOf("number")
        return emulator.endpoint
      })
    )
  )
  await expect(queryRoute(endpoint)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE })
})

it("closing answers pending long polls with no message and returns promptly", async () => {
  const emulator = await start()
  const consumer = new SimpleConsumer({
    endpoints: emulator.endpoint,
    namespace: "",
    logger,
    consumerGroup: "g",
    subscriptions: new Map([["t", "*"]]),
    awaitDuration: 5000
  })
  await consumer.startup()
  const pending = consumer.receive(1, 1000)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const started = Date.now()
  await emulator.close()
  expect(Date.now() - started).toBeLessThan(1000)
  expect(await pending).toEqual([])
  await consumer.shutdown().catch(() => {})
})
