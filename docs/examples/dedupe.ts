import { Consumer, Dedupe, Publisher, Topic } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Effect, Layer, Schema } from "effect"

const Invoices = Topic.make("invoices", Schema.Struct({ orderId: Schema.String, cents: Schema.Number }))
const sentEmails: Array<string> = []

// #region consumer
const emails = Effect.gen(function* () {
  // In-process and bounded; use RedisDedupeStore or the SQL inbox when several processes consume.
  const store = yield* Dedupe.memoryStore({ capacity: 100_000 })
  yield* Consumer.start({
    topic: Invoices,
    group: "invoice-emails",
    handler: (message) => Effect.sync(() => sentEmails.push(message.payload.orderId)),
    dedupe: {
      store,
      // A business key also catches a message re-sent under a new id (a user clicking twice).
      key: (message) => `invoice:${(message.payload as { orderId: string }).orderId}`,
      ttl: "24 hours"
    }
  })
})
// #endregion

export const main: Effect.Effect<void, unknown> = Effect.gen(function* () {
  yield* emails
  yield* Publisher.send(Invoices, { orderId: "o-1", cents: 4200 })
  // The same invoice again under a new message id: acked without a second email.
  yield* Publisher.send(Invoices, { orderId: "o-1", cents: 4200 })
  yield* Publisher.send(Invoices, { orderId: "o-2", cents: 100 })
  yield* Effect.sleep("1500 millis")
  if (sentEmails.sort().join() !== "o-1,o-2") {
    return yield* Effect.die(new Error(`emails sent: ${sentEmails.join()}`))
  }
}).pipe(Effect.scoped, Effect.provide(Publisher.layer().pipe(Layer.provideMerge(MemoryTransport.layer()))))
