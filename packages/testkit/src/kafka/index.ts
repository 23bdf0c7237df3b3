/**
 * An in-process, single-node Kafka broker for tests and benchmarks: real Kafka clients (kafkajs)
 * talk to it over TCP with the Kafka protocol. See README.md in this folder for what it implements.
 *
 * @since 0.1.0
 */
import { Effect, type Scope } from "effect"
import { Broker } from "./Broker.ts"
import { Faults, type KafkaFaults } from "./Faults.ts"
import { decodeBatch } from "./protocol/RecordBatch.ts"
import { KafkaServer } from "./Server.ts"

export type { KafkaFaults } from "./Faults.ts"
/** Kafka error codes by name, for `faults.failNext` and assertions. */
export { ErrorCode as KafkaErrorCode } from "./protocol/ErrorCode.ts"

export interface KafkaEmulatorOptions {
  /** Interface to listen on. @default "127.0.0.1" */
  readonly host?: string
  /** Port to listen on; 0 picks a free one. @default 0 */
  readonly port?: number
  /** Partitions of auto-created topics (and of CreateTopics with num_partitions -1). @default 3 */
  readonly defaultPartitions?: number
  /** Whether Metadata requests that allow it create unknown topics. @default true */
  readonly autoCreateTopics?: boolean
  /** Largest record batch accepted; bigger ones are refused with MESSAGE_TOO_LARGE (10). @default 1_048_588 */
  readonly messageMaxBytes?: number
  /** Delay before the first rebalance of an empty group completes; each member joining meanwhile restarts it. @default 0 */
  readonly groupInitialRebalanceDelayMs?: number
  /**
   * Bytes each partition keeps; older batches are dropped (the log start offset advances), as
   * Kafka's retention.bytes does. For long benchmarks. @default unbounded
   */
  readonly retentionBytesPerPartition?: number
}

export interface StoredRecord {
  readonly offset: bigint
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: Record<string, Buffer>
}

export interface KafkaEmulator {
  /** Bootstrap addresses for clients, e.g. `["127.0.0.1:39123"]`. */
  readonly brokers: ReadonlyArray<string>
  readonly faults: KafkaFaults
  /** Records of a partition as stored (for assertions), oldest first; empty for an unknown partition. */
  readonly records: (topic: string, partition: number) => ReadonlyArray<StoredRecord>
  readonly topics: () => ReadonlyArray<{ name: string; partitions: number }>
  /** The group's committed offset for a partition, if any. */
  readonly committedOffset: (group: string, topic: string, partition: number) => bigint | undefined
  /** Closes every connection and stops listening. */
  readonly close: () => Promise<void>
}

/** Starts an emulator listening on `host:port`. */
export const start = async (options: KafkaEmulatorOptions = {}): Promise<KafkaEmulator> => {
  const broker = new Broker({
    defaultPartitions: options.defaultPartitions ?? 3,
    autoCreateTopics: options.autoCreateTopics ?? true,
    messageMaxBytes: options.messageMaxBytes ?? 1_048_588,
    groupInitialRebalanceDelayMs: options.groupInitialRebalanceDelayMs ?? 0,
    retentionBytesPerPartition: options.retentionBytesPerPartition
  })
  const faults = new Faults()
  const server = new KafkaServer(broker, faults)
  const address = await server.listen(options.host ?? "127.0.0.1", options.port ?? 0)
  broker.host = address.host
  broker.port = address.port
  let closed: Promise<void> | undefined
  return {
    brokers: [`${address.host}:${address.port}`],
    faults: faults.api(() => server.dropConnections()),
    records: (topic, partition) => {
      const log = broker.logs.partition(topic, partition)
      if (log === undefined) return []
      return log.batches.flatMap((batch) => {
        const decoded = decodeBatch(batch)
        return decoded.records.map((record) => ({
          offset: decoded.baseOffset + BigInt(record.offsetDelta),
          key: record.key,
          value: record.value,
          headers: Object.fromEntries(record.headers.map((h) => [h.key, h.value ?? Buffer.alloc(0)]))
        }))
      })
    },
    topics: () => [...broker.logs.topics.values()].map((t) => ({ name: t.name, partitions: t.partitions.length })),
    committedOffset: (group, topic, partition) => broker.groups.committed(group, topic, partition)?.offset,
    close: () => {
      closed ??= server.close().then(() => broker.groups.close())
      return closed
    }
  }
}

/** Scoped: started on acquire, closed on release. */
export const scoped = (options?: KafkaEmulatorOptions): Effect.Effect<KafkaEmulator, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => start(options)),
    (emulator) => Effect.promise(() => emulator.close())
  )
