/**
 * Helpers for tests that drive a transport directly: unique names, envelopes
 * to publish, subscriptions that can be read from and crashed, and the
 * counting assertions every "no loss" claim rests on.
 *
 * @since 0.1.0
 */
import { type Delivery, Envelope, MessageId, Transport } from "@lossless/core"
import { Cause, Clock, Duration, Effect, Fiber, type Option, Queue, Result, type Scope, Stream } from "effect"

let counter = 0

/** A topic or group name no other test uses (valid on every broker). */
export const uniqueName = (prefix: string): string =>
  `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

/** The payload bytes of a text. */
export const bytes = (text: string): Uint8Array => utf8.encode(text)

/** The text of a payload. */
export const text = (payload: Uint8Array): string => fromUtf8.decode(payload)

/** An envelope for `topic` with a fresh id; `payload` defaults to the id. */
export const envelope = (
  topic: string,
  fields: {
    readonly payload?: string
    readonly key?: string
    readonly headers?: Record<string, string>
    readonly deliverAt?: number
  } = {}
): Envelope.Envelope => {
  const now = Date.now()
  const id = MessageId.fromMillis(now)
  return Envelope.make({
    id,
    topic,
    payload: bytes(fields.payload ?? id),
    key: fields.key,
    headers: fields.headers,
    timestamp: now,
    deliverAt: fields.deliverAt
  })
}

/** `n` envelopes for `topic`, payload `"<i>"`, optionally keyed by `key(i)`. */
export const envelopes = (topic: string, n: number, key?: (i: number) => string): Array<Envelope.Envelope> =>
  Array.from({ length: n }, (_, i) =>
    envelope(topic, key === undefined ? { payload: String(i) } : { payload: String(i), key: key(i) })
  )

/** Declares topics and groups. */
export const declare = (
  topics: ReadonlyArray<string>,
  groups: ReadonlyArray<readonly [topic: string, group: string]>
) =>
  Transport.Transport.use((t) =>
    t.ensureTopology({ topics, groups: groups.map(([topic, group]) => ({ topic, group })) })
  )

/** Publishes and fails (with every reason) unless every envelope was confirmed. */
export const publishAll = (batch: ReadonlyArray<Envelope.Envelope>) =>
  Transport.Transport.use((t) =>
    Effect.flatMap(t.publish(batch), (results) => {
      const failures = results.flatMap((r, i) => (Result.isFailure(r) ? [`${batch[i]?.id}: ${r.failure.message}`] : []))
      return failures.length === 0
        ? Effect.void
        : Effect.die(new Error(`${failures.length} of ${batch.length} not confirmed:\n${failures.join("\n")}`))
    })
  )

/** A live subscription whose deliveries tests read one by one, and which can be crashed. */
export interface Subscription {
  /** The next delivery; dies naming the subscription when none arrives within `within`. */
  readonly next: (within?: Duration.Input) => Effect.Effect<Delivery.Delivery>
  /** The next delivery, or none when nothing arrives within `within`. */
  readonly poll: (within: Duration.Input) => Effect.Effect<Option.Option<Delivery.Delivery>>
  /** The next `n` deliveries, left unsettled (at most `prefetch` can be outstanding). */
  readonly take: (n: number, within?: Duration.Input) => Effect.Effect<Array<Delivery.Delivery>>
  /** The next `n` deliveries, each acked as it arrives. */
  readonly consume: (n: number, within?: Duration.Input) => Effect.Effect<Array<Delivery.Delivery>>
  /** Succeeds when nothing arrives within `within`; dies with what arrived otherwise. */
  readonly nothingWithin: (within: Duration.Input) => Effect.Effect<void>
  /** Ends the subscription as a crash would: unsettled deliveries are not settled. */
  readonly close: Effect.Effect<void>
}

/** Opens a subscription in the current scope. */
export const subscribe = (
  topic: string,
  group: string,
  options: {
    readonly prefetch?: number
    readonly source?: "main" | "dead-letters"
    readonly receiveTimeout?: Duration.Input
  } = {}
): Effect.Effect<Subscription, never, Transport.Transport | Scope.Scope> =>
  Effect.gen(function* () {
    const transport = yield* Transport.Transport
    const prefetch = options.prefetch ?? 16
    const stream =
      options.source === "dead-letters"
        ? transport.subscribeDeadLetters(topic, group, { prefetch })
        : transport.subscribe(topic, group, { prefetch })
    const inbox = yield* Queue.unbounded<Delivery.Delivery>()
    const fiber = yield* Effect.forkScoped(Stream.runForEach(stream, (d) => Queue.offer(inbox, d)))
    const label = `${options.source === "dead-letters" ? "dead letters of " : ""}${topic}/${group}`
    const ended = Effect.flatMap(Fiber.await(fiber), (exit) =>
      Effect.die(
        new Error(
          `subscription ${label} ended: ${exit._tag === "Failure" ? Cause.pretty(exit.cause) : "stream completed"}`
        )
      )
    )
    const defaultWithin = options.receiveTimeout ?? "10 seconds"
    const next = (within: Duration.Input = defaultWithin) =>
      Effect.raceFirst(Queue.take(inbox), ended).pipe(
        Effect.timeoutOrElse({
          duration: within,
          orElse: () =>
            Effect.die(new Error(`no delivery on ${label} within ${Duration.format(Duration.fromInputUnsafe(within))}`))
        })
      )
    return {
      next,
      poll: (within) => Effect.raceFirst(Queue.take(inbox), ended).pipe(Effect.timeoutOption(within)),
      take: (n, within) => Effect.forEach(Array.from({ length: n }), () => next(within)),
      consume: (n, within) =>
        Effect.forEach(Array.from({ length: n }), () =>
          Effect.flatMap(next(within), (d) => Effect.as(Effect.orDie(d.ack), d))
        ),
      nothingWithin: (within) =>
        Queue.take(inbox).pipe(
          Effect.timeoutOption(within),
          Effect.flatMap((got) =>
            got._tag === "None"
              ? Effect.void
              : Effect.die(
                  new Error(
                    `unexpected delivery ${got.value.envelope.id} (${text(got.value.envelope.payload)}) on ${label}`
                  )
                )
          )
        ),
      close: Fiber.interrupt(fiber)
    }
  })

/**
 * Waits until `condition` holds, checking every 10 ms; dies with `what` when
 * it does not hold within `within`.
 */
export const eventually = (what: string, condition: () => boolean, within: Duration.Input = "10 seconds") =>
  Effect.gen(function* () {
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(within)
    while (!condition()) {
      if ((yield* Clock.currentTimeMillis) > deadline) {
        return yield* Effect.die(
          new Error(`timed out after ${Duration.format(Duration.fromInputUnsafe(within))} waiting for ${what}`)
        )
      }
      yield* Effect.sleep("10 millis")
    }
  })

/** Milliseconds since `start` on the Effect clock. */
export const since = (start: number) => Effect.map(Clock.currentTimeMillis, (now) => now - start)

/** What a consumer saw, compared with what was sent. */
export interface Tally {
  readonly lost: ReadonlyArray<string>
  readonly duplicated: ReadonlyArray<string>
  readonly unexpected: ReadonlyArray<string>
}

/** Counts, per id, what was received against what was sent. */
export const tally = (sent: Iterable<string>, received: Iterable<string>): Tally => {
  const counts = new Map<string, number>()
  for (const id of received) counts.set(id, (counts.get(id) ?? 0) + 1)
  const expected = new Set(sent)
  return {
    lost: [...expected].filter((id) => !counts.has(id)),
    duplicated: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    unexpected: [...counts.keys()].filter((id) => !expected.has(id))
  }
}

/** Dies unless every sent id was received exactly once and nothing else was. */
export const assertExactlyOnce = (sent: Iterable<string>, received: Iterable<string>): void => {
  const { lost, duplicated, unexpected } = tally(sent, received)
  if (lost.length + duplicated.length + unexpected.length > 0) {
    throw new Error(
      `expected each message exactly once: ${lost.length} lost, ${duplicated.length} duplicated, ${unexpected.length} unexpected` +
        (lost.length > 0 ? `\n  lost: ${lost.slice(0, 10).join(", ")}` : "") +
        (duplicated.length > 0 ? `\n  duplicated: ${duplicated.slice(0, 10).join(", ")}` : "")
    )
  }
}

/** Dies unless every sent id was received at least once and nothing else was. */
export const assertNoneLost = (sent: Iterable<string>, received: Iterable<string>): void => {
  const { lost, unexpected } = tally(sent, received)
  if (lost.length + unexpected.length > 0) {
    throw new Error(`${lost.length} lost, ${unexpected.length} unexpected; lost: ${lost.slice(0, 10).join(", ")}`)
  }
}
