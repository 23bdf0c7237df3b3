/**
 * CreateTopics (key 19), v0–v3, DeleteTopics (key 20), v0–v1, and CreatePartitions (key 37), v0–v1.
 *
 * With a single broker, a replication factor above 1 cannot be met: such a topic is refused with
 * INVALID_REPLICATION_FACTOR, as a one-broker Kafka cluster refuses it. Config entries are
 * accepted and kept, but none of them changes the emulator's behaviour.
 *
 * @since 0.1.0
 */
import { isValidTopicName } from "../Log.ts"
import { ApiKey } from "../protocol/ApiKey.ts"
import { ErrorCode } from "../protocol/ErrorCode.ts"
import { defineApi } from "./Api.ts"

interface CreatableTopic {
  readonly name: string
  readonly numPartitions: number
  readonly replicationFactor: number
  readonly assignments: ReadonlyArray<{ readonly partition: number; readonly replicas: ReadonlyArray<number> }>
  readonly configs: ReadonlyArray<{ readonly name: string; readonly value: string | null }>
}

interface CreateTopicsRequest {
  readonly topics: ReadonlyArray<CreatableTopic>
  readonly validateOnly: boolean
}

interface TopicResult {
  readonly name: string
  readonly errorCode: number
  readonly errorMessage: string | null
}

const result = (name: string, errorCode: number, errorMessage: string | null = null): TopicResult => ({
  name,
  errorCode,
  errorMessage
})

export const CreateTopics = defineApi<CreateTopicsRequest, ReadonlyArray<TopicResult>>({
  key: ApiKey.CreateTopics,
  name: "CreateTopics",
  minVersion: 0,
  maxVersion: 3,
  decode: (r, version) => {
    const topics = r.array(
      (r): CreatableTopic => ({
        name: r.string(),
        numPartitions: r.int32(),
        replicationFactor: r.int16(),
        assignments: r.array((r) => ({ partition: r.int32(), replicas: r.array((r) => r.int32()) })),
        configs: r.array((r) => ({ name: r.string(), value: r.nullableString() }))
      })
    )
    r.int32() // timeout: creation is immediate
    return { topics, validateOnly: version >= 1 ? r.boolean() : false }
  },
  handle: ({ broker }, request) => {
    const counts = new Map<string, number>()
    for (const t of request.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1)
    return request.topics.map((t) => {
      if (counts.get(t.name)! > 1) return result(t.name, ErrorCode.INVALID_REQUEST, "Duplicate topic in request.")
      if (!isValidTopicName(t.name)) return result(t.name, ErrorCode.INVALID_TOPIC_EXCEPTION, "Invalid topic name.")
      if (broker.logs.get(t.name) !== undefined) {
        return result(t.name, ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${t.name}' already exists.`)
      }
      let partitions = t.numPartitions
      if (t.assignments.length > 0) {
        if (t.numPartitions !== -1 || t.replicationFactor !== -1) {
          return result(t.name, ErrorCode.INVALID_REQUEST, "Both partition assignments and counts were given.")
        }
        const replicasOk = t.assignments.every((a) => a.replicas.length === 1 && a.replicas[0] === 0)
        if (!replicasOk) {
          return result(
            t.name,
            ErrorCode.INVALID_REPLICATION_FACTOR,
            "Only broker 0 exists; each partition has one replica."
          )
        }
        partitions = t.assignments.length
      } else {
        if (partitions === -1) partitions = broker.settings.defaultPartitions
        if (partitions <= 0)
          return result(t.name, ErrorCode.INVALID_PARTITIONS, "Number of partitions must be larger than 0.")
        if (t.replicationFactor === 0 || t.replicationFactor < -1) {
          return result(t.name, ErrorCode.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0.")
        }
        if (t.replicationFactor > 1) {
          return result(
            t.name,
            ErrorCode.INVALID_REPLICATION_FACTOR,
            `Replication factor: ${t.replicationFactor} larger than available brokers: 1.`
          )
        }
      }
      if (!request.validateOnly) {
        broker.logs.create(t.name, partitions, new Map(t.configs.map((c) => [c.name, c.value])))
      }
      return result(t.name, ErrorCode.NONE)
    })
  },
  fail: (request, errorCode) => request.topics.map((t) => result(t.name, errorCode)),
  encode: (w, response, version) => {
    if (version >= 2) w.int32(0)
    w.array(response, (w, t) => {
      w.string(t.name).int16(t.errorCode)
      if (version >= 1) w.nullableString(t.errorMessage)
    })
  }
})

export const DeleteTopics = defineApi<ReadonlyArray<string>, ReadonlyArray<TopicResult>>({
  key: ApiKey.DeleteTopics,
  name: "DeleteTopics",
  minVersion: 0,
  maxVersion: 1,
  decode: (r) => {
    const topics = r.array((r) => r.string())
    r.int32() // timeout: deletion is immediate
    return topics
  },
  handle: ({ broker }, topics) =>
    topics.map((name) =>
      result(name, broker.deleteTopic(name) ? ErrorCode.NONE : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    ),
  fail: (topics, errorCode) => topics.map((name) => result(name, errorCode)),
  encode: (w, response, version) => {
    if (version >= 1) w.int32(0)
    w.array(response, (w, t) => w.string(t.name).int16(t.errorCode))
  }
})

interface CreatePartitionsRequest {
  readonly topics: ReadonlyArray<{
    readonly name: string
    readonly count: number
    readonly assignment: ReadonlyArray<ReadonlyArray<number>> | null
  }>
  readonly validateOnly: boolean
}

/** CreatePartitions (key 37), v0–v1: grows a topic; new partitions start empty. */
export const CreatePartitions = defineApi<CreatePartitionsRequest, ReadonlyArray<TopicResult>>({
  key: ApiKey.CreatePartitions,
  name: "CreatePartitions",
  minVersion: 0,
  maxVersion: 1,
  decode: (r) => {
    const topics = r.array((r) => ({
      name: r.string(),
      count: r.int32(),
      assignment: r.nullableArray((r) => r.array((r) => r.int32()))
    }))
    r.int32() // timeout: immediate
    return { topics, validateOnly: r.boolean() }
  },
  handle: ({ broker }, request) =>
    request.topics.map((t) => {
      const topic = broker.logs.get(t.name)
      if (topic === undefined) return result(t.name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "Topic does not exist.")
      if (t.count <= topic.partitions.length) {
        return result(
          t.name,
          ErrorCode.INVALID_PARTITIONS,
          `Topic currently has ${topic.partitions.length} partitions, which is higher than or equal to the requested ${t.count}.`
        )
      }
      if (t.assignment !== null && !t.assignment.every((replicas) => replicas.length === 1 && replicas[0] === 0)) {
        return result(t.name, ErrorCode.INVALID_REPLICA_ASSIGNMENT, "Only broker 0 exists.")
      }
      if (!request.validateOnly) topic.grow(t.count)
      return result(t.name, ErrorCode.NONE)
    }),
  fail: (request, errorCode) => request.topics.map((t) => result(t.name, errorCode)),
  encode: (w, response) => {
    w.int32(0).array(response, (w, t) => w.string(t.name).int16(t.errorCode).nullableString(t.errorMessage))
  }
})
