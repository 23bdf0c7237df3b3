/**
 * DescribeConfigs (key 32), v0–v2: a topic's configs (those given at creation, over a few defaults
 * that describe how the emulator behaves) and a handful of broker settings. Configs are descriptive
 * only: setting one at creation changes nothing but what is described.
 *
 * @since 0.1.0
 */
import type { Broker } from "../Broker.ts"
import { ApiKey } from "../protocol/ApiKey.ts"
import { ErrorCode } from "../protocol/ErrorCode.ts"
import { defineApi } from "./Api.ts"

const RESOURCE_TOPIC = 2
const RESOURCE_BROKER = 4
const SOURCE_TOPIC_CONFIG = 1
const SOURCE_STATIC_BROKER_CONFIG = 4
const SOURCE_DEFAULT_CONFIG = 5

interface ConfigEntry {
  readonly name: string
  readonly value: string | null
  readonly source: number
}

interface Resource {
  readonly type: number
  readonly name: string
  readonly errorCode: number
  readonly errorMessage: string | null
  readonly entries: ReadonlyArray<ConfigEntry>
}

interface DescribeConfigsRequest {
  readonly resources: ReadonlyArray<{
    readonly type: number
    readonly name: string
    readonly names: ReadonlyArray<string> | null
  }>
}

const topicDefaults = (broker: Broker): Record<string, string> => ({
  "cleanup.policy": "delete",
  "max.message.bytes": String(broker.settings.messageMaxBytes),
  "message.timestamp.type": "CreateTime",
  "min.insync.replicas": "1",
  "retention.bytes": String(broker.settings.retentionBytesPerPartition ?? -1),
  "retention.ms": "-1"
})

const brokerConfigs = (broker: Broker): Record<string, string> => ({
  "auto.create.topics.enable": String(broker.settings.autoCreateTopics),
  "broker.id": String(broker.nodeId),
  "group.initial.rebalance.delay.ms": String(broker.settings.groupInitialRebalanceDelayMs),
  "message.max.bytes": String(broker.settings.messageMaxBytes),
  "num.partitions": String(broker.settings.defaultPartitions)
})

const describe = (broker: Broker, resource: DescribeConfigsRequest["resources"][number]): Resource => {
  const failed = (errorCode: number, errorMessage: string): Resource => ({
    type: resource.type,
    name: resource.name,
    errorCode,
    errorMessage,
    entries: []
  })
  let entries: Array<ConfigEntry>
  if (resource.type === RESOURCE_TOPIC) {
    const topic = broker.logs.get(resource.name)
    if (topic === undefined) return failed(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "Topic does not exist.")
    const defaults = Object.entries(topicDefaults(broker))
      .filter(([name]) => !topic.configs.has(name))
      .map(([name, value]) => ({ name, value, source: SOURCE_DEFAULT_CONFIG }))
    const given = [...topic.configs].map(([name, value]) => ({ name, value, source: SOURCE_TOPIC_CONFIG }))
    entries = [...given, ...defaults]
  } else if (resource.type === RESOURCE_BROKER) {
    if (resource.name !== String(broker.nodeId) && resource.name !== "") {
      return failed(ErrorCode.INVALID_REQUEST, `Unknown broker ${resource.name}.`)
    }
    entries = Object.entries(brokerConfigs(broker)).map(([name, value]) => ({
      name,
      value,
      source: SOURCE_STATIC_BROKER_CONFIG
    }))
  } else {
    return failed(ErrorCode.INVALID_REQUEST, `Unsupported resource type ${resource.type}.`)
  }
  const wanted = resource.names === null ? undefined : new Set(resource.names)
  entries.sort((a, b) => a.name.localeCompare(b.name))
  return {
    type: resource.type,
    name: resource.name,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    entries: wanted === undefined ? entries : entries.filter((e) => wanted.has(e.name))
  }
}

export const DescribeConfigs = defineApi<DescribeConfigsRequest, ReadonlyArray<Resource>>({
  key: ApiKey.DescribeConfigs,
  name: "DescribeConfigs",
  minVersion: 0,
  maxVersion: 2,
  decode: (r, version) => {
    const resources = r.array((r) => ({
      type: r.int8(),
      name: r.string(),
      names: r.nullableArray((r) => r.string())
    }))
    if (version >= 1) r.boolean() // include_synonyms: there are none
    return { resources }
  },
  handle: ({ broker }, request) => request.resources.map((resource) => describe(broker, resource)),
  fail: (request, errorCode) =>
    request.resources.map((r) => ({ type: r.type, name: r.name, errorCode, errorMessage: null, entries: [] })),
  encode: (w, resources, version) => {
    w.int32(0).array(resources, (w, resource) => {
      w.int16(resource.errorCode)
        .nullableString(resource.errorMessage)
        .int8(resource.type)
        .string(resource.name)
        .array(resource.entries, (w, e) => {
          w.string(e.name).nullableString(e.value).boolean(false)
          if (version === 0) w.boolean(e.source === SOURCE_DEFAULT_CONFIG)
          else w.int8(e.source)
          w.boolean(false) // is_sensitive
          if (version >= 1) w.int32(0) // synonyms
        })
    })
  }
})
