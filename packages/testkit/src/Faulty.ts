/**
 * A transport wrapper that misbehaves on command: fails, stalls or loses
 * confirms of publishes, and duplicates deliveries, so tests can prove what
 * core does when a broker does.
 *
 * @since 0.1.0
 */
import type { Envelope, PublishError } from "@lossless/core"
import { Transport as T } from "@lossless/core"
import { Effect, Layer, Result, Stream } from "effect"

/** What to do with one publish call. */
export type PublishFault =
  /** Pass it to the real transport. */
  | { readonly _tag: "Pass" }
  /** Fail every envelope with `error`, without publishing. */
  | { readonly _tag: "Fail"; readonly error: (envelope: Envelope.Envelope) => PublishError }
  /** Confirm without storing: a broker that loses a message it acknowledged. */
  | { readonly _tag: "Drop" }
  /** Never answer (the caller's timeout must fire). */
  | { readonly _tag: "Hang" }
  /** Publish, then report failure anyway: the broker stored it but the confirm was lost. */
  | {
      readonly _tag: "LoseConfirm"
      readonly error: (envelope: Envelope.Envelope) => PublishError
    }

export interface Faults {
  /** Decides each publish call; `call` counts from 1. */
  publish: (call: number) => PublishFault
  /** Hands every delivery to the subscriber twice (the second settlement fails, as on a real broker). */
  duplicateDeliveries: boolean
}

/** Controls and counters of a faulty transport. */
export interface Control {
  readonly faults: Faults
  /** Publish calls seen so far. */
  readonly publishCalls: () => number
  /** Envelopes passed to the real transport so far. */
  readonly published: () => number
}

export const pass: PublishFault = { _tag: "Pass" }

/** A wrapper for the transport provided below its layer, and its controls. */
export const make = (
  initial: Partial<Faults> = {}
): { readonly layer: Layer.Layer<T.Transport, never, T.Transport>; readonly control: Control } => {
  const faults: Faults = { publish: () => pass, duplicateDeliveries: false, ...initial }
  let calls = 0
  let published = 0
  const control: Control = { faults, publishCalls: () => calls, published: () => published }
  const layer = Layer.effect(
    T.Transport,
    Effect.map(T.Transport, (inner) =>
      T.Transport.of({
        ...inner,
        publish: (envelopes) =>
          Effect.suspend(() => {
            const fault = faults.publish(++calls)
            switch (fault._tag) {
              case "Pass":
                published += envelopes.length
                return inner.publish(envelopes)
              case "Fail":
                return Effect.succeed(envelopes.map((e) => Result.fail(fault.error(e))))
              case "Drop":
                return Effect.succeed(envelopes.map(() => Result.succeed(undefined)))
              case "Hang":
                return Effect.never
              case "LoseConfirm":
                published += envelopes.length
                return Effect.as(
                  inner.publish(envelopes),
                  envelopes.map((e) => Result.fail(fault.error(e)))
                )
            }
          }),
        subscribe: (topic, group, options) =>
          faults.duplicateDeliveries
            ? Stream.flatMap(inner.subscribe(topic, group, options), (d) => Stream.make(d, d))
            : inner.subscribe(topic, group, options)
      })
    )
  )
  return { layer, control }
}
