/**
 * Scenarios as data: what to run, on which target, with which sizes. The
 * runner reads these and nothing else, so adding a case is adding a value.
 *
 * Scenarios are grouped into comparisons. The scenarios of one comparison run
 * interleaved, round by round, and each reports its throughput as a ratio to
 * the comparison's named baseline (or another scenario it names, `versus`)
 * measured in the same rounds.
 */
import { messagesFor, publishersFor } from "./Pacing.ts"
import type { Kind } from "./targets/Target.ts"

/**
 * What a round does:
 *
 * - `publish-consume`: publish messages in batches (each batch awaited until
 *   the broker confirmed every message) while one subscriber consumes and
 *   acks; throughput is end to end, latency is from publish to receipt.
 * - `publish`: the same publishers and no subscriber; the round ends at the
 *   last confirm, latency is from a batch's publish to its confirm.
 * - `consume`: the queue is filled with `amount.messages` messages before the
 *   clock starts (by the target's own publish, not timed); one subscriber
 *   consumes and acks them. The clock runs from the first delivery to the last
 *   ack, so subscribing is not counted. No latency: the messages waited in
 *   the queue on purpose.
 * - `outbox`: each publish call is a database transaction that stores its
 *   messages through an outbox publisher; the target's relay publishes them to
 *   the broker and reports each one it marked sent. The round ends at the last
 *   mark; latency is from the commit to the broker's confirm (relay lag).
 */
export type Operation = "publish-consume" | "publish" | "consume" | "outbox"

/** Whether a round of the operation runs a subscriber (for `outbox`: the relay) beside its publishers. */
export const consumes = (operation: Operation): boolean => operation !== "publish"

/** What the latency of a round of the operation measures, for reports. */
export const latencyMeaning: Record<Operation, string> = {
  "publish-consume": "publish→receipt",
  publish: "publish→confirm",
  consume: "-",
  outbox: "commit→confirm"
}

/** How much work one round does: a fixed number of messages, or as many as fit in a time. */
export type Amount = { readonly messages: number } | { readonly seconds: number }

export interface Scenario {
  /** Unique and stable: the key in results and for `--only`. */
  readonly id: string
  /** Short human name, shown in tables and charts. */
  readonly label: string
  /** The target (see `targets/`) that runs it. */
  readonly target: string
  readonly operation: Operation
  readonly payloadBytes: number
  readonly amount: Amount
  /** Messages per publish call; the publisher awaits the confirm of each call. */
  readonly batchSize: number
  /** Publish calls in flight at once (publisher fibers). */
  readonly publishConcurrency: number
  /** The subscriber's prefetch: deliveries unsettled at once. */
  readonly prefetch: number
  /**
   * Most messages published and not yet acked; the publisher waits above it.
   * Keeps queues bounded so latency measures the pipeline, not a backlog.
   */
  readonly maxInFlight: number
  /**
   * The scenario of the same comparison whose throughput this one's is divided
   * by, round by round; the comparison's baseline when absent.
   */
  readonly versus?: string | undefined
  /**
   * A requirement: the most throughput this scenario may lose against `versus`,
   * as a fraction (0.05: at most 5 % below it). The report says whether the
   * median ratio over the rounds meets it.
   */
  readonly maxCost?: number | undefined
  /**
   * Requirements as multiples: this scenario's throughput must be at least
   * `ratio` times that of `versus` (another scenario of the comparison; this
   * scenario's own reference when absent), judged by the median of the
   * per-round ratios. `{ ratio: 0.9 }`: at least 0.9× its reference;
   * `{ ratio: 8, versus: naive }`: at least eight times the naive scenario.
   */
  readonly atLeast?: ReadonlyArray<MinRatio> | undefined
  /**
   * Other scenarios of the comparison this one's throughput is also divided
   * by, round by round, for information (no requirement): a peer library
   * against Lossless as well as against the raw client.
   */
  readonly compareTo?: ReadonlyArray<string> | undefined
  /**
   * Publish at this offered rate, messages per second, instead of as fast as
   * possible (see `Pacing.ts`); needs an amount of messages. Latency then
   * counts from when each message was due.
   */
  readonly rate?: number | undefined
  /** Handlers the consumer runs at once, for targets that run them concurrently; their default when absent. */
  readonly concurrency?: number | undefined
}

/** A requirement that a scenario reach `ratio` times the throughput of `versus`. */
export interface MinRatio {
  readonly ratio: number
  /** The `id` of a scenario of the same comparison; the scenario's own reference when absent. */
  readonly versus?: string | undefined
}

/** Scenarios run interleaved against one baseline among them. */
export interface Comparison {
  readonly name: string
  /** The `id` of the scenario the others are divided by. */
  readonly baseline: string
  readonly scenarios: ReadonlyArray<Scenario>
  /** Warm-up rounds per scenario, when this comparison needs more than the plan's. */
  readonly warmupRounds?: number | undefined
  /** Measured rounds per scenario, when this comparison needs other than the plan's. */
  readonly rounds?: number | undefined
}

export type Mode = "quick" | "full"

/** Something the plan leaves out, and why: a missing target, or a sweep for the other mode. */
export interface Skip {
  readonly what: string
  readonly why: string
}

export interface Plan {
  readonly mode: Mode
  /** Rounds per scenario run first and discarded (JIT, caches, pools). */
  readonly warmupRounds: number
  /** Measured rounds per scenario. */
  readonly rounds: number
  /** A round taking longer fails instead of hanging the run. */
  readonly roundTimeoutMs: number
  readonly comparisons: ReadonlyArray<Comparison>
  /** What it leaves out, and why. */
  readonly skipped: ReadonlyArray<Skip>
}

/** A payload size as a short label: "100 B", "1 KiB", "16 KiB". */
export const formatBytes = (bytes: number): string =>
  bytes >= 1024 && bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} B`

const sizeTag = (bytes: number): string => formatBytes(bytes).replace(" ", "")

/** The batched publisher versus the naive one (publish one, await its confirm, next), end to end. */
const batchedVersusNaive = (target: string, payloadBytes: number, amount: Amount): Comparison => {
  const prefix = `${target}/publish-consume/${sizeTag(payloadBytes)}`
  const common = {
    target,
    operation: "publish-consume",
    payloadBytes,
    amount,
    prefetch: 100,
    maxInFlight: 1000
  } as const
  const batched: Scenario = {
    ...common,
    id: `${prefix}/batch-100`,
    label: `publish→consume ${formatBytes(payloadBytes)}, batch 100`,
    batchSize: 100,
    publishConcurrency: 1
  }
  const naive: Scenario = {
    ...common,
    id: `${prefix}/naive`,
    label: `publish→consume ${formatBytes(payloadBytes)}, one at a time`,
    batchSize: 1,
    publishConcurrency: 1
  }
  return {
    name: `${target} publish→consume ${formatBytes(payloadBytes)}`,
    baseline: batched.id,
    scenarios: [batched, naive]
  }
}

/** Batch size and prefetch swept around the batched default (100/100). */
const sweep = (target: string, amount: Amount): Comparison => {
  const prefix = `${target}/publish-consume/100B`
  const make = (batchSize: number, prefetch: number, publishConcurrency = 1): Scenario => ({
    id: `${prefix}/batch-${batchSize}-prefetch-${prefetch}${publishConcurrency > 1 ? `-x${publishConcurrency}` : ""}`,
    label: `batch ${batchSize}, prefetch ${prefetch}${publishConcurrency > 1 ? `, ${publishConcurrency} publishers` : ""}`,
    target,
    operation: "publish-consume",
    payloadBytes: 100,
    amount,
    batchSize,
    publishConcurrency,
    prefetch,
    maxInFlight: Math.max(1000, 4 * batchSize * publishConcurrency)
  })
  const baseline = make(100, 100)
  return {
    name: `${target} publish→consume 100 B, batch and prefetch sweep`,
    baseline: baseline.id,
    scenarios: [baseline, make(10, 100), make(1000, 100), make(100, 10), make(100, 1000), make(100, 100, 4)]
  }
}

/** A core feature the runtime targets switch on, one target each. */
export type Feature = "plain" | "loss-detection" | "memory-dedupe" | "redis-dedupe"

/** The name of the runtime target with `feature`: "runtime", "runtime+loss-detection", ... */
export const runtimeTarget = (feature: Feature): string => (feature === "plain" ? "runtime" : `runtime+${feature}`)

/**
 * What the core runtime and each of its features cost, on the memory broker.
 * The plain runtime is divided by the bare transport (the runtime's own
 * overhead); each feature by the plain runtime (the feature's cost), with the
 * project's requirement where it has one. All run interleaved in the same rounds.
 */
export const runtimeSuite = (mode: Mode, available: ReadonlySet<string>): ReadonlyArray<Comparison> => {
  if (!available.has("memory") || !available.has(runtimeTarget("plain"))) return []
  const payloadBytes = 100
  const prefix = `runtime/publish-consume/${sizeTag(payloadBytes)}`
  const common = {
    operation: "publish-consume",
    payloadBytes,
    // Longer rounds in full mode: the ratios this comparison is for are a few percent.
    amount: { seconds: mode === "quick" ? 1 : 1.5 },
    batchSize: 100,
    publishConcurrency: 1,
    prefetch: 100,
    maxInFlight: 1000
  } as const
  const transport: Scenario = {
    ...common,
    id: `${prefix}/transport`,
    label: "transport only (no runtime)",
    target: "memory"
  }
  const plain: Scenario = {
    ...common,
    id: `${prefix}/plain`,
    label: "runtime plain",
    target: runtimeTarget("plain")
  }
  const feature = (name: Feature, label: string, maxCost?: number): Array<Scenario> =>
    available.has(runtimeTarget(name))
      ? [{ ...common, id: `${prefix}/${name}`, label, target: runtimeTarget(name), versus: plain.id, maxCost }]
      : []
  return [
    {
      name: `core runtime on memory, ${formatBytes(payloadBytes)}, batch 100: what each feature costs`,
      baseline: transport.id,
      // The runtime's code paths take longer to reach steady speed than the transport's.
      warmupRounds: mode === "quick" ? 2 : 3,
      // The costs judged here are a few percent: more paired rounds steady their median.
      rounds: mode === "quick" ? 9 : 11,
      scenarios: [
        transport,
        plain,
        ...feature("loss-detection", "runtime + loss detection", 0.05),
        ...feature("memory-dedupe", "runtime + memory dedupe"),
        ...feature("redis-dedupe", "runtime + Redis dedupe", 0.1)
      ]
    }
  ]
}

/** The comparisons for one target that drives the Lossless `Transport` contract. */
export const transportSuite = (target: string, mode: Mode): ReadonlyArray<Comparison> => {
  // Rounds by time rather than count: equally long whatever the target's speed.
  const round: Amount = { seconds: 1 }
  return mode === "quick"
    ? [batchedVersusNaive(target, 100, round)]
    : [
        batchedVersusNaive(target, 100, round),
        batchedVersusNaive(target, 1024, round),
        batchedVersusNaive(target, 16 * 1024, round),
        sweep(target, round)
      ]
}

/** The RabbitMQ targets: amqplib itself, the adapter through the Transport contract, core's runtime over the adapter. */
export const rabbitmq = {
  raw: "rabbitmq-raw",
  /** amqplib with the headers and properties Lossless adds to a message: what the wire format costs. */
  rawWire: "rabbitmq-raw+wire-headers",
  transport: "rabbitmq",
  runtime: "rabbitmq-runtime"
} as const

/** Core's runtime on RabbitMQ with `feature` switched on: "rabbitmq-runtime", "rabbitmq-runtime+loss-detection", ... */
export const rabbitmqRuntimeTarget = (feature: Feature): string =>
  feature === "plain" ? rabbitmq.runtime : `${rabbitmq.runtime}+${feature}`

/** Other libraries for reliable messaging on RabbitMQ, one target each (`targets/peers.ts`). */
export const peers = [
  { target: "rabbitmq-client", label: "rabbitmq-client" },
  { target: "amqp-connection-manager", label: "amqp-connection-manager" },
  { target: "rascal", label: "rascal" }
] as const

/** The consumer's handler concurrency when a scenario names none: core's default, which the runtime targets use. */
export const defaultConcurrency = 16

/** The outbox target: `@lossless/sql` on PostgreSQL, core's relay publishing to RabbitMQ. */
export const outboxTarget = "outbox-pg-rabbitmq"

/**
 * Rounds of the comparisons on a networked broker: one warm-up (connections
 * and topology are warm after it), then four measured rounds in quick mode
 * (its RabbitMQ comparisons, peers included, are most of its time) and five
 * in full mode, which adds scenarios rather than rounds.
 */
const brokerRounds = (mode: Mode): Pick<Comparison, "warmupRounds" | "rounds"> => ({
  warmupRounds: 1,
  rounds: mode === "quick" ? 4 : 5
})

/** Lossless targets measured in a suite of their own rather than in `transportSuite`. */
const ownSuite: ReadonlySet<string> = new Set([rabbitmq.transport])

/**
 * The raw client's windowed confirmed publish on RabbitMQ: batches of 100, ten
 * in flight, so at most 1000 messages await their confirm. Every publish
 * comparison on RabbitMQ divides by it.
 */
const rabbitWindowed = (id: string, payloadBytes: number, amount: Amount): Scenario => ({
  id,
  label: "amqplib windowed publish (1000 in flight)",
  target: rabbitmq.raw,
  operation: "publish",
  payloadBytes,
  amount,
  batchSize: 100,
  publishConcurrency: 10,
  prefetch: 0,
  maxInFlight: 1000
})

/**
 * Lossless on RabbitMQ beside amqplib on the same broker, 1 KiB persistent,
 * mandatory, confirmed messages:
 *
 * - publish: `Publisher.sendBatch` (100 per call, ten calls in flight) against
 *   amqplib with the same window (≥ 0.9×) and against amqplib publishing one
 *   message and awaiting its confirm before the next (≥ 8×);
 * - consume from a pre-filled queue: `Consumer.start` with an empty handler
 *   against amqplib's `consume` with the same prefetch, acking each (≥ 0.8×).
 *
 * Full mode adds the adapter alone (`Transport.publish`, `Transport.subscribe`),
 * which splits the cost between the adapter and core's runtime, and amqplib
 * publishing with the headers Lossless adds, which shows what the wire format
 * costs the broker apart from the library's code.
 */
export const rabbitmqSuite = (mode: Mode, available: ReadonlySet<string>): ReadonlyArray<Comparison> => {
  if (!available.has(rabbitmq.raw)) return []
  const payloadBytes = 1024
  const size = sizeTag(payloadBytes)
  const quick = mode === "quick"
  const publishRound: Amount = { seconds: 1 }
  const publishPrefix = `rabbitmq/publish/${size}`
  const windowed = rabbitWindowed(`${publishPrefix}/raw-windowed`, payloadBytes, publishRound)
  const naive: Scenario = {
    ...windowed,
    id: `${publishPrefix}/raw-naive`,
    label: "amqplib naive publish (one at a time)",
    batchSize: 1,
    publishConcurrency: 1
  }
  const wire: Scenario = {
    ...windowed,
    id: `${publishPrefix}/raw-windowed-wire-headers`,
    label: "amqplib windowed publish, Lossless's headers",
    target: rabbitmq.rawWire
  }
  const adapter: Scenario = {
    ...windowed,
    id: `${publishPrefix}/transport`,
    label: "Lossless Transport.publish only (1000 in flight)",
    target: rabbitmq.transport
  }
  const send: Scenario = {
    ...windowed,
    id: `${publishPrefix}/runtime`,
    label: "Lossless Publisher.sendBatch (1000 in flight)",
    target: rabbitmq.runtime,
    atLeast: [{ ratio: 0.9 }, { ratio: 8, versus: naive.id }]
  }

  const consumePrefix = `rabbitmq/consume/${size}`
  const consumeCommon = {
    operation: "consume",
    payloadBytes,
    // Long enough to reach a steady rate; the fill (not timed) takes about as long again.
    amount: { messages: quick ? 10_000 : 12_000 },
    batchSize: 100,
    publishConcurrency: 10,
    prefetch: 100,
    maxInFlight: 1000
  } as const
  const rawConsume: Scenario = {
    ...consumeCommon,
    id: `${consumePrefix}/raw`,
    label: "amqplib consume, ack each",
    target: rabbitmq.raw
  }
  const adapterConsume: Scenario = {
    ...consumeCommon,
    id: `${consumePrefix}/transport`,
    label: "Lossless Transport.subscribe only",
    target: rabbitmq.transport
  }
  const runtimeConsume: Scenario = {
    ...consumeCommon,
    id: `${consumePrefix}/runtime`,
    label: "Lossless Consumer.start, empty handler",
    target: rabbitmq.runtime,
    concurrency: defaultConcurrency,
    atLeast: [{ ratio: 0.8 }]
  }
  const withAdapter = !quick && available.has(rabbitmq.transport)
  const withRuntime = available.has(rabbitmq.runtime)
  const presentPeers = peers.filter((p) => available.has(p.target))
  // Each peer against amqplib (the comparison's baseline) and against Lossless, from the same rounds.
  const peerPublish = presentPeers.map(
    (p): Scenario => ({
      ...windowed,
      id: `${publishPrefix}/peer-${p.target}`,
      label: `${p.label} confirmed publish (1000 in flight)`,
      target: p.target,
      compareTo: withRuntime ? [send.id] : undefined
    })
  )
  const peerConsume = presentPeers.map(
    (p): Scenario => ({
      ...consumeCommon,
      id: `${consumePrefix}/peer-${p.target}`,
      label: `${p.label} consume, ack after handler`,
      target: p.target,
      concurrency: defaultConcurrency,
      compareTo: withRuntime ? [runtimeConsume.id] : undefined
    })
  )
  return [
    {
      name: `rabbitmq publish ${formatBytes(payloadBytes)}, persistent, mandatory, confirmed`,
      baseline: windowed.id,
      ...brokerRounds(mode),
      scenarios: [
        windowed,
        ...(!quick && available.has(rabbitmq.rawWire) ? [wire] : []),
        ...(withAdapter ? [adapter] : []),
        ...(withRuntime ? [send] : []),
        ...peerPublish,
        naive
      ]
    },
    {
      name: `rabbitmq consume ${formatBytes(payloadBytes)} from a pre-filled queue, prefetch 100`,
      baseline: rawConsume.id,
      ...brokerRounds(mode),
      scenarios: [
        rawConsume,
        ...(withAdapter ? [adapterConsume] : []),
        ...(withRuntime ? [runtimeConsume] : []),
        ...peerConsume
      ]
    }
  ]
}

/** The brokers measured on the testkit's wire emulators: each raw client beside Lossless. */
export const emulated = [
  { broker: "kafka", client: "kafkajs", raw: "kafka-raw", transport: "kafka", runtime: "kafka-runtime" },
  {
    broker: "rocketmq",
    client: "rocketmq-client-nodejs",
    raw: "rocketmq-raw",
    transport: "rocketmq",
    runtime: "rocketmq-runtime"
  }
] as const

/** Partitions of every topic the default Kafka targets create. */
export const defaultPartitions = 3

/** The partition counts the Kafka sweep sets beside the default. */
export const sweptPartitions: ReadonlyArray<number> = [1, 6]

/** The name of a Kafka target whose topics have `partitions` partitions; the default count keeps the plain name. */
export const partitionedName = (name: string, partitions: number): string =>
  partitions === defaultPartitions ? name : `${name}-${partitions}p`

/**
 * Full mode: Kafka consume by partition count (1, 3, 6), Lossless's runtime
 * beside raw kafkajs at each count (its ratio is to the raw client at the
 * same count; each raw one is shown against one partition). The partitions
 * are fetched and handled concurrently up to the consumer's concurrency, so
 * this shows how each client spreads over them; with the emulator in the
 * same process on two cores it is not a broker's scaling.
 */
export const partitionSuite = (mode: Mode, available: ReadonlySet<string>): ReadonlyArray<Comparison> => {
  const counts = [...sweptPartitions, defaultPartitions].sort((a, b) => a - b)
  const names = counts.map((p) => ({
    p,
    raw: partitionedName("kafka-raw", p),
    runtime: partitionedName("kafka-runtime", p)
  }))
  if (mode === "quick" || !names.every((n) => available.has(n.raw) && available.has(n.runtime))) return []
  const payloadBytes = 1024
  const prefix = `kafka/partitions/consume/${sizeTag(payloadBytes)}`
  const scenarios = names.flatMap(({ p, raw, runtime }): Array<Scenario> => {
    const base: Scenario = {
      id: `${prefix}/${p}p/raw`,
      label: `kafkajs consume, ${p} partition${p === 1 ? "" : "s"}`,
      target: raw,
      operation: "consume",
      payloadBytes,
      amount: { messages: 20_000 },
      batchSize: 100,
      publishConcurrency: 10,
      prefetch: 100,
      maxInFlight: 1000
    }
    return [
      base,
      {
        ...base,
        id: `${prefix}/${p}p/runtime`,
        label: `Lossless Consumer.start, ${p} partition${p === 1 ? "" : "s"}`,
        target: runtime,
        concurrency: defaultConcurrency,
        versus: base.id
      }
    ]
  })
  return [
    {
      name: `kafka consume ${formatBytes(payloadBytes)} on the emulator by partition count`,
      baseline: scenarios[0]?.id ?? "",
      ...brokerRounds(mode),
      scenarios
    }
  ]
}

/**
 * Kafka and RocketMQ (on their emulators, in-process) beside their raw clients
 * with the same guarantees, 1 KiB: publish in batches of 100, ten in flight,
 * and consume from a pre-filled topic with prefetch 100. Lossless through
 * core's runtime (`Publisher.sendBatch`, `Consumer.start`) must reach ≥ 0.9×
 * the raw client; the adapter alone (the Transport contract) is shown beside it.
 */
export const emulatedSuite = (mode: Mode, available: ReadonlySet<string>): ReadonlyArray<Comparison> => {
  const payloadBytes = 1024
  const size = sizeTag(payloadBytes)
  return emulated.flatMap((b) => {
    if (!available.has(b.raw)) return []
    const publishPrefix = `${b.broker}/publish/${size}`
    const publish: Scenario = {
      id: `${publishPrefix}/raw`,
      label: `${b.client} publish (1000 in flight)`,
      target: b.raw,
      operation: "publish",
      payloadBytes,
      amount: { seconds: 1 },
      batchSize: 100,
      publishConcurrency: 10,
      prefetch: 0,
      maxInFlight: 1000
    }
    const consumePrefix = `${b.broker}/consume/${size}`
    const consume: Scenario = {
      id: `${consumePrefix}/raw`,
      label: `${b.client} consume, ack each`,
      target: b.raw,
      operation: "consume",
      payloadBytes,
      amount: { messages: mode === "quick" ? 10_000 : 20_000 },
      batchSize: 100,
      publishConcurrency: 10,
      prefetch: 100,
      maxInFlight: 1000
    }
    const lossless = (base: Scenario, what: "publish" | "consume"): Array<Scenario> => [
      ...(available.has(b.transport)
        ? [
            {
              ...base,
              id: base.id.replace(/raw$/, "transport"),
              label: what === "publish" ? "Lossless Transport.publish only" : "Lossless Transport.subscribe only",
              target: b.transport
            }
          ]
        : []),
      ...(available.has(b.runtime)
        ? [
            {
              ...base,
              id: base.id.replace(/raw$/, "runtime"),
              label: what === "publish" ? "Lossless Publisher.sendBatch" : "Lossless Consumer.start, empty handler",
              target: b.runtime,
              ...(what === "consume" ? { concurrency: defaultConcurrency } : {}),
              atLeast: [{ ratio: 0.9 }]
            }
          ]
        : [])
    ]
    return [
      {
        name: `${b.broker} publish ${formatBytes(payloadBytes)} on the emulator, beside ${b.client}`,
        baseline: publish.id,
        ...brokerRounds(mode),
        scenarios: [publish, ...lossless(publish, "publish")]
      },
      {
        name: `${b.broker} consume ${formatBytes(payloadBytes)} on the emulator, beside ${b.client}`,
        baseline: consume.id,
        ...brokerRounds(mode),
        scenarios: [consume, ...lossless(consume, "consume")]
      }
    ]
  })
}

/**
 * The transactional outbox end to end beside amqplib's windowed publish on
 * the same broker, in the same rounds. Each publish call of the outbox
 * scenario is one PostgreSQL transaction: a business row per message, then
 * the messages through the outbox publisher (`Publisher.sendBatch`), 100 per
 * transaction, four transactions at a time. The relay (see
 * `targets/outbox.ts` for its settings) publishes them to RabbitMQ; the round
 * ends when it has marked the last one sent. Requirement: at least 0.7× the
 * raw publish.
 */
export const outboxSuite = (mode: Mode, available: ReadonlySet<string>): ReadonlyArray<Comparison> => {
  if (!available.has(rabbitmq.raw) || !available.has(outboxTarget)) return []
  const payloadBytes = 1024
  const prefix = `outbox/pg-rabbitmq/${sizeTag(payloadBytes)}`
  const amount: Amount = { seconds: 1 }
  const raw = rabbitWindowed(`${prefix}/raw-windowed`, payloadBytes, amount)
  const outbox: Scenario = {
    id: `${prefix}/outbox`,
    label: "Lossless outbox: 100 per transaction + relay",
    target: outboxTarget,
    operation: "outbox",
    payloadBytes,
    amount,
    batchSize: 100,
    publishConcurrency: 4,
    prefetch: 0,
    // Committed but not yet relayed: bounded, so the relay lag measures the relay rather than a backlog.
    maxInFlight: 2000,
    atLeast: [{ ratio: 0.7 }]
  }
  // Full mode: the outbox switched off, the same sends straight to the broker, so its own cost shows too.
  const withDirect = mode === "full" && available.has(rabbitmq.runtime)
  const direct: Scenario = {
    ...outbox,
    id: `${prefix}/outbox-off`,
    label: "outbox off: Publisher.sendBatch, 100 per call, 4 at a time",
    target: rabbitmq.runtime,
    operation: "publish",
    atLeast: undefined
  }
  return [
    {
      name: `outbox on PostgreSQL → RabbitMQ ${formatBytes(payloadBytes)} beside amqplib's confirmed publish`,
      baseline: raw.id,
      ...brokerRounds(mode),
      scenarios: withDirect ? [raw, direct, { ...outbox, compareTo: [direct.id] }] : [raw, outbox]
    }
  ]
}

/** The offered rates of the fixed-rate latency comparisons, messages per second. */
export const latencyRates = (mode: Mode): ReadonlyArray<number> =>
  mode === "quick" ? [1000, 5000] : [1000, 5000, 10_000]

/** "1k/s", "5k/s", "1.5k/s", "500/s". */
export const formatRate = (perSecond: number): string =>
  perSecond >= 1000 ? `${Number((perSecond / 1000).toFixed(1))}k/s` : `${perSecond}/s`

/**
 * End-to-end latency (publish → handler) at a fixed offered rate, below what
 * every target sustains, so the figures are the pipeline's and not a queue's:
 * amqplib (publish, confirm; consume, ack), core's runtime on RabbitMQ and
 * core's runtime on the memory broker, 1 KiB, in the same interleaved rounds.
 * Each message is published on its own (batch 1), when it is due on a fixed
 * schedule, by as many publishers as keep the schedule at the expected
 * confirm latency; latency counts from the due time. Throughput ratios near
 * 1× say the target kept up; below, it fell behind and its latency grew.
 */
export const latencySuite = (mode: Mode, available: ReadonlySet<string>): ReadonlyArray<Comparison> => {
  const runtimes = [
    { target: rabbitmq.runtime, label: "Lossless runtime on RabbitMQ" },
    { target: runtimeTarget("plain"), label: "Lossless runtime on memory" }
  ].filter((t) => available.has(t.target))
  const baseline = available.has(rabbitmq.raw) ? { target: rabbitmq.raw, label: "amqplib" } : runtimes[0]
  if (baseline === undefined) return []
  const all = baseline.target === rabbitmq.raw ? [baseline, ...runtimes] : runtimes
  const payloadBytes = 1024
  // Short in quick mode, which has to stay within a few minutes; three rounds still give 2,000+ samples per rate.
  const seconds = mode === "quick" ? 0.75 : 2
  return latencyRates(mode).map((rate): Comparison => {
    const prefix = `latency/${formatRate(rate).replace("/", "per")}/${sizeTag(payloadBytes)}`
    const scenarios = all.map(
      (t): Scenario => ({
        id: `${prefix}/${t.target}`,
        label: `${t.label} at ${formatRate(rate)}`,
        target: t.target,
        operation: "publish-consume",
        payloadBytes,
        amount: { messages: messagesFor(seconds, rate, 1) },
        rate,
        batchSize: 1,
        // Confirms take a few milliseconds on a loaded broker; 25 ms with headroom, at most 256 fibers.
        publishConcurrency: Math.min(256, publishersFor(rate, 25, 1)),
        prefetch: 100,
        // amqplib's consumer runs one callback at a time; the runtime's its default.
        concurrency: t.target === rabbitmq.raw ? undefined : defaultConcurrency,
        // Never the limit at these rates: the schedule, not the window, sets the pace.
        maxInFlight: 100_000
      })
    )
    return {
      name: `end-to-end latency at ${formatRate(rate)} offered, ${formatBytes(payloadBytes)}, one message per publish`,
      baseline: `${prefix}/${baseline.target}`,
      warmupRounds: 1,
      rounds: mode === "quick" ? 3 : 5,
      scenarios
    }
  })
}

/**
 * Core's features on RabbitMQ, as `runtimeSuite` measures them on memory:
 * the plain runtime divided by the adapter alone, each feature by the plain
 * runtime, with the same requirements. Full mode only.
 */
export const rabbitmqFeatureSuite = (mode: Mode, available: ReadonlySet<string>): ReadonlyArray<Comparison> => {
  if (mode !== "full" || !available.has(rabbitmq.transport) || !available.has(rabbitmq.runtime)) return []
  const payloadBytes = 1024
  const prefix = `rabbitmq-features/publish-consume/${sizeTag(payloadBytes)}`
  const common = {
    operation: "publish-consume",
    payloadBytes,
    amount: { seconds: 1.5 },
    batchSize: 100,
    publishConcurrency: 4,
    prefetch: 100,
    maxInFlight: 1000
  } as const
  const transport: Scenario = {
    ...common,
    id: `${prefix}/transport`,
    label: "transport only (no runtime)",
    target: rabbitmq.transport
  }
  const plain: Scenario = { ...common, id: `${prefix}/plain`, label: "runtime plain", target: rabbitmq.runtime }
  const feature = (name: Feature, label: string, maxCost?: number): Array<Scenario> =>
    available.has(rabbitmqRuntimeTarget(name))
      ? [{ ...common, id: `${prefix}/${name}`, label, target: rabbitmqRuntimeTarget(name), versus: plain.id, maxCost }]
      : []
  return [
    {
      name: `core runtime on RabbitMQ, ${formatBytes(payloadBytes)}, batch 100, 4 publishers: what each feature costs`,
      baseline: transport.id,
      ...brokerRounds(mode),
      scenarios: [
        transport,
        plain,
        ...feature("loss-detection", "runtime + loss detection", 0.05),
        ...feature("memory-dedupe", "runtime + memory dedupe"),
        ...feature("redis-dedupe", "runtime + Redis dedupe", 0.1)
      ]
    }
  ]
}

/**
 * How throughput, latency and memory scale, full mode only: payload size on
 * RabbitMQ (amqplib beside core's runtime), the consumer's handler
 * concurrency (1, 16, 64) on RabbitMQ and on memory, and the heap each
 * message in flight holds (the "heap/in-flight" column) with a small and a
 * large in-flight window on memory.
 */
export const scalingSuite = (mode: Mode, available: ReadonlySet<string>): ReadonlyArray<Comparison> => {
  if (mode !== "full") return []
  const out: Array<Comparison> = []
  const round: Amount = { seconds: 1 }
  if (available.has(rabbitmq.raw) && available.has(rabbitmq.runtime)) {
    for (const payloadBytes of [100, 1024, 16 * 1024]) {
      const prefix = `scaling/rabbitmq/payload/${sizeTag(payloadBytes)}`
      const common = {
        operation: "publish-consume",
        payloadBytes,
        amount: round,
        batchSize: 100,
        publishConcurrency: 4,
        prefetch: 100,
        maxInFlight: 1000
      } as const
      out.push({
        name: `rabbitmq publish→consume ${formatBytes(payloadBytes)}: amqplib and Lossless`,
        baseline: `${prefix}/raw`,
        ...brokerRounds(mode),
        scenarios: [
          { ...common, id: `${prefix}/raw`, label: `amqplib ${formatBytes(payloadBytes)}`, target: rabbitmq.raw },
          {
            ...common,
            id: `${prefix}/runtime`,
            label: `Lossless runtime ${formatBytes(payloadBytes)}`,
            target: rabbitmq.runtime
          }
        ]
      })
    }
  }
  const concurrencies = [16, 1, 64]
  const byConcurrency = (target: string, where: string, amount: Amount, operation: Operation): Comparison => {
    const prefix = `scaling/${where}/concurrency`
    const scenarios = concurrencies.map(
      (concurrency): Scenario => ({
        id: `${prefix}/${concurrency}`,
        label: `${where} runtime, handler concurrency ${concurrency}`,
        target,
        operation,
        payloadBytes: 1024,
        amount,
        batchSize: 100,
        publishConcurrency: 4,
        prefetch: 100,
        concurrency,
        maxInFlight: 1000
      })
    )
    return {
      name: `core runtime on ${where}, 1 KiB, prefetch 100, by handler concurrency`,
      baseline: `${prefix}/16`,
      ...(where === "rabbitmq" ? brokerRounds(mode) : {}),
      scenarios
    }
  }
  if (available.has(rabbitmq.runtime))
    out.push(byConcurrency(rabbitmq.runtime, "rabbitmq", { messages: 12_000 }, "consume"))
  if (available.has(runtimeTarget("plain"))) {
    out.push(byConcurrency(runtimeTarget("plain"), "memory", round, "publish-consume"))
    const prefix = "scaling/memory/in-flight"
    const window = (maxInFlight: number, prefetch: number): Scenario => ({
      id: `${prefix}/${maxInFlight}`,
      label: `runtime on memory, ${maxInFlight.toLocaleString("en-US")} in flight, prefetch ${prefetch}`,
      target: runtimeTarget("plain"),
      operation: "publish-consume",
      payloadBytes: 1024,
      amount: round,
      batchSize: 100,
      publishConcurrency: Math.max(1, maxInFlight / 500),
      prefetch,
      maxInFlight
    })
    out.push({
      name: "core runtime on memory, 1 KiB: heap per message in flight",
      baseline: `${prefix}/1000`,
      scenarios: [window(1000, 100), window(10_000, 1000)]
    })
  }
  return out
}

/** What the plan leaves out in this mode or for want of a target, and why. */
export const skipped = (mode: Mode, available: ReadonlySet<string>): ReadonlyArray<Skip> => {
  const out: Array<Skip> = []
  const fullOnly = (what: string) => {
    if (mode === "quick") out.push({ what, why: "full mode only: --full" })
  }
  fullOnly("payload sizes 1 KiB and 16 KiB on memory, the batch/prefetch sweep")
  fullOnly("core features on RabbitMQ (loss detection, memory and Redis dedupe)")
  fullOnly("outbox off beside outbox on")
  fullOnly("scaling: payload size on RabbitMQ, handler concurrency, heap per message in flight")
  fullOnly("the adapter alone and amqplib with Lossless's headers on RabbitMQ")
  for (const p of peers) {
    if (!available.has(p.target))
      out.push({ what: `${p.label} beside Lossless`, why: `target ${p.target} not available` })
  }
  // Partitions are a Kafka notion: the sweep needs the Kafka targets.
  if (mode === "quick") fullOnly("Kafka consume by partition count")
  else if (!available.has(partitionedName("kafka-runtime", 1))) {
    out.push({ what: "Kafka consume by partition count", why: "no Kafka targets available" })
  }
  return out
}

/** The plan for a run over the given available targets. */
export const plan = (mode: Mode, targets: ReadonlyArray<{ readonly name: string; readonly kind: Kind }>): Plan => {
  const available = new Set(targets.map((t) => t.name))
  return {
    mode,
    warmupRounds: mode === "quick" ? 1 : 2,
    rounds: mode === "quick" ? 5 : 7,
    roundTimeoutMs: 120_000,
    skipped: skipped(mode, available),
    comparisons: [
      ...targets
        .filter((t) => t.kind === "lossless" && !ownSuite.has(t.name))
        .flatMap((t) => transportSuite(t.name, mode)),
      ...runtimeSuite(mode, available),
      ...rabbitmqSuite(mode, available),
      ...emulatedSuite(mode, available),
      ...partitionSuite(mode, available),
      ...latencySuite(mode, available),
      ...rabbitmqFeatureSuite(mode, available),
      ...outboxSuite(mode, available),
      ...scalingSuite(mode, available)
    ]
  }
}

/** The scenarios a scenario's ratios and requirements are taken against (besides the baseline). */
const references = (s: Scenario): Array<string> => [
  ...(s.versus === undefined ? [] : [s.versus]),
  ...(s.atLeast ?? []).flatMap((r) => (r.versus === undefined ? [] : [r.versus])),
  ...(s.compareTo ?? [])
]

/**
 * Keeps the scenarios whose id or label, or whose comparison's name, contains
 * `needle` (case-insensitive). A comparison that keeps any scenario keeps its
 * baseline and the scenarios kept ones are divided by (`versus`), so its ratios
 * stay measurable.
 */
export const only = (comparisons: ReadonlyArray<Comparison>, needle: string): ReadonlyArray<Comparison> => {
  const n = needle.toLowerCase()
  return comparisons.flatMap((comparison) => {
    const whole = comparison.name.toLowerCase().includes(n)
    const matches = (s: Scenario) => whole || s.id.toLowerCase().includes(n) || s.label.toLowerCase().includes(n)
    if (!comparison.scenarios.some(matches)) return []
    const keep = new Set(comparison.scenarios.filter(matches).map((s) => s.id))
    keep.add(comparison.baseline)
    // References may chain (a feature versus the plain runtime, which is versus the baseline).
    for (let added = true; added; ) {
      added = false
      for (const s of comparison.scenarios) {
        if (!keep.has(s.id)) continue
        for (const id of references(s)) {
          if (!keep.has(id)) {
            keep.add(id)
            added = true
          }
        }
      }
    }
    return [{ ...comparison, scenarios: comparison.scenarios.filter((s) => keep.has(s.id)) }]
  })
}
