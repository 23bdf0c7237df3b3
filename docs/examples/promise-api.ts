// #region topic
import {
  checkBack,
  createClient,
  PermanentFailure,
  SendFailed,
  TopicNotFound,
  topic,
  Unroutable
} from "@lossless/client"
import { MemoryTransport } from "@lossless/memory"
import { RabbitTransport } from "@lossless/rabbitmq"

interface Order {
  readonly id: string
  readonly total: number
}

// Payloads are JSON; the function checks them before a send and after a receive.
const Orders = topic("orders", (value): Order => {
  const { id, total } = value as Partial<Order>
  if (typeof id !== "string" || typeof total !== "number") throw new TypeError("an order has an id and a total")
  return { id, total }
})
// #endregion

// Stand-ins for the application's database and payment service.
const bookings = new Map<string, Order>()
const charged = new Set<string>()
const charge = async (order: Order): Promise<void> => {
  charged.add(order.id)
}

const until = async (done: () => boolean): Promise<void> => {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 10))
}

export const main = async (): Promise<void> => {
  // #region create
  // LOSSLESS_URL picks the broker (e.g. amqp://user:pass@rabbit:5672); memory:// when it is unset.
  const client = await createClient({
    plugins: [MemoryTransport.plugin, RabbitTransport.plugin],
    transactional: {
      // Asked about a transactional message a crash left undecided.
      checkBacks: [checkBack(Orders, (message) => (bookings.has(message.payload.id) ? "commit" : "rollback"))]
    }
  })
  // #endregion

  // #region consume
  const billing = await client.consume(
    Orders,
    "billing",
    async (message) => {
      if (message.payload.total < 0) throw new PermanentFailure({ reason: "negative total" })
      await charge(message.payload)
    },
    { concurrency: 8, dedupe: true, retry: { immediate: 1, delays: ["1 second", "10 seconds", "1 minute"] } }
  )
  // #endregion

  // #region send
  const sent = await client.send(Orders, { id: "o-1", total: 42 }, { key: "customer-7" })
  console.log(`broker confirmed ${sent.id}`)
  // #endregion

  // #region transactional
  const booked = await client.sendTransactional(Orders, { id: "o-2", total: 10 }, async () => {
    bookings.set("o-2", { id: "o-2", total: 10 }) // the local transaction
    return "o-2"
  })
  // #endregion

  // #region errors
  try {
    await client.send("audit-log", { event: "login" })
  } catch (err) {
    if (err instanceof SendFailed) {
      const cause = err.failures[0]?.error
      if (cause instanceof TopicNotFound || cause instanceof Unroutable) {
        console.log(`nobody consumes ${cause.topic} yet`)
      } else if (err.retryable) {
        console.log("the broker is unavailable; try again later")
      }
    } else {
      throw err
    }
  }
  // #endregion

  await until(() => charged.has("o-1") && charged.has(booked))
  console.log(`dead letters of billing: ${(await client.deadLetters(Orders, "billing", { wait: 100 })).length}`)

  // #region close
  await billing.stop() // optional: close() stops every consumer
  await client.close() // running handlers finish, pending sends complete, then the connection closes
  // #endregion
}
