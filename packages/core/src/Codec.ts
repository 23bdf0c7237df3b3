/**
 * Payload codecs: how a topic's typed payload becomes bytes and back.
 *
 * A codec validates in both directions, so a payload that does not satisfy
 * its schema is refused before it is sent and bytes that do not decode are
 * refused before a handler sees them. JSON is the default; any codec with the
 * same shape can be plugged into `Topic.make`.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"

/** A schema whose encoding and decoding need no services. */
export type PayloadSchema<A> = Schema.ConstraintCodec<A, unknown, never, never>

/** Turns payloads of type `A` into bytes and back, failing with a readable reason. */
export interface Codec<A> {
  /** The media type written to brokers that have a content-type field. */
  readonly contentType: string
  readonly encode: (value: unknown) => Effect.Effect<Uint8Array, string>
  readonly decode: (bytes: Uint8Array) => Effect.Effect<A, string>
}

const utf8Encoder = new TextEncoder()
// `fatal` refuses invalid UTF-8 instead of decoding it to replacement characters.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })

/** UTF-8 JSON validated by the schema (the default). */
export const json = <A>(schema: PayloadSchema<A>): Codec<A> => {
  const codec = Schema.fromJsonString(schema)
  const encode = Schema.encodeUnknownEffect(codec)
  const decode = Schema.decodeUnknownEffect(codec)
  return {
    contentType: "application/json",
    encode: (value) =>
      encode(value).pipe(
        Effect.map((text) => utf8Encoder.encode(text)),
        Effect.mapError((error) => error.message)
      ),
    decode: (bytes) =>
      Effect.try({
        try: () => utf8Decoder.decode(bytes),
        catch: () => "payload is not valid UTF-8"
      }).pipe(Effect.flatMap((text) => Effect.mapError(decode(text), (error) => error.message)))
  }
}
