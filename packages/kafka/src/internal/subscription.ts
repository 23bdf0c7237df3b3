/**
 * A subscription: one kafkajs consumer in the group's Kafka consumer group,
 * reading the work topic and the group's retry topic, as a scoped stream of
 * deliveries.
 *
 * - Offsets are committed only for each partition's settled prefix (see
 *   `offsets.ts`), never automatically, and never for a partition this
 *   member no longer owns.
 * - kafkajs's batch handler only hands records to the stream and returns,
 *   so kafkajs keeps fetching and heartbeating however long handlers run.
 *   At most `prefetch` deliveries are unsettled at once: when they are, the
 *   partition being read is paused (its unread records stay in Kafka, not in
 *   memory) and resumed once deliveries settle.
 * - A retry copy that is not yet due pauses its partition until it is.
 * - A rebalance keeps the deliveries of partitions this member keeps; those
 *   of partitions it lost can no longer be settled (`settleable()` is
 *   false): the new owner reads them again from the last commit.
 * - Ending the stream commits what is settled, then leaves the group, so
 *   unsettled deliveries go to the remaining members.
 * - A group that never committed starts at the earliest record its topics
 *   retain, so nothing published before its first subscription is skipped.
 */
import {
  DeadLetter,
  type Delivery,
  Envelope,
  Headers,
  MessageId,
  Names,
  type PublishError,
  SettlementFailed,
  type SubscribeError,
  TopicNotFound
} from "@lossless/core"
import { Cause, Clock, Duration, Effect, FiberMap, FiberSet, Queue, Result, Stream } from "effect"
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from "kafkajs"
import type { KafkaConfig } from "../KafkaConfig.ts"
import * as KafkaError from "../KafkaError.ts"
import * as KafkaTopology from "../KafkaTopology.ts"
import { follows, PartitionTracker } from "./offsets.ts"
import type { Sender } from "./producer.ts"
import type { Declarer } from "./topology.ts"
import * as Wire from "./wire.ts"

export interface Dependencies {
  readonly kafka: Kafka
  readonly config: KafkaConfig
  readonly sender: Sender
  readonly declarer: Declarer
}

export interface Source {
  readonly topic: string
  readonly group: string
  /** The group's work (and retry) topic, or its dead letters. */
  readonly kind: "main" | "dead"
}

type Settlement = "ack" | "retryLater" | "deadLetter"

/** A record handed out, and how far its settlement got. */
interface Handed {
  readonly session: Session
  readonly tracker: PartitionTracker
  readonly topic: string
  readonly partition: number
  readonly offset: string
  /** Its index in the partition's tracker. */
  readonly index: number
  state: "open" | "settling" | "settled"
}

/** A record without a Lossless id, on its way to the dead letters. */
interface Malformed {
  readonly item: Handed
  readonly message: KafkaMessage
  readonly headers: Record<string, string>
  readonly reason: string
}

const noop = (): void => {}
const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`
const millis = (d: Duration.Duration): number => Math.max(1, Math.round(Duration.toMillis(d)))

/** The due time on a retry copy, when it has one. */
const dueOf = (message: KafkaMessage): number | undefined => {
  const raw = message.headers?.[KafkaTopology.retryDueHeader]
  if (raw === undefined) return undefined
  const value = Number(Array.isArray(raw) ? raw[raw.length - 1]?.toString() : raw.toString())
  return Number.isFinite(value) ? value : undefined
}

/** The state of one run of the stream (a resubscription starts a new one). */
interface Session {
  closing: boolean
  rebalancing: boolean
  inFlight: number
  consumer: Consumer | undefined
  readonly trackers: Map<string, PartitionTracker>
  /** Paused because `prefetch` deliveries are unsettled. */
  readonly fullPaused: Set<string>
  /** Paused until a retry copy is due. */
  readonly duePaused: Set<string>
  requestCommit: () => void
  /** Batch handlers waiting for room below the prefetch bound. */
  readonly waiters: Set<() => void>
}

const resumeIfFree = (session: Session, t: string, partition: number) => {
  const key = keyOf(t, partition)
  if (!session.fullPaused.has(key) && !session.duePaused.has(key)) {
    session.consumer?.resume([{ topic: t, partitions: [partition] }])
  }
}

/** Room again below the prefetch bound: partitions paused for it may be read again. */
const freed = (session: Session, prefetch: number) => {
  if (session.inFlight >= prefetch) return
  if (session.waiters.size > 0) {
    for (const wake of session.waiters) wake()
    session.waiters.clear()
  }
  if (session.fullPaused.size === 0) return
  const waiting = [...session.fullPaused]
  session.fullPaused.clear()
  for (const key of waiting) {
    const [t, p] = key.split("\u0000") as [string, string]
    resumeIfFree(session, t, Number(p))
  }
}

export const subscribe = (
  dependencies: Dependencies,
  source: Source,
  options: { readonly prefetch: number }
): Stream.Stream<Delivery.Delivery, SubscribeError> => {
  const { kafka, config, sender, declarer } = dependencies
  const { topic, group, kind } = source
  const prefetch = Math.min(Math.max(1, Math.floor(options.prefetch)), config.maxPrefetch)
  const deadLetterTopic = KafkaTopology.deadLetterTopic(topic, group)
  const retryTopic = KafkaTopology.retryTopic(topic, group)
  const topics = kind === "main" ? [topic, retryTopic] : [deadLetterTopic]
  const groupId =
    kind === "main" ? KafkaTopology.consumerGroup(topic, group) : KafkaTopology.deadLetterGroup(topic, group)
  // Where `retryLater` puts a copy: the group's retry topic, or back among the dead letters.
  const retryTarget = kind === "main" ? retryTopic : deadLetterTopic
  const envelopeTopic = kind === "main" ? topic : deadLetterTopic

  return Stream.callback<Delivery.Delivery, SubscribeError>((queue) =>
    Effect.gen(function* () {
      if (!Names.isValid(topic) || !(yield* declarer.topicExists(topic).pipe(Effect.orElseSucceed(() => true)))) {
        return yield* new TopicNotFound({ topic })
      }
      yield* declarer.ensureTopics(kind === "main" ? [retryTopic, deadLetterTopic] : [deadLetterTopic])
      const session: Session = {
        closing: false,
        rebalancing: false,
        inFlight: 0,
        consumer: undefined,
        trackers: new Map(),
        fullPaused: new Set(),
        duePaused: new Set(),
        requestCommit: noop,
        waiters: new Set()
      }
      const { trackers, fullPaused, duePaused } = session
      const pause = (t: string, partition: number) => session.consumer?.pause([{ topic: t, partitions: [partition] }])
      const timers = yield* FiberMap.makeRuntime<never, string>()
      const background = yield* FiberSet.makeRuntime<never, void, never>()
      const signal = yield* Queue.sliding<void>(1)
      // Set by a request until the commit loop takes it; requests meanwhile are covered by that commit,
      // so most settlements cost a flag test.
      let commitRequested = false
      session.requestCommit = () => {
        if (commitRequested) return
        commitRequested = true
        Queue.offerUnsafe(signal, undefined)
      }
      const requestCommit = () => session.requestCommit()

      const pauseUntil = (t: string, partition: number, due: number) => {
        const key = keyOf(t, partition)
        duePaused.add(key)
        pause(t, partition)
        timers(
          key,
          Effect.sleep(Math.max(1, due - Date.now())).pipe(
            Effect.andThen(
              Effect.sync(() => {
                duePaused.delete(key)
                if (!session.closing) resumeIfFree(session, t, partition)
              })
            )
          )
        )
      }

      const holdMillis = millis(config.maxWaitTime)

      /**
       * Waits up to `holdMillis` for a delivery to settle, heartbeating meanwhile (a rebalance
       * surfaces here as a thrown error, which kafkajs handles by rejoining). Waiting that long
       * costs no more than the fetch a paused partition would need to start again.
       */
      const roomWithin = async (heartbeat: () => Promise<void>): Promise<boolean> => {
        const deadline = Date.now() + holdMillis
        while (session.inFlight >= prefetch && !session.closing) {
          const left = deadline - Date.now()
          if (left <= 0) return false
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, Math.min(left, millis(config.heartbeatInterval)))
            function done() {
              clearTimeout(timer)
              session.waiters.delete(done)
              resolve()
            }
            session.waiters.add(done)
          })
          await heartbeat()
        }
        return !session.closing
      }

      /**
       * Hands a batch's records to the stream. Between awaits nothing else runs, so the
       * deliveries made meanwhile are offered together, the last offset handed out is resolved
       * once, and whether kafkajs still runs this batch is asked again only after an await.
       */
      const eachBatch = async ({
        batch,
        resolveOffset,
        isRunning,
        isStale,
        heartbeat
      }: EachBatchPayload): Promise<void> => {
        const { topic: t, partition } = batch
        if (session.closing) return
        const key = keyOf(t, partition)
        let tracker = trackers.get(key)
        if (tracker === undefined || !tracker.active) {
          tracker = new PartitionTracker()
          trackers.set(key, tracker)
        }
        const messages = batch.messages
        let out: Array<Delivery.Delivery> = []
        const malformed: Array<Malformed> = []
        let resolved: string | undefined
        let last = tracker.lastOffset
        let recheck = true
        const flush = () => {
          if (resolved !== undefined) {
            resolveOffset(resolved)
            resolved = undefined
          }
          if (out.length > 0) {
            Queue.offerAllUnsafe(queue, out)
            out = []
          }
          if (malformed.length > 0) {
            for (const m of malformed.splice(0)) background(quarantine(m))
          }
        }
        try {
          for (let i = 0; i < messages.length; i++) {
            if (recheck) {
              if (!isRunning() || isStale() || session.closing) return
              recheck = false
            }
            const message = messages[i] as KafkaMessage
            const offset = message.offset
            if (last !== undefined && !follows(offset, last)) {
              // Read again after a rebalance: already handed out and still tracked.
              resolved = offset
              continue
            }
            const due = dueOf(message)
            if (due !== undefined && due > Date.now()) {
              // Not resolved: read again from here once the partition resumes.
              pauseUntil(t, partition, due)
              return
            }
            if (session.inFlight >= prefetch) {
              flush()
              const room = await roomWithin(heartbeat)
              recheck = true
              if (!room) {
                if (session.closing || !tracker.active) return
                fullPaused.add(key)
                pause(t, partition)
                return
              }
              // The partition may have been lost while waiting for room.
              if (!tracker.active) return
            }
            const index = tracker.add(offset)
            last = offset
            session.inFlight++
            resolved = offset
            const item: Handed = { session, tracker, topic: t, partition, offset, index, state: "open" }
            const headers = Wire.headers(message.headers, KafkaTopology.retryDueHeader)
            const decoded = Envelope.decodeWire({
              topic: envelopeTopic,
              payload: Wire.payload(message),
              headers,
              key: message.key?.toString("utf8")
            })
            if (decoded._tag === "Success") out.push(makeDelivery(item, decoded.success))
            else malformed.push({ item, message, headers, reason: decoded.failure.message })
          }
        } finally {
          flush()
        }
      }

      const created = kafka.consumer({
        groupId,
        sessionTimeout: millis(config.sessionTimeout),
        heartbeatInterval: millis(config.heartbeatInterval),
        maxWaitTimeInMs: millis(config.maxWaitTime),
        allowAutoTopicCreation: false,
        retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 }
      })
      session.consumer = created

      created.on(created.events.REBALANCING, () => {
        session.rebalancing = true
      })
      created.on(created.events.GROUP_JOIN, ({ payload }) => {
        const owned = new Set<string>()
        for (const [t, partitions] of Object.entries(payload.memberAssignment)) {
          for (const p of partitions) owned.add(keyOf(t, p))
        }
        for (const [key, tracker] of trackers) {
          const [t, p] = key.split("\u0000") as [string, string]
          const partition = Number(p)
          if (!owned.has(key)) {
            // Lost to another member: its deliveries are void, nothing of it is committed by us.
            session.inFlight -= tracker.revoke()
            trackers.delete(key)
            fullPaused.delete(key)
            duePaused.delete(key)
            created.resume([{ topic: t, partitions: [partition] }])
            continue
          }
          // Kept: continue after what was handed out rather than from the last commit.
          const next = tracker.nextFetch()
          if (next !== undefined) created.seek({ topic: t, partition, offset: String(next) })
        }
        session.rebalancing = false
        requestCommit()
        freed(session, prefetch)
      })
      created.on(created.events.CRASH, ({ payload }) => {
        if (payload.restart || session.closing) return
        Queue.failCauseUnsafe(queue, Cause.fail(KafkaError.operationFailure(payload.error)))
      })

      /** Commits every partition's settled prefix that moved since its last commit. */
      const commit = Effect.gen(function* () {
        if (session.rebalancing) return
        const due: Array<{
          readonly tracker: PartitionTracker
          readonly t: string
          readonly p: number
          readonly at: bigint
        }> = []
        for (const [key, tracker] of trackers) {
          if (!tracker.active) continue
          const at = tracker.pendingCommit()
          if (at === undefined) continue
          const [t, p] = key.split("\u0000") as [string, string]
          due.push({ tracker, t, p: Number(p), at })
        }
        if (due.length === 0) return
        yield* Effect.tryPromise({
          try: () => created.commitOffsets(due.map((d) => ({ topic: d.t, partition: d.p, offset: String(d.at) }))),
          catch: (error) => error
        })
        for (const d of due) d.tracker.committed(d.at)
      })

      // One commit at a time; settlements meanwhile are covered by the next one.
      yield* Effect.forkScoped(
        Effect.forever(
          Queue.take(signal).pipe(
            Effect.andThen(
              Effect.suspend(() => {
                commitRequested = false
                return commit
              })
            ),
            Effect.catch((error) =>
              Effect.logDebug(`lossless: offset commit for ${groupId} failed: ${KafkaError.describe(error)}`).pipe(
                Effect.andThen(Effect.sleep("200 millis")),
                Effect.andThen(Effect.sync(requestCommit))
              )
            )
          )
        )
      )

      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          // From here on settlements fail; what settled before is committed before the group is left.
          session.closing = true
          for (const wake of session.waiters) wake()
          if (!session.rebalancing) yield* commit.pipe(Effect.ignore, Effect.timeoutOption("5 seconds"))
          yield* Effect.promise(() => created.disconnect().catch(noop)).pipe(Effect.timeoutOption("10 seconds"))
        })
      )

      yield* Effect.tryPromise({
        try: async () => {
          await created.connect()
          await created.subscribe({ topics, fromBeginning: true })
          await created.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            partitionsConsumedConcurrently: 1,
            eachBatch
          })
        },
        catch: KafkaError.operationFailure
      })
    })
  )

  function markSettled(item: Handed): boolean {
    const { session } = item
    if (session.closing || !item.tracker.active) return false
    if (item.tracker.settle(item.index)) {
      session.inFlight--
      session.requestCommit()
      freed(session, prefetch)
    }
    return true
  }

  /** Publishes copies and answers `undefined` once all are confirmed, else the first failure. */
  function publishCopy(
    envelope: Envelope.Envelope,
    target: string,
    extra: Readonly<Record<string, string>> = {}
  ): Effect.Effect<PublishError | undefined> {
    const message = Wire.record(envelope, extra)
    return Effect.map(
      sender.send([{ topic: target, message, messageId: envelope.id, size: Wire.size(message) }]),
      (results) => {
        const result = results[0]
        return result === undefined || Result.isSuccess(result) ? undefined : result.failure
      }
    )
  }

  /**
   * A record without a Lossless id (not from a Lossless producer) cannot be
   * handed to a consumer: dedupe would have no key. It goes to the group's
   * dead letters under a new id with the reason, then counts as settled; if
   * that fails, it stays unsettled and is read again after a restart. It is
   * moved by a fiber of its own, so the records after it are not held up.
   */
  function quarantine({ item, message, headers, reason }: Malformed): Effect.Effect<void> {
    return Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const envelope = Envelope.make({
        id: yield* MessageId.make,
        topic: deadLetterTopic,
        payload: Wire.payload(message),
        timestamp: now,
        headers: {
          ...headers,
          [Headers.OriginalTopic]: item.topic,
          [Headers.OriginalGroup]: group,
          [Headers.ErrorMessage]: `MalformedEnvelope: ${reason}`,
          [Headers.FailedAt]: new Date(now).toISOString()
        }
      })
      const failed = yield* publishCopy(envelope, deadLetterTopic)
      if (failed !== undefined) {
        return yield* Effect.logError(
          `lossless: cannot move a malformed record off ${item.topic}/${item.partition}@${item.offset}: ${failed.message}`
        )
      }
      markSettled(item)
      yield* Effect.logWarning(
        `lossless: moved a malformed record from ${item.topic}/${item.partition}@${item.offset} to ${deadLetterTopic}: ${reason}`
      )
    })
  }

  function refuse(envelope: Envelope.Envelope, settlement: Settlement, reason: string) {
    return Effect.fail(new SettlementFailed({ messageId: envelope.id, settlement, reason }))
  }

  function stale(item: Handed): string {
    return item.session.closing
      ? "the subscription ended; the message will be delivered again"
      : `partition ${item.topic}/${item.partition} was assigned to another member, which reads it again from the last commit`
  }

  /** Why a settlement cannot start now, or `undefined` when it may (the delivery is then settling). */
  function begin(item: Handed): string | undefined {
    if (item.state === "settled") return "the delivery was already settled"
    if (item.state === "settling") return "another settlement of this delivery is in progress"
    if (item.session.closing || !item.tracker.active) return stale(item)
    item.state = "settling"
    return undefined
  }

  function finish(
    item: Handed,
    envelope: Envelope.Envelope,
    settlement: Settlement,
    after: string
  ): Effect.Effect<void, SettlementFailed> {
    item.state = "settled"
    return markSettled(item) ? Effect.void : refuse(envelope, settlement, `${after}${stale(item)}`)
  }

  /** Stores a copy (confirmed), then settles the original; a failed copy leaves the delivery unsettled. */
  function viaCopy(
    item: Handed,
    envelope: Envelope.Envelope,
    settlement: Settlement,
    copy: Effect.Effect<{
      readonly envelope: Envelope.Envelope
      readonly extra: Readonly<Record<string, string>>
      readonly target: string
    }>
  ): Effect.Effect<void, SettlementFailed> {
    return Effect.suspend(() => {
      const refused = begin(item)
      if (refused !== undefined) return refuse(envelope, settlement, refused)
      return Effect.gen(function* () {
        const { envelope: out, extra, target } = yield* copy
        const failed = yield* publishCopy(out, target, extra)
        if (failed !== undefined) {
          return yield* refuse(
            envelope,
            settlement,
            `the copy for ${target} was not confirmed (${failed.message}); the message stays where it was`
          )
        }
        return yield* finish(item, envelope, settlement, `the copy is stored in ${target} but `)
      }).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (exit._tag === "Failure" && item.state === "settling") item.state = "open"
          })
        )
      )
    })
  }

  /** Once per message: a few closures over `item`, the rest shared by the subscription. */
  function makeDelivery(item: Handed, envelope: Envelope.Envelope): Delivery.Delivery {
    const attempt = Envelope.attempt(envelope)
    return {
      envelope,
      group,
      attempt,
      // Kafka does not say whether a record was handed out before.
      redelivered: false,
      settleable: () => item.state === "open" && !item.session.closing && item.tracker.active,
      ack: Effect.suspend(() => {
        const refused = begin(item)
        return refused === undefined ? finish(item, envelope, "ack", "") : refuse(envelope, "ack", refused)
      }),
      retryLater: (delay, retryOptions) =>
        viaCopy(
          item,
          envelope,
          "retryLater",
          Effect.map(Clock.currentTimeMillis, (now) => {
            const requested = Duration.toMillis(Duration.fromInputUnsafe(delay))
            const wait = Number.isFinite(requested) ? Math.max(0, Math.ceil(requested)) : 0
            return {
              envelope: Envelope.withAttempt(envelope, retryOptions?.countAttempt === false ? attempt : attempt + 1),
              extra: { [KafkaTopology.retryDueHeader]: String(now + wait) },
              target: retryTarget
            }
          })
        ),
      deadLetter: (reason) =>
        viaCopy(
          item,
          envelope,
          "deadLetter",
          Effect.map(Clock.currentTimeMillis, (now) => ({
            envelope:
              kind === "main"
                ? DeadLetter.envelope(envelope, { group, reason, failedAt: now, attempt })
                : // A dead letter dead-lettered again stays among the dead letters with the new reason.
                  Envelope.withHeaders(envelope, {
                    [Headers.ErrorMessage]: reason,
                    [Headers.FailedAt]: new Date(now).toISOString()
                  }),
            extra: {},
            target: deadLetterTopic
          }))
        )
    }
  }
}
