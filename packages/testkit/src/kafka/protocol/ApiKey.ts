/**
 * Request API keys by name (the protocol's numbering), for the APIs the emulator knows.
 *
 * @since 0.1.0
 */
export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  InitProducerId: 22,
  DescribeConfigs: 32,
  CreatePartitions: 37
} as const

const NAMES: ReadonlyMap<string, number> = new Map(
  Object.entries(ApiKey).flatMap(([name, key]) => [
    [name, key],
    [name.toLowerCase(), key]
  ])
)

/** Resolves an API given by name ("Produce", case-insensitive) or key number; throws when unknown. */
export const resolveApiKey = (api: string | number): number => {
  if (typeof api === "number") return api
  const key = NAMES.get(api) ?? NAMES.get(api.toLowerCase()) ?? (api === "GroupCoordinator" ? 10 : undefined)
  if (key === undefined) throw new Error(`unknown Kafka API "${api}"`)
  return key
}
