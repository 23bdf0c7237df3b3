/**
 * Metadata (key 3), v4–v5: one broker (node 0) that leads every partition, with itself as the
 * only replica and in-sync replica. Unknown topics are created when the request and the emulator
 * both allow it.
 *
 * @since 0.1.0
 */
import { isValidTopicName } from "../Log.ts"
import { ApiKey } from "../protocol/ApiKey.ts"
import { ErrorCode } from "../protocol/ErrorCode.ts"
import { defineApi } from "./Api.ts"

interface MetadataRequest {
  readonly topics: ReadonlyArray<string> | null
  readonly allowAutoTopicCreation: boolean
}

interface TopicMetadata {
  readonly errorCode: number
  readonly name: string
  readonly partitions: number
}

interface MetadataResponse {
  readonly host: string
  readonly port: number
  readonly clusterId: string
  readonly topics: ReadonlyArray<TopicMetadata>
}

export const Metadata = defineApi<MetadataRequest, MetadataResponse>({
  key: ApiKey.Metadata,
  name: "Metadata",
  minVersion: 4,
  maxVersion: 5,
  decode: (r) => ({ topics: r.nullableArray((r) => r.string()), allowAutoTopicCreation: r.boolean() }),
  handle: ({ broker }, request) => {
    const names = request.topics ?? [...broker.logs.topics.keys()]
    return {
      host: broker.host,
      port: broker.port,
      clusterId: broker.clusterId,
      topics: names.map((name) => {
        if (!isValidTopicName(name)) return { errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, name, partitions: 0 }
        const topic = broker.topicOrCreate(name, request.allowAutoTopicCreation)
        return topic === undefined
          ? { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, partitions: 0 }
          : { errorCode: ErrorCode.NONE, name, partitions: topic.partitions.length }
      })
    }
  },
  fail: (request, errorCode) => ({
    host: "",
    port: 0,
    clusterId: "",
    topics: (request.topics ?? []).map((name) => ({ errorCode, name, partitions: 0 }))
  }),
  encode: (w, response, version) => {
    w.int32(0) // throttle_time_ms
    if (response.host === "") w.int32(0)
    else w.int32(1).int32(0).string(response.host).int32(response.port).nullableString(null)
    w.nullableString(response.clusterId === "" ? null : response.clusterId)
      .int32(0) // controller_id
      .array(response.topics, (w, topic) => {
        w.int16(topic.errorCode).string(topic.name).boolean(false).int32(topic.partitions)
        for (let p = 0; p < topic.partitions; p++) {
          w.int16(ErrorCode.NONE).int32(p).int32(0) // leader: node 0
          w.int32(1).int32(0) // replicas
          w.int32(1).int32(0) // isr
          if (version >= 5) w.int32(0) // offline_replicas
        }
      })
  }
})
