/**
 * A small orders service: a checkout publishes `OrderPlaced`, and a consumer
 * in the `confirmation-emails` group sends one confirmation email per order.
 *
 * The email provider is simulated and flaky (it times out now and then), so
 * the run shows retries; one order is malformed for the mailer and ends in
 * the dead letters. At the end the service counts: every order either got
 * exactly one email or is in the dead letters with a reason.
 */
import { Consumer, PermanentFailure, Publisher, Topic, Transport } from "@lossless/core"
import { Console, Effect, Latch, type Layer, Schema } from "effect"

export const OrderPlaced = Schema.Struct({
  orderId: Schema.String,
  customer: Schema.String,
  email: Schema.String,
  total: Schema.Number
})

export const Orders = Topic.make("orders", OrderPlaced)

/** An email provider that fails some first attempts, as real ones do. */
class MailerTimeout extends Schema.TaggedError<MailerTimeout>()("MailerTimeout", { orderId: Schema.String }) {}

export interface Report {
  readonly transport: string
  readonly placed: number
  readonly emailed: number
  readonly retries: number
  readonly deadLettered: ReadonlyArray<string>
  readonly duplicates: number
  readonly millis: number
}

export const run = (options: { readonly orders: number }): Effect.Effect<Report, unknown, Transport.Transport> =>
  Effect.scoped(
    Effect.gen(function* () {
      const transport = yield* Transport.Transport
      const started = Date.now()
      const emailsSent = new Map<string, number>()
      const deadLettered: Array<string> = []
      let retries = 0
      let settled = 0
      const allSettled = yield* Latch.make()

      const sendConfirmation = (order: typeof OrderPlaced.Type, attempt: number) =>
        Effect.gen(function* () {
          if (!order.email.includes("@")) {
            return yield* new PermanentFailure({ reason: `order ${order.orderId}: invalid email "${order.email}"` })
          }
          // Every 7th order's first attempt times out at the provider.
          if (Number(order.orderId.slice(6)) % 7 === 3 && attempt === 1) {
            retries++
            return yield* new MailerTimeout({ orderId: order.orderId })
          }
          emailsSent.set(order.orderId, (emailsSent.get(order.orderId) ?? 0) + 1)
        })

      yield* Consumer.start({
        topic: Orders,
        group: "confirmation-emails",
        concurrency: 8,
        retry: { immediate: 0 },
        handler: (message, context) =>
          sendConfirmation(message.payload, context.attempt).pipe(
            Effect.tap(() =>
              Effect.sync(() => {
                if (++settled === options.orders) allSettled.openUnsafe()
              })
            ),
            Effect.tapError((e: PermanentFailure | MailerTimeout) =>
              Effect.sync(() => {
                if (e._tag === "PermanentFailure") {
                  deadLettered.push(message.payload.orderId)
                  if (++settled === options.orders) allSettled.openUnsafe()
                }
              })
            )
          )
      })
      yield* Console.log(`transport: ${transport.name}; consumer "confirmation-emails" started`)

      const orders = Array.from({ length: options.orders }, (_, i) => ({
        payload: {
          orderId: `order-${String(i).padStart(5, "0")}`,
          customer: `customer-${i % 50}`,
          email: i === 13 ? "not-an-email" : `customer-${i % 50}@example.com`,
          total: 10 + (i % 90)
        },
        key: `customer-${i % 50}`
      }))
      // Checkout publishes in batches; each returns only after the broker confirmed it.
      for (let i = 0; i < orders.length; i += 100) yield* Publisher.sendBatch(Orders, orders.slice(i, i + 100))
      yield* Console.log(`placed ${orders.length} orders (all confirmed by the broker)`)

      yield* allSettled.await.pipe(Effect.timeout("60 seconds"))
      const duplicates = [...emailsSent.values()].filter((n) => n > 1).length
      return {
        transport: transport.name,
        placed: orders.length,
        emailed: emailsSent.size,
        retries,
        deadLettered,
        duplicates,
        millis: Date.now() - started
      }
    })
  ).pipe(Effect.provide(Publisher.layer()))

/** Runs the service on a transport layer and prints its report. */
export const main = (transport: Layer.Layer<Transport.Transport, unknown>, orders = 2000) =>
  Effect.gen(function* () {
    const report = yield* run({ orders }).pipe(Effect.provide(transport))
    yield* Console.log(
      [
        `confirmation emails sent: ${report.emailed} (retried after a provider timeout: ${report.retries})`,
        `dead-lettered:            ${report.deadLettered.length} ${report.deadLettered.join(", ")}`,
        `sent twice:               ${report.duplicates}`,
        `unaccounted for:          ${report.placed - report.emailed - report.deadLettered.length}`,
        `done in ${report.millis} ms on ${report.transport}`
      ].join("\n")
    )
    return report
  })
