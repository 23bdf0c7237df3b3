/**
 * Committed group offsets: OffsetCommit (key 8) v2–v5 and OffsetFetch (key 9) v1–v4. Commits are
 * checked against the group's generation and member (see GroupCoordinator.checkCommit); offsets
 * never expire (retention_time is read and ignored).
 *
 * @since 0.1.0
 */
import { ApiKey } from "../protocol/ApiKey.ts"
import { ErrorCode } from "../protocol/ErrorCode.ts"
import { defineApi } from "./Api.ts"

/** Kafka's default offset.metadata.max.bytes. */
const MAX_METADATA_LENGTH = 4096

interface OffsetCommitRequest {
  readonly groupId: string
  readonly generationId: number
  readonly memberId: string
  readonly topics: ReadonlyArray<{
    readonly name: string
    readonly partitions: ReadonlyArray<{
      readonly partition: number
      readonly offset: bigint
      readonly metadata: string | null
    }>
  }>
}

type PartitionErrors = ReadonlyArray<{
  readonly name: string
  readonly partitions: ReadonlyArray<{ readonly partition: number; readonly errorCode: number }>
}>

const everyPartition = (request: OffsetCommitRequest, errorCode: number): PartitionErrors =>
  request.topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode }))
  }))

export const OffsetCommit = defineApi<OffsetCommitRequest, PartitionErrors>({
  key: ApiKey.OffsetCommit,
  name: "OffsetCommit",
  minVersion: 2,
  maxVersion: 5,
  decode: (r, version) => {
    const groupId = r.string()
    const generationId = r.int32()
    const memberId = r.string()
    if (version <= 4) r.int64() // retention_time
    const topics = r.array((r) => ({
      name: r.string(),
      partitions: r.array((r) => ({ partition: r.int32(), offset: r.int64(), metadata: r.nullableString() }))
    }))
    return { groupId, generationId, memberId, topics }
  },
  handle: ({ broker }, request) => {
    if (request.groupId === "") return everyPartition(request, ErrorCode.INVALID_GROUP_ID)
    const errorCode = broker.groups.checkCommit(request.groupId, request.generationId, request.memberId)
    if (errorCode !== ErrorCode.NONE) return everyPartition(request, errorCode)
    return request.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        if (broker.logs.partition(t.name, p.partition) === undefined) {
          return { partition: p.partition, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }
        }
        if (p.metadata !== null && p.metadata.length > MAX_METADATA_LENGTH) {
          return { partition: p.partition, errorCode: ErrorCode.OFFSET_METADATA_TOO_LARGE }
        }
        broker.groups.commit(request.groupId, t.name, p.partition, { offset: p.offset, metadata: p.metadata })
        return { partition: p.partition, errorCode: ErrorCode.NONE }
      })
    }))
  },
  fail: everyPartition,
  encode: (w, response, version) => {
    if (version >= 3) w.int32(0)
    w.array(response, (w, t) => w.string(t.name).array(t.partitions, (w, p) => w.int32(p.partition).int16(p.errorCode)))
  }
})

interface OffsetFetchRequest {
  readonly groupId: string
  /** null asks for every committed offset of the group (v2+). */
  readonly topics: ReadonlyArray<{ readonly name: string; readonly partitions: ReadonlyArray<number> }> | null
}

interface OffsetFetchResponse {
  readonly errorCode: number
  readonly topics: ReadonlyArray<{
    readonly name: string
    readonly partitions: ReadonlyArray<{
      readonly partition: number
      readonly offset: bigint
      readonly metadata: string | null
      readonly errorCode: number
    }>
  }>
}

export const OffsetFetch = defineApi<OffsetFetchRequest, OffsetFetchResponse>({
  key: ApiKey.OffsetFetch,
  name: "OffsetFetch",
  minVersion: 1,
  maxVersion: 4,
  decode: (r) => ({
    groupId: r.string(),
    topics: r.nullableArray((r) => ({ name: r.string(), partitions: r.array((r) => r.int32()) }))
  }),
  handle: ({ broker }, request) => {
    if (request.topics === null) {
      const byTopic = new Map<
        string,
        Array<{ partition: number; offset: bigint; metadata: string | null; errorCode: number }>
      >()
      for (const c of broker.groups.committedAll(request.groupId)) {
        const list = byTopic.get(c.topic) ?? []
        list.push({
          partition: c.partition,
          offset: c.offset.offset,
          metadata: c.offset.metadata,
          errorCode: ErrorCode.NONE
        })
        byTopic.set(c.topic, list)
      }
      return { errorCode: ErrorCode.NONE, topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })) }
    }
    return {
      errorCode: ErrorCode.NONE,
      topics: request.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((partition) => {
          const committed = broker.groups.committed(request.groupId, t.name, partition)
          return {
            partition,
            offset: committed?.offset ?? -1n,
            metadata: committed === undefined ? "" : committed.metadata,
            errorCode: ErrorCode.NONE
          }
        })
      }))
    }
  },
  fail: (request, errorCode) => ({
    errorCode,
    topics: (request.topics ?? []).map((t) => ({
      name: t.name,
      partitions: t.partitions.map((partition) => ({ partition, offset: -1n, metadata: "", errorCode }))
    }))
  }),
  encode: (w, response, version) => {
    if (version >= 3) w.int32(0)
    w.array(response.topics, (w, t) => {
      w.string(t.name).array(t.partitions, (w, p) =>
        w.int32(p.partition).int64(p.offset).nullableString(p.metadata).int16(p.errorCode)
      )
    })
    if (version >= 2) w.int16(response.errorCode)
  }
})
