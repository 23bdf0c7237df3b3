/**
 * The in-memory transport: the embedded default (`memory://`) that needs no
 * server, and the reference implementation of the transport contract.
 *
 * `memory://` gives each layer its own broker. `memory://<name>` shares one
 * named broker between every layer in the process that uses that name, so a
 * producer and a consumer built separately still meet; it lives until the last
 * layer using it is released. Messages are not durable.
 *
 * @since 0.1.0
 */
import { Capabilities, Transport, type TransportUrl } from "@lossless/core"
import { Context, Effect, Exit, Layer, Redacted, Scope } from "effect"
import { MemoryBroker, type MemoryBrokerOptions } from "./MemoryBroker.ts"

/** What the memory transport does natively. */
export const capabilities: Capabilities.Capabilities = Capabilities.make({
  durable: false,
  delayedDelivery: true,
  nativeDeadLetter: true,
  halfMessages: false,
  ordering: "queue",
  redeliveryFlag: true,
  maxMessageBytes: 16 * 1024 * 1024
})

export interface MemoryTransportOptions extends MemoryBrokerOptions {
  /** Share the broker with every other layer in this process using the same name. */
  readonly name?: string | undefined
}

/** The broker behind the current memory transport, for inspection in tests and tools. */
export class Broker extends Context.Service<Broker, MemoryBroker>()("@lossless/memory/Broker") {}

/** The transport over a given broker. */
export const make = (broker: MemoryBroker): Transport.TransportShape => ({
  name: "memory",
  capabilities: { ...capabilities, maxMessageBytes: broker.maxMessageBytes },
  ensureTopology: (topology) => broker.ensureTopology(topology),
  publish: (envelopes) => broker.publish(envelopes),
  subscribe: (topic, group, options) => broker.subscribe(topic, group, options, "main"),
  subscribeDeadLetters: (topic, group, options) => broker.subscribe(topic, group, options, "dead")
})

const named = new Map<string, { readonly broker: MemoryBroker; readonly scope: Scope.Closeable; refs: number }>()

const acquireNamed = (name: string, options: MemoryBrokerOptions): Effect.Effect<MemoryBroker, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const existing = named.get(name)
      if (existing !== undefined) {
        existing.refs++
        return existing.broker
      }
      // The broker outlives the layer that created it while other layers share it.
      const scope = yield* Scope.make()
      const broker = yield* Scope.provide(scope)(MemoryBroker.make(options))
      named.set(name, { broker, scope, refs: 1 })
      return broker
    }),
    () =>
      Effect.suspend(() => {
        const entry = named.get(name)
        if (entry === undefined || --entry.refs > 0) return Effect.void
        named.delete(name)
        return Scope.close(entry.scope, Exit.void)
      })
  )

const acquire = (options: MemoryTransportOptions): Effect.Effect<MemoryBroker, never, Scope.Scope> =>
  options.name === undefined || options.name === "" ? MemoryBroker.make(options) : acquireNamed(options.name, options)

/** The memory transport and its broker. */
export const layerWithBroker = (options: MemoryTransportOptions = {}): Layer.Layer<Transport.Transport | Broker> =>
  Layer.effectContext(
    Effect.map(acquire(options), (broker) =>
      Context.make(Broker, broker).pipe(Context.add(Transport.Transport, make(broker)))
    )
  )

/** The memory transport. */
export const layer = (options: MemoryTransportOptions = {}): Layer.Layer<Transport.Transport> =>
  layerWithBroker(options)

/** Serves `memory://` and `memory://<name>` URLs. */
export const plugin: TransportUrl.TransportPlugin = {
  name: "memory",
  schemes: ["memory"],
  layer: (url) => layer({ name: Redacted.value(url).hostname })
}
