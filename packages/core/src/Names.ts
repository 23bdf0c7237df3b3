/**
 * Topic and group names that every supported broker accepts.
 *
 * A name is one or more runs of ASCII letters and digits joined by single `-`
 * or `_` (`orders`, `order-events`, `billing_v2`), at most 100 characters.
 * Dots are excluded because RocketMQ rejects them, and doubled separators are
 * excluded so that the names Lossless derives from a topic and a group
 * (joined with `__`) can never collide with a user's name or with each other.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { InvalidName } from "./Errors.ts"

/** The longest topic or group name accepted. */
export const maxLength = 100

const pattern = /^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$/

/** Separator of derived names; user names cannot contain it. */
export const separator = "__"

const problem = (name: string): string | undefined => {
  if (name.length === 0) return "must not be empty"
  if (name.length > maxLength) return `must be at most ${maxLength} characters (has ${name.length})`
  if (!pattern.test(name)) {
    return "use letters, digits and single '-' or '_' between them (no dots, spaces, leading, trailing or doubled separators)"
  }
  return undefined
}

/** Checks a name, failing with `InvalidName` that says what is wrong. */
export const validate = (kind: "topic" | "group", name: string): Effect.Effect<string, InvalidName> => {
  const reason = problem(name)
  return reason === undefined ? Effect.succeed(name) : Effect.fail(new InvalidName({ kind, name, reason }))
}

/** Like `validate`, for definitions made at module load: throws the `InvalidName` error. */
export const validateSync = (kind: "topic" | "group", name: string): string => {
  const reason = problem(name)
  if (reason !== undefined) throw new InvalidName({ kind, name, reason })
  return name
}

/** Whether `name` is a valid topic or group name. */
export const isValid = (name: string): boolean => problem(name) === undefined

/**
 * The name of a group's dead-letter destination for a topic. Adapters may map
 * it onto a broker-native destination, but every adapter uses this name where
 * it creates one, so operators find dead letters under one name everywhere.
 */
export const deadLetter = (topic: string, group: string): string => `${topic}${separator}${group}${separator}dlq`

/** The name of a group's delayed-retry destination for a topic, where a broker needs one. */
export const retry = (topic: string, group: string): string => `${topic}${separator}${group}${separator}retry`
