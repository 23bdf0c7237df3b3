/**
 * The SQL outbox and inbox on the embedded SQLite database (a temporary file
 * per case): the store contract every outbox store keeps, and the outbox,
 * half-message and inbox scenarios over the memory transport.
 */
import { OutboxStoreSuite } from "@lossless/testkit"
import { sqlite } from "./support/Databases.ts"
import * as Scenarios from "./support/Scenarios.ts"
import { freshStore, storeHandles } from "./support/Stores.ts"

// Further handles are further connections to the file, as other processes have.
OutboxStoreSuite.run({ name: "sqlite", make: freshStore(sqlite), handles: (n) => storeHandles(sqlite, n) })

Scenarios.run(sqlite)
