// Runs the orders service on the transport named by LOSSLESS_URL (default: the in-process broker).
import { TransportUrl } from "@lossless/core"
import { MemoryTransport } from "@lossless/memory"
import { RabbitTransport } from "@lossless/rabbitmq"
import { Cause, Effect } from "effect"
import { main } from "./service.ts"

const transports = [MemoryTransport.plugin, RabbitTransport.plugin]

const exit = await Effect.runPromiseExit(main(TransportUrl.layerConfig(transports)))
if (exit._tag === "Failure") {
  const error = Cause.squash(exit.cause)
  const tag = (error as { _tag?: string })._tag
  console.error(
    `orders service failed: ${error instanceof Error ? `${tag ?? error.name}: ${error.message}` : String(error)}`
  )
  process.exitCode = 1
}
