/**
 * Topics for code that does not write Effect: plain JSON, JSON checked by a
 * validation function, or JSON checked by an Effect Schema.
 *
 * ```ts
 * const Events = topic("events") // any JSON value
 * const Orders = topic("orders", (value) => {
 *   const order = value as { id?: unknown; total?: unknown }
 *   if (typeof order.id !== "string" || typeof order.total !== "number") throw new TypeError("not an order")
 *   return { id: order.id, total: order.total }
 * })
 * ```
 *
 * The result is core's `Topic`, so topics defined with `Topic.make` work here
 * too, and these work in Effect code.
 *
 * @since 0.1.0
 */
import { type Codec, Topic } from "@lossless/core"
import { Effect, Schema } from "effect"

/**
 * Checks an incoming or outgoing value and returns it typed; throws (any
 * error) when the value is not acceptable. Runs before a send and after a
 * receive, so it must not change the meaning of a value it accepts.
 */
export type Validator<A> = (value: unknown) => A

/** What a topic's payloads are checked with: an Effect Schema or a validation function. */
export type TopicSchema<A> = Codec.PayloadSchema<A> | Validator<A>

/** A topic, or the name of a plain JSON topic. */
export type TopicLike<A> = Topic.Topic<A> | string

const utf8Encoder = new TextEncoder()
// `fatal` refuses invalid UTF-8 instead of decoding it to replacement characters.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })

const reasonOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** UTF-8 JSON checked by `validate` on the way out and on the way in. */
const validatedJson = <A>(validate: Validator<A>): Codec.Codec<A> => ({
  contentType: "application/json",
  encode: (value) =>
    Effect.try({
      try: () => {
        const text = JSON.stringify(validate(value))
        if (text === undefined) throw new TypeError("the payload has no JSON form")
        return utf8Encoder.encode(text)
      },
      catch: reasonOf
    }),
  decode: (bytes) =>
    Effect.try({
      try: () => validate(JSON.parse(utf8Decoder.decode(bytes))),
      catch: reasonOf
    })
})

/**
 * Defines a topic. Without a schema its payload is any JSON value; with a
 * validation function or an Effect Schema, payloads are checked before they
 * are sent (`SchemaViolation`) and after they are received (an undecodable
 * message is dead-lettered without reaching the handler).
 *
 * Throws `InvalidName` at once for a name some broker would reject.
 */
export function topic(name: string): Topic.Topic<unknown>
export function topic<A>(name: string, schema: TopicSchema<A>): Topic.Topic<A>
export function topic<A>(name: string, schema?: TopicSchema<A>): Topic.Topic<A> | Topic.Topic<unknown> {
  if (schema === undefined) return Topic.make(name, Schema.Unknown)
  if (Schema.isSchema(schema)) return Topic.make(name, schema as Codec.PayloadSchema<A>)
  const validate = schema as Validator<A>
  return Topic.make<A>(name, Schema.Unknown as Codec.PayloadSchema<A>, { codec: () => validatedJson(validate) })
}

const plain = new Map<string, Topic.Topic<unknown>>()

/** The topic itself, or the plain JSON topic of that name (made once per name). */
export const resolve = <A>(topicLike: TopicLike<A>): Topic.Topic<A> => {
  if (typeof topicLike !== "string") return topicLike
  let found = plain.get(topicLike)
  if (found === undefined) {
    found = topic(topicLike)
    plain.set(topicLike, found)
  }
  return found as Topic.Topic<A>
}
