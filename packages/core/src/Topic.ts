/**
 * Topics: named, typed streams of messages.
 *
 * ```ts
 * const Orders = Topic.make("orders", Schema.Struct({ id: Schema.String, total: Schema.Number }))
 * ```
 *
 * Every group subscribed to a topic receives every message; consumers within a
 * group compete for them.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as Codec from "./Codec.ts"
import type { Envelope } from "./Envelope.ts"
import { DecodeFailed, SchemaViolation } from "./Errors.ts"
import * as Names from "./Names.ts"

/** A named, typed stream of messages. */
export interface Topic<A> {
  readonly name: string
  readonly codec: Codec.Codec<A>
  /** Validates and encodes a payload; fails before anything is sent. */
  readonly encode: (payload: A) => Effect.Effect<Uint8Array, SchemaViolation>
  /** Decodes and validates an envelope's payload. */
  readonly decode: (envelope: Envelope) => Effect.Effect<A, DecodeFailed>
}

/** The payload type of a topic. */
export type Payload<T> = T extends Topic<infer A> ? A : never

/**
 * Defines a topic. Throws `InvalidName` at once for a name that some broker
 * would reject, so the mistake surfaces where the topic is defined.
 */
export const make = <A>(
  name: string,
  schema: Codec.PayloadSchema<A>,
  options?: { readonly codec?: (schema: Codec.PayloadSchema<A>) => Codec.Codec<A> }
): Topic<A> => {
  Names.validateSync("topic", name)
  const codec = options?.codec?.(schema) ?? Codec.json(schema)
  return {
    name,
    codec,
    encode: (payload) =>
      Effect.mapError(codec.encode(payload), (reason) => new SchemaViolation({ topic: name, reason })),
    decode: (envelope) =>
      Effect.mapError(
        codec.decode(envelope.payload),
        (reason) => new DecodeFailed({ topic: name, messageId: envelope.id, reason })
      )
  }
}
