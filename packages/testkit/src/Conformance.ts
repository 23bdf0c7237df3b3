/**
 * The transport conformance suite: one function every transport runs from
 * its own tests, with its layer and its exported capabilities.
 *
 * ```ts
 * Conformance.run({ name: "memory", layer: MemoryTransport.layer(), capabilities: MemoryTransport.capabilities })
 * ```
 *
 * Every case uses fresh topic and group names, so the suite can share one
 * connection and run against a broker holding other data. A case that needs a
 * capability the transport lacks is registered as skipped, with the reason in
 * its name: never weakened to pass.
 *
 * @since 0.1.0
 */
import type { Vitest } from "@effect/vitest"
import { layer } from "@effect/vitest"
import type { Capabilities, HalfMessage, Transport } from "@lossless/core"
import type { Duration, Layer } from "effect"
import { consumerRuntimeCases } from "./cases/consumerRuntime.ts"
import { deadLetterCases } from "./cases/deadLetter.ts"
import { dedupeCases } from "./cases/dedupe.ts"
import { destinationCases } from "./cases/destinations.ts"
import { fanOutCases } from "./cases/fanOut.ts"
import { lossDetectionCases } from "./cases/lossDetection.ts"
import { noLossCases } from "./cases/noLoss.ts"
import { orderingCases } from "./cases/ordering.ts"
import { outboxCases } from "./cases/outbox.ts"
import { prefetchCases } from "./cases/prefetch.ts"
import { redeliveryCases } from "./cases/redelivery.ts"
import { reliableSendCases } from "./cases/reliableSend.ts"
import { retryLaterCases } from "./cases/retryLater.ts"
import { roundTripCases } from "./cases/roundTrip.ts"

export interface ConformanceOptions {
  /** Shown in the suite's name. */
  readonly name: string
  /** The transport under test; built once for the whole suite. */
  readonly layer: Layer.Layer<Transport.Transport, unknown>
  /** What the transport declares it does natively; decides which cases run. */
  readonly capabilities: Capabilities.Capabilities
  /**
   * How long to wait for a delivery that must come.
   * @default "10 seconds"
   */
  readonly receiveTimeout?: Duration.Input
  /**
   * How long to watch for a delivery that must not come (a broken prefetch
   * bound, an early redelivery). Longer is stricter and slower.
   * @default "300 millis"
   */
  readonly quietPeriod?: Duration.Input
  /**
   * The transport's native half messages, for a transport whose capabilities
   * say `halfMessages: true`: the half-message cases then run through them as
   * well as through the outbox.
   */
  readonly halfMessages?: NativeHalfMessages
}

/** A transport's own half messages, as the half-message cases drive them. */
export interface NativeHalfMessages {
  /** Half messages whose undecided messages the broker settles by asking `checkBacks`. */
  readonly layer: (checkBacks: ReadonlyArray<HalfMessage.CheckBack>) => Layer.Layer<HalfMessage.HalfMessages, unknown>
  /**
   * Half messages that stop right after the local transaction, as a process
   * that dies there: neither commit nor rollback reaches the broker.
   */
  readonly crashingAfterLocal: Layer.Layer<HalfMessage.HalfMessages, unknown>
  /** How many times the broker asks a check-back that keeps answering `unknown` before it discards the message. */
  readonly maxChecks: number
}

/** What each case file receives. */
export interface Suite {
  readonly it: Vitest.MethodsNonLive<Transport.Transport>
  readonly capabilities: Capabilities.Capabilities
  readonly receiveTimeout: Duration.Input
  readonly quietPeriod: Duration.Input
  /** The transport's native half messages, when it has them. */
  readonly halfMessages: NativeHalfMessages | undefined
  /** Registers a case that needs `capability`; skipped, visibly, when the transport lacks it. */
  readonly requiring: (
    capability: keyof Capabilities.Capabilities | boolean,
    label?: string
  ) => Vitest.MethodsNonLive<Transport.Transport>["effect"]
}

/** Registers the conformance suite for a transport. */
export const run = (options: ConformanceOptions): void => {
  layer(options.layer, { excludeTestServices: true, timeout: "60 seconds" })(
    `transport conformance: ${options.name}`,
    (it) => {
      const suite: Suite = {
        it,
        capabilities: options.capabilities,
        receiveTimeout: options.receiveTimeout ?? "10 seconds",
        quietPeriod: options.quietPeriod ?? "300 millis",
        halfMessages: options.halfMessages,
        requiring: (capability, label) => {
          const has = typeof capability === "boolean" ? capability : Boolean(options.capabilities[capability])
          if (has) return it.effect
          const reason = label ?? `transport lacks capability "${String(capability)}"`
          const skipped = ((name: string, self: never, timeout?: number) =>
            it.effect.skip(`${name} [skipped: ${reason}]`, self, timeout)) as unknown as typeof it.effect
          return skipped
        }
      }
      roundTripCases(suite)
      fanOutCases(suite)
      orderingCases(suite)
      prefetchCases(suite)
      retryLaterCases(suite)
      deadLetterCases(suite)
      redeliveryCases(suite)
      destinationCases(suite)
      noLossCases(suite)
      // The core runtime over this transport.
      reliableSendCases(suite)
      consumerRuntimeCases(suite)
      dedupeCases(suite)
      lossDetectionCases(suite)
      outboxCases(suite)
    }
  )
}
