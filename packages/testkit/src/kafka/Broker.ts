/**
 * The single broker's state: topics and logs, the group coordinator and idempotent-producer state.
 * It is node 0, the leader of every partition and the coordinator of every group.
 *
 * @since 0.1.0
 */
import { GroupCoordinator } from "./GroupCoordinator.ts"
import { isValidTopicName, LogStore, type Topic } from "./Log.ts"
import { ProducerState } from "./ProducerState.ts"

export interface BrokerSettings {
  readonly defaultPartitions: number
  readonly autoCreateTopics: boolean
  readonly messageMaxBytes: number
  readonly groupInitialRebalanceDelayMs: number
  readonly retentionBytesPerPartition: number | undefined
}

export class Broker {
  readonly nodeId = 0
  readonly clusterId = "lossless-kafka-emulator"
  readonly settings: BrokerSettings
  readonly logs: LogStore
  readonly groups: GroupCoordinator
  readonly producers = new ProducerState()
  /** Host and port advertised in Metadata and FindCoordinator; set once the server listens. */
  host = "127.0.0.1"
  port = 0

  constructor(settings: BrokerSettings) {
    this.settings = settings
    this.logs = new LogStore(settings.retentionBytesPerPartition)
    this.groups = new GroupCoordinator({ initialRebalanceDelayMs: settings.groupInitialRebalanceDelayMs })
  }

  /** The topic, created with the default partition count when auto-creation is allowed. */
  topicOrCreate(name: string, allowAutoCreate: boolean): Topic | undefined {
    const existing = this.logs.get(name)
    if (existing !== undefined) return existing
    if (!allowAutoCreate || !this.settings.autoCreateTopics || !isValidTopicName(name)) return undefined
    return this.logs.create(name, this.settings.defaultPartitions)
  }

  deleteTopic(name: string): boolean {
    if (!this.logs.delete(name)) return false
    this.producers.forgetTopic(name)
    this.groups.forgetTopic(name)
    return true
  }
}
