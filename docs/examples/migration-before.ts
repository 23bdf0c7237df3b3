// #region before
import * as amqp from "amqplib"

// The hand-written version: confirms, a retry loop, ack after work, a dead-letter queue by hand.
const url = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672"

export const publishOrder = async (channel: amqp.ConfirmChannel, exchange: string, order: { id: string }) => {
  const body = Buffer.from(JSON.stringify(order))
  for (let attempt = 1; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) =>
        channel.publish(exchange, "", body, { persistent: true, mandatory: true, messageId: order.id }, (err) =>
          err ? reject(err) : resolve()
        )
      )
      return
    } catch (error) {
      if (attempt >= 5) throw error
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt))
    }
  }
}

export const consumeOrders = async (channel: amqp.Channel, handle: (order: { id: string }) => Promise<void>) => {
  await channel.prefetch(16)
  await channel.consume("orders.billing", async (msg) => {
    if (msg === null) return
    try {
      await handle(JSON.parse(msg.content.toString()))
      channel.ack(msg)
    } catch {
      const attempts = Number(msg.properties.headers?.["x-attempts"] ?? 0) + 1
      if (attempts >= 5) channel.sendToQueue("orders.billing.dlq", msg.content, { persistent: true })
      else channel.sendToQueue("orders.billing", msg.content, { persistent: true, headers: { "x-attempts": attempts } })
      channel.ack(msg)
    }
  })
}
// #endregion

export const requires = ["rabbitmq"] as const

/** Runs the hand-written version once, so it stays a working program. */
export const main = async () => {
  const connection = await amqp.connect(process.env.LOSSLESS_RABBITMQ_URL ?? url)
  try {
    const confirm = await connection.createConfirmChannel()
    const suffix = Date.now().toString(36)
    const exchange = `docs-orders-${suffix}`
    await confirm.assertExchange(exchange, "fanout", { durable: false, autoDelete: true })
    const queue = `docs-orders-billing-${suffix}`
    await confirm.assertQueue(queue, { durable: true, autoDelete: true })
    await confirm.bindQueue(queue, exchange, "")
    await publishOrder(confirm, exchange, { id: `o-${suffix}` })
    const got = await confirm.get(queue, { noAck: false })
    if (got === false) throw new Error("the published order did not arrive")
    confirm.ack(got)
    await confirm.deleteQueue(queue)
    await confirm.deleteExchange(exchange)
  } finally {
    await connection.close()
  }
}
