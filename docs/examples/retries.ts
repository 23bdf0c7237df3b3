import { Consumer, DeadLetter, PermanentFailure, Publisher, Topic, Transport } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { Data, Effect, Layer, Option, Schedule, Schema, Stream } from "effect"

const Payments = Topic.make("payments", Schema.Struct({ id: Schema.String, cents: Schema.Number }))

class CardDeclined extends Data.TaggedError("CardDeclined")<{ readonly id: string }> {}
class GatewayTimeout extends Data.TaggedError("GatewayTimeout")<{ readonly id: string }> {}

let gatewayCalls = 0
const charge = (id: string, cents: number): Effect.Effect<void, PermanentFailure | CardDeclined | GatewayTimeout> =>
  Effect.suspend((): Effect.Effect<void, PermanentFailure | CardDeclined | GatewayTimeout> => {
    gatewayCalls++
    if (cents < 0) return Effect.fail(new PermanentFailure({ reason: `negative amount for ${id}` }))
    if (cents > 10_000) return Effect.fail(new CardDeclined({ id }))
    // The gateway times out on the first call for this payment, then succeeds.
    if (id === "p-slow" && gatewayCalls % 2 === 1) return Effect.fail(new GatewayTimeout({ id }))
    return Effect.void
  })

// #region consumer
const payments = Consumer.start({
  topic: Payments,
  group: "charging",
  handler: (message) => charge(message.payload.id, message.payload.cents),
  retry: {
    // Blips (a timeout, a lock) are retried at once, within the delivery.
    immediate: 2,
    // Then back to the broker: after 1 s, 10 s, 100 s; then the dead letters.
    delayed: Schedule.exponential("1 second", 10).pipe(Schedule.upTo({ times: 3 })),
    // No retry fixes a declined card: straight to the dead letters, with the error.
    isPermanent: (error) => error instanceof PermanentFailure || error instanceof CardDeclined
  }
})
// #endregion

// #region dead-letters
// Dead letters are messages: read them with the reason, fix the cause, re-drive (`lossless dlq redrive`).
const inspect = Effect.gen(function* () {
  const transport = yield* Transport.Transport
  return yield* transport.subscribeDeadLetters(Payments.name, "charging", { prefetch: 10 }).pipe(
    Stream.mapEffect((dead) => {
      const why = DeadLetter.reason(dead.envelope)
      // Settled while the subscription is open: a delivery still unsettled when it ends goes back.
      return Effect.log(`${dead.envelope.id} failed after ${why?.attempt} attempt(s): ${why?.error}`).pipe(
        Effect.andThen(dead.ack),
        Effect.as(why)
      )
    }),
    Stream.take(1),
    Stream.runHead
  )
})
// #endregion

export const main: Effect.Effect<void, unknown> = Effect.gen(function* () {
  yield* payments
  yield* Publisher.sendBatch(Payments, [
    { payload: { id: "p-ok", cents: 500 } },
    { payload: { id: "p-slow", cents: 700 } },
    { payload: { id: "p-declined", cents: 50_000 } }
  ])
  const why = Option.getOrUndefined(yield* inspect)
  if (why === undefined || !why.error.includes("CardDeclined")) {
    return yield* Effect.die(new Error(`expected the declined card in the dead letters, got ${JSON.stringify(why)}`))
  }
}).pipe(Effect.scoped, Effect.provide(Publisher.layer().pipe(Layer.provideMerge(MemoryTransport.layer()))))
