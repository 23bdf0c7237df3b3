/**
 * Every target the harness knows, in report order. A new adapter adds its
 * file beside `memory.ts` (a `lossless` target via `fromLayer`, and a `raw`
 * target over the broker's own client as its baseline) and replaces its
 * `planned` entry here; its `probe` says whether its server answers. The
 * `runtime` targets drive the core Publisher and Consumer over the memory
 * transport, one per core feature (`runtime.ts`).
 */
import { Effect } from "effect"
import { memory } from "./memory.ts"
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
  planned("rabbitmq", "@lossless/rabbitmq"),
  planned("kafka", "@lossless/kafka"),
  planned("rocketmq", "@lossless/rocketmq")
]
