/**
 * Every target the harness knows, in report order. A new adapter adds its
 * file beside `memory.ts` (a `lossless` target via `fromLayer`, and a `raw`
 * target over the broker's own client as its baseline) and replaces its
 * `planned` entry here; its `probe` says whether its server answers. The
 * `runtime` targets drive the core Publisher and Consumer over the memory
 * transport, one per core feature (`runtime.ts`), and over RabbitMQ
 * (`rabbitmq.ts`, beside amqplib); `outbox.ts` runs the SQL outbox and its
 * relay on PostgreSQL and RabbitMQ.
 */
import { Effect } from "effect"
import { memory } from "./memory.ts"
import { outbox } from "./outbox.ts"
import { rabbitmqRaw, rabbitmqRawWire, rabbitmqRuntime, rabbitmqTransport } from "./rabbitmq.ts"
import { runtime } from "./runtime.ts"
import { BenchError, type Target } from "./Target.ts"

/** A target whose adapter does not exist yet: listed, so the report says it was skipped. */
const planned = (name: string, packageName: string): Target => ({
  name,
  broker: name,
  kind: "lossless",
  description: `${packageName}, through the Transport contract`,
  probe: Effect.succeed({ available: false, reason: `${packageName} is not written yet` }),
  open: Effect.fail(new BenchError({ message: `${name}: not available` }))
})

export const targets: ReadonlyArray<Target> = [
  memory,
  runtime("plain"),
  runtime("loss-detection"),
  runtime("memory-dedupe"),
  runtime("redis-dedupe"),
  rabbitmqRaw,
  rabbitmqRawWire,
  rabbitmqTransport,
  rabbitmqRuntime,
  outbox,
  planned("kafka", "@lossless/kafka"),
  planned("rocketmq", "@lossless/rocketmq")
]
