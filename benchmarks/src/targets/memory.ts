/**
 * The in-process broker of @lossless/memory, through the Transport contract.
 * Always available; a fresh broker per comparison run.
 */
import { MemoryTransport } from "@lossless/memory"
import { Effect } from "effect"
import type { Target } from "./Target.ts"
import { fromLayer } from "./transport.ts"

export const memory: Target = {
  name: "memory",
  broker: "memory",
  kind: "lossless",
  description: "@lossless/memory in-process broker, through the Transport contract",
  probe: Effect.succeed({ available: true }),
  open: fromLayer(MemoryTransport.layer())
}
