/** The Promise API slice on the in-process broker, through its `memory://` plugin. */
import { MemoryTransport } from "@lossless/memory"
import { Harness } from "@lossless/testkit"
import { promiseApiCases } from "./promiseApiCases.ts"

promiseApiCases({
  name: "memory",
  plugins: [MemoryTransport.plugin],
  // A named broker per test, shared by the clients of that test.
  url: () => `memory://${Harness.uniqueName("broker")}`
})
