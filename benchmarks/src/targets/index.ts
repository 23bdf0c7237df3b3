/**
 * Every target the harness knows, in report order. A new adapter adds its
 * file beside `memory.ts` (a `lossless` target via `fromLayer`, and a `raw`
 * target over the broker's own client as its baseline) and lists both here;
 * its `probe` says whether its server answers. The
 * `runtime` targets drive the core Publisher and Consumer over the memory
 * transport, one per core feature (`runtime.ts`), and over RabbitMQ
 * (`rabbitmq.ts`, beside amqplib, plain and with each feature); `peers.ts`
 * runs other RabbitMQ libraries beside them; `outbox.ts` runs the SQL outbox
 * and its relay on PostgreSQL and RabbitMQ.
 */
import { sweptPartitions } from "../Scenario.ts"
import { kafkaRaw, kafkaRawWith, kafkaRuntime, kafkaRuntimeWith, kafkaTransport } from "./kafka.ts"
import { memory } from "./memory.ts"
import { outbox } from "./outbox.ts"
import { peerTargets } from "./peers.ts"
import { rabbitmqRaw, rabbitmqRawWire, rabbitmqRuntime, rabbitmqRuntimeWith, rabbitmqTransport } from "./rabbitmq.ts"
import { rocketmqRaw, rocketmqRuntime, rocketmqTransport } from "./rocketmq.ts"
import { runtime } from "./runtime.ts"
import type { Target } from "./Target.ts"

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
  rabbitmqRuntimeWith("loss-detection"),
  rabbitmqRuntimeWith("memory-dedupe"),
  rabbitmqRuntimeWith("redis-dedupe"),
  ...peerTargets,
  outbox,
  kafkaRaw,
  kafkaTransport,
  kafkaRuntime,
  ...sweptPartitions.flatMap((p) => [kafkaRawWith(p), kafkaRuntimeWith(p)]),
  rocketmqRaw,
  rocketmqTransport,
  rocketmqRuntime
]
