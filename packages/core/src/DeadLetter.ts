/**
 * Dead letters: envelopes a group gave up on, kept with the reason.
 *
 * A dead letter keeps the original id and payload, so a re-driven message is
 * still recognised by dedupe, and gains headers saying where it came from,
 * why and when it failed.
 *
 * @since 0.1.0
 */
import type { Envelope } from "./Envelope.ts"
import * as Headers from "./Headers.ts"
import * as Names from "./Names.ts"

/** Where and why a message was dead-lettered. */
export interface Reason {
  readonly originalTopic: string
  readonly group: string
  readonly error: string
  /** ISO-8601 */
  readonly failedAt: string
  readonly attempt: number
}

/** The envelope to store in `group`'s dead-letter destination for `envelope`. */
export const envelope = (
  original: Envelope,
  options: { readonly group: string; readonly reason: string; readonly failedAt: number; readonly attempt: number }
): Envelope => ({
  ...original,
  topic: Names.deadLetter(original.topic, options.group),
  deliverAt: undefined,
  headers: {
    ...original.headers,
    [Headers.OriginalTopic]: original.topic,
    [Headers.OriginalGroup]: options.group,
    [Headers.ErrorMessage]: options.reason,
    [Headers.FailedAt]: new Date(options.failedAt).toISOString(),
    [Headers.Attempt]: String(options.attempt)
  }
})

/** Reads the reason headers of a dead letter; `undefined` when they are missing. */
export const reason = (deadLetter: Envelope): Reason | undefined => {
  const h = deadLetter.headers
  const originalTopic = h[Headers.OriginalTopic]
  const group = h[Headers.OriginalGroup]
  const error = h[Headers.ErrorMessage]
  const failedAt = h[Headers.FailedAt]
  if (originalTopic === undefined || group === undefined || error === undefined || failedAt === undefined) {
    return undefined
  }
  return { originalTopic, group, error, failedAt, attempt: Number(h[Headers.Attempt] ?? "1") }
}

/**
 * The envelope to publish back to the original topic when re-driving a dead
 * letter: same id, reason headers and attempt count removed.
 */
export const redrive = (deadLetter: Envelope): Envelope => {
  const headers: Record<string, string> = {}
  const dropped = new Set([
    Headers.OriginalTopic,
    Headers.OriginalGroup,
    Headers.ErrorMessage,
    Headers.FailedAt,
    Headers.Attempt
  ])
  for (const [name, value] of Object.entries(deadLetter.headers)) if (!dropped.has(name)) headers[name] = value
  return { ...deadLetter, topic: deadLetter.headers[Headers.OriginalTopic] ?? deadLetter.topic, headers }
}
