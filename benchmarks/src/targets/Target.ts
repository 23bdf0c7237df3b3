/**
 * A target is something the harness can benchmark: a Lossless transport
 * (driven through the `Transport` contract) or, beside it, the raw client of
 * the same broker as a baseline. Each target says whether it can run here
 * (adapter present, server reachable) and opens a `BenchClient`: the few
 * operations the workloads need, implemented as directly as the target allows.
 */
import { Data, type Effect, type Scope } from "effect"

/** Why a benchmark operation failed. */
export class BenchError extends Data.TaggedError("BenchError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * How a target drives its broker: `lossless` through the Transport contract,
 * `raw` the broker's own client as a baseline, `runtime` through core's
 * Publisher and Consumer, `peer` another library for reliable messaging on
 * the same broker, set up for the strongest guarantees it offers.
 */
export type Kind = "lossless" | "raw" | "runtime" | "peer"

export type Availability = { readonly available: true } | { readonly available: false; readonly reason: string }

/** What a consumer reports to the harness, per message. Both are called synchronously on the hot path. */
export interface Sink {
  /**
   * A message arrived (before it is settled); `seq` is the number the harness
   * gave it in `prepareBatch`. Its latency counts from when the harness
   * published it, or from `since` (a `performance.now()` time) when the target
   * knows a better start, as the outbox target does (the commit).
   */
  readonly onReceive: (seq: number, since?: number) => void
  /** The message received last was acked. Returns `false` when the consumer may stop. */
  readonly onSettled: () => boolean
}

/** How a scenario wants its messages consumed, beyond the prefetch. */
export interface ConsumeOptions {
  /** Handlers running at once, for clients that run them concurrently. */
  readonly concurrency?: number | undefined
}

export interface BenchClient {
  /** Declares a topic and a consuming group (idempotent). */
  readonly prepare: (topic: string, group: string) => Effect.Effect<void, BenchError>
  /**
   * Builds, ahead of the timed window, the publish of `count` messages
   * numbered `firstSeq`, `firstSeq + 1`, ... with `payload`. Running the
   * returned effect publishes them once and succeeds only when the broker
   * confirmed every one; it may be run again (the harness reuses slots).
   */
  readonly prepareBatch: (
    topic: string,
    firstSeq: number,
    count: number,
    payload: Uint8Array
  ) => Effect.Effect<void, BenchError>
  /**
   * Publishes a consume round's fill (not timed) when the target's own
   * publish would take much longer than its consuming; `prepareBatch` when absent.
   */
  readonly prepareFill?:
    | ((topic: string, firstSeq: number, count: number, payload: Uint8Array) => Effect.Effect<void, BenchError>)
    | undefined
  /**
   * Consumes `topic` as `group`, acking each message, until the sink says stop
   * or the effect is interrupted. Clients that run handlers concurrently take
   * `options.concurrency` (their own default when absent); others ignore it.
   */
  readonly consume: (
    topic: string,
    group: string,
    prefetch: number,
    sink: Sink,
    options?: ConsumeOptions
  ) => Effect.Effect<void, BenchError>
  /**
   * Removes what `prepare` created on a broker that outlives the run (queues,
   * exchanges), after the round and outside its timing. In-process brokers need none.
   */
  readonly cleanup?: ((topic: string, group: string) => Effect.Effect<void, BenchError>) | undefined
  /**
   * CPU seconds a server the target relies on (not the broker) has used so
   * far, read before and after each round, so the report can show what each
   * message cost that server too. Absent when there is none to ask.
   */
  readonly serverCpuSeconds?: Effect.Effect<number, BenchError> | undefined
}

export interface Target {
  /** Unique name, referenced by scenarios ("memory", later "rabbitmq", "rabbitmq-raw"). */
  readonly name: string
  /** The broker it talks to; a Lossless target and its raw baseline share it. */
  readonly broker: string
  /**
   * `lossless`: through the Transport contract; `raw`: the broker's own client, as a baseline;
   * `runtime`: through the core Publisher and Consumer runtime.
   */
  readonly kind: Kind
  readonly description: string
  /**
   * For a `peer`: where its guarantees differ from Lossless's, in a sentence
   * or two, printed under the report so a ratio is read with what it buys.
   */
  readonly note?: string | undefined
  /** Whether it can run here; a target that needs a server checks that it answers. */
  readonly probe: Effect.Effect<Availability>
  /** A client, open for the scope (one per comparison run). */
  readonly open: Effect.Effect<BenchClient, BenchError, Scope.Scope>
  /**
   * For a server shared with test suites that disturb it (close connections,
   * restart it): held for the scope, from before a comparison using the target
   * opens its clients until they are closed. `say` reports a wait. Targets on
   * one server share the same value, and a comparison takes it once.
   */
  readonly exclusive?: ((say: (line: string) => void) => Effect.Effect<void, never, Scope.Scope>) | undefined
}
