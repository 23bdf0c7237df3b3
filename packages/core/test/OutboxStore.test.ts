import { Outbox } from "@lossless/core"
import { OutboxStoreSuite } from "@lossless/testkit"

// The contract every outbox store keeps, on the reference store.
OutboxStoreSuite.run({ name: "memory", make: Outbox.memoryStore })
