/**
 * Loss detection: sequence numbers that reveal a lost message.
 *
 * The producer side (`stamp`) is a publish interceptor: it stamps each
 * message with the producer's id — a name plus an epoch that is new each time
 * the producer starts — and a sequence number per (producer, topic,
 * partition), where the partition is a hash of the message key. A message
 * that already carries a stamp (a re-send, a re-drive) keeps it.
 *
 * The consumer side (`LossDetector`) follows every stream it observes. A
 * sequence missing below the highest one seen is a gap; a gap still open after
 * the grace window is reported lost. Reordering within the window, broker
 * redeliveries and retries, dead-lettered messages and producer restarts are
 * not losses; a sequence seen twice on a fresh delivery is a duplicate; a lost
 * sequence that arrives after all is counted late and removed from the lost.
 *
 * A detector sees what its process consumes. Where a group's consumers run
 * in several processes, each sees part of every stream: watch with a
 * dedicated group (one consumer, every message) instead.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Metric, Schedule, type Scope } from "effect"
import type { Envelope } from "./Envelope.ts"
import * as Headers from "./Headers.ts"
import { fnv1a } from "./internal/hash.ts"
import { type LostRange, StreamTracker } from "./internal/streamTracker.ts"
import * as MessageId from "./MessageId.ts"
import type { Interceptor } from "./Publisher.ts"

export interface StampOptions {
  /**
   * Names the producer in reports.
   * @default "producer"
   */
  readonly name?: string | undefined
  /**
   * Sequence streams per topic; keys hash onto them. More partitions keep
   * reordering between keys out of a stream's way, fewer keep state small.
   * @default 16
   */
  readonly partitions?: number | undefined
}

/** The producer's stamp: its id and the interceptor that numbers its messages. */
export interface Stamp {
  readonly producerId: string
  readonly interceptor: Interceptor
}

/** Makes a producer stamp with a new epoch (call once per producer start). */
export const stamp = (options: StampOptions = {}): Effect.Effect<Stamp> =>
  Effect.map(MessageId.make, (epoch) => {
    const producerId = `${options.name ?? "producer"}/${epoch}`
    const partitions = Math.max(1, Math.floor(options.partitions ?? 16))
    // Per topic, the last sequence of each partition: one lookup by the topic string, no key built per message.
    const counters = new Map<string, Array<number>>()
    const interceptor: Interceptor = (envelopes) =>
      Effect.sync(() =>
        envelopes.map((envelope) => {
          if (envelope.headers[Headers.Sequence] !== undefined) return envelope
          const partition = envelope.key === undefined ? 0 : fnv1a(envelope.key) % partitions
          let streams = counters.get(envelope.topic)
          if (streams === undefined) {
            streams = new Array<number>(partitions).fill(0)
            counters.set(envelope.topic, streams)
          }
          const sequence = (streams[partition] as number) + 1
          streams[partition] = sequence
          return {
            id: envelope.id,
            topic: envelope.topic,
            key: envelope.key,
            payload: envelope.payload,
            headers: {
              ...envelope.headers,
              [Headers.ProducerId]: producerId,
              [Headers.Sequence]: `${partition}:${sequence}`
            },
            timestamp: envelope.timestamp,
            deliverAt: envelope.deliverAt
          }
        })
      )
    return { producerId, interceptor }
  })

/** A run of sequences reported lost. */
export interface Gap {
  readonly producerId: string
  readonly topic: string
  readonly partition: number
  readonly from: number
  readonly to: number
  /** Epoch milliseconds. */
  readonly detectedAt: number
}

/** What a detector has seen so far. */
export interface Report {
  readonly streams: number
  /** Stamped messages observed. */
  readonly observed: number
  /** Sequences declared lost and not arrived since. */
  readonly lost: number
  /** Sequences seen again on a fresh (not redelivered, not retried) delivery. */
  readonly duplicates: number
  /** Sequences that arrived after being declared lost. */
  readonly late: number
  /** Gaps still inside the grace window. */
  readonly pending: number
  /** Lost runs, oldest first (the most recent `maxReportedGaps`). */
  readonly gaps: ReadonlyArray<Gap>
}

export interface TrackerOptions {
  /**
   * How long a gap may stay open (reordering, slow partitions) before it counts as lost.
   * @default 30 seconds
   */
  readonly graceWindow?: Duration.Input | undefined
  /**
   * Streams with nothing new and no open gap for this long are forgotten.
   * @default 1 hour
   */
  readonly idleStreamTtl?: Duration.Input | undefined
  /**
   * Lost runs kept for the report.
   * @default 1000
   */
  readonly maxReportedGaps?: number | undefined
}

/** How a delivery came to be observed: repeats of redelivered or retried ones are expected. */
export interface Arrival {
  readonly attempt: number
  readonly redelivered: boolean
}

// The last stamp `parseSequence` read: set by it, read right after. Once per delivery, so no object is allocated.
let stampPartition = 0
let stampSequence = 0

/** Reads a `<partition>:<sequence>` stamp (decimal digits, sequence ≥ 1) into the two variables above. */
const parseSequence = (raw: string | undefined): boolean => {
  if (raw === undefined) return false
  let value = 0
  let digits = 0
  let partition = -1
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if (c === 58 && partition < 0 && digits > 0) {
      partition = value
      value = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48)
      digits++
    } else {
      return false
    }
  }
  if (partition < 0 || digits === 0 || value < 1 || !Number.isSafeInteger(value)) return false
  stampPartition = partition
  stampSequence = value
  return true
}

/** When a producer id's epoch began, when it says (a UUIDv7 epoch); otherwise unknown. */
const epochStart = (producerId: string): number | undefined => {
  const epoch = producerId.slice(producerId.lastIndexOf("/") + 1)
  return MessageId.timeOfUuidV7(epoch)
}

/**
 * The detector's bookkeeping with time passed in: synchronous, for tests and
 * offline analysis. `LossDetector` wraps it with the clock and a sweep.
 */
export class Tracker {
  private readonly streams = new Map<
    string,
    { tracker: StreamTracker; producerId: string; topic: string; partition: number }
  >()
  private readonly grace: number
  private readonly idle: number
  private readonly maxGaps: number
  private readonly startedAt: number
  private readonly gaps: Array<Gap> = []
  private last: { tracker: StreamTracker; producerId: string; topic: string; partition: number } | undefined
  observed = 0
  lost = 0
  duplicates = 0
  late = 0

  constructor(now: number, options: TrackerOptions = {}) {
    this.startedAt = now
    this.grace = Duration.toMillis(options.graceWindow ?? "30 seconds")
    this.idle = Duration.toMillis(options.idleStreamTtl ?? "1 hour")
    this.maxGaps = Math.max(1, options.maxReportedGaps ?? 1000)
  }

  /** Records an envelope; envelopes without a stamp are ignored. */
  observe(envelope: Envelope, arrival: Arrival, now: number): void {
    const producerId = envelope.headers[Headers.ProducerId]
    if (producerId === undefined || !parseSequence(envelope.headers[Headers.Sequence])) return
    const partition = stampPartition
    const sequence = stampSequence
    this.observed++
    // Consecutive messages mostly belong to one stream: reuse it without building its key.
    let stream = this.last
    if (
      stream === undefined ||
      stream.partition !== partition ||
      stream.producerId !== producerId ||
      stream.topic !== envelope.topic
    ) {
      const id = `${producerId}\u0000${envelope.topic}\u0000${partition}`
      stream = this.streams.get(id)
      if (stream === undefined) {
        // A producer that started after this detector was watching from its first message;
        // one that started earlier is joined mid-stream (nothing before counts as missing).
        const began = epochStart(producerId)
        const fromBeginning = began !== undefined && began >= this.startedAt
        stream = {
          tracker: new StreamTracker(sequence, fromBeginning, now, this.grace),
          producerId,
          topic: envelope.topic,
          partition: partition
        }
        this.streams.set(id, stream)
      }
      this.last = stream
    }
    switch (stream.tracker.observe(sequence, now)) {
      case "repeat":
        if (arrival.attempt <= 1 && !arrival.redelivered) this.duplicates++
        break
      case "late":
        this.lost--
        this.late++
        break
      default:
        break
    }
  }

  /** Declares lost the gaps older than the grace window and forgets idle streams. */
  sweep(now: number): ReadonlyArray<Gap> {
    const found: Array<Gap> = []
    for (const [id, stream] of this.streams) {
      const expired: Array<LostRange> = stream.tracker.expire(now, this.grace, this.maxGaps)
      for (const range of expired) {
        this.lost += range.to - range.from + 1
        found.push({
          producerId: stream.producerId,
          topic: stream.topic,
          partition: stream.partition,
          from: range.from,
          to: range.to,
          detectedAt: now
        })
      }
      if (stream.tracker.gaps.length === 0 && stream.tracker.lastSeen + this.idle <= now) {
        this.streams.delete(id)
        if (this.last === stream) this.last = undefined
      }
    }
    this.gaps.push(...found)
    if (this.gaps.length > this.maxGaps) this.gaps.splice(0, this.gaps.length - this.maxGaps)
    return found
  }

  report(): Report {
    let pending = 0
    for (const stream of this.streams.values()) {
      for (const gap of stream.tracker.gaps) pending += gap.to - gap.from + 1
    }
    return {
      streams: this.streams.size,
      observed: this.observed,
      lost: this.lost,
      duplicates: this.duplicates,
      late: this.late,
      pending,
      gaps: [...this.gaps]
    }
  }
}

const lostCounter = Metric.counter("lossless_messages_lost_total", {
  description: "Sequences declared lost by the loss detector",
  incremental: true
})
const duplicateCounter = Metric.counter("lossless_messages_duplicated_total", {
  description: "Sequences seen again on a fresh delivery",
  incremental: true
})

/** A running loss detector. */
export interface LossDetector {
  /** Records a received envelope (the consumer calls it for every delivery). */
  readonly observe: (envelope: Envelope, arrival: Arrival) => Effect.Effect<void>
  /** `observe` at a known time, without an Effect: for callers that already read the clock. */
  readonly record: (envelope: Envelope, arrival: Arrival, now: number) => void
  /** Declares lost what is past the grace window now (also runs on a schedule). */
  readonly sweep: Effect.Effect<ReadonlyArray<Gap>>
  /** Counts and lost runs so far, after a sweep. */
  readonly report: Effect.Effect<Report>
}

export interface DetectorOptions extends TrackerOptions {
  /**
   * How often gaps are checked against the grace window.
   * @default a fifth of the grace window
   */
  readonly sweepInterval?: Duration.Input | undefined
  /** Called with each newly lost run (alerting). */
  readonly onLoss?: ((gap: Gap) => Effect.Effect<void>) | undefined
}

/** Starts a loss detector whose sweep runs in the current scope. */
export const make = (options: DetectorOptions = {}): Effect.Effect<LossDetector, never, Scope.Scope> =>
  Effect.gen(function* () {
    const tracker = new Tracker(yield* Clock.currentTimeMillis, options)
    const interval =
      options.sweepInterval ?? Duration.divideUnsafe(Duration.fromInputUnsafe(options.graceWindow ?? "30 seconds"), 5)
    let reportedDuplicates = 0
    const sweep = Effect.gen(function* () {
      const found = tracker.sweep(yield* Clock.currentTimeMillis)
      let lostNow = 0
      for (const gap of found) lostNow += gap.to - gap.from + 1
      if (lostNow > 0) yield* Metric.update(lostCounter, lostNow)
      if (tracker.duplicates > reportedDuplicates) {
        yield* Metric.update(duplicateCounter, tracker.duplicates - reportedDuplicates)
        reportedDuplicates = tracker.duplicates
      }
      for (const gap of found) {
        yield* Effect.logWarning(
          `lossless: lost ${gap.to - gap.from + 1} message(s) of ${gap.producerId} on ${gap.topic}[${gap.partition}]: sequences ${gap.from}..${gap.to}`
        )
        if (options.onLoss !== undefined) yield* options.onLoss(gap)
      }
      return found
    })
    yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(interval)))
    return {
      observe: (envelope, arrival) =>
        Effect.clockWith((clock) => {
          tracker.observe(envelope, arrival, clock.currentTimeMillisUnsafe())
          return Effect.void
        }),
      record: (envelope, arrival, now) => tracker.observe(envelope, arrival, now),
      sweep,
      report: Effect.map(sweep, () => tracker.report())
    }
  })
