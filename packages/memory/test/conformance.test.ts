import { MemoryTransport } from "@lossless/memory"
import { Conformance } from "@lossless/testkit"

Conformance.run({
  name: "memory",
  layer: MemoryTransport.layer(),
  capabilities: MemoryTransport.capabilities
})
