/**
 * The table of implemented APIs by key.
 *
 * @since 0.1.0
 */
import type { AnyApi } from "./Api.ts"
import { makeApiVersions } from "./ApiVersions.ts"
import { DescribeConfigs } from "./DescribeConfigs.ts"
import { Fetch } from "./Fetch.ts"
import { DescribeGroups, FindCoordinator, Heartbeat, JoinGroup, LeaveGroup, ListGroups, SyncGroup } from "./Groups.ts"
import { InitProducerId } from "./InitProducerId.ts"
import { ListOffsets } from "./ListOffsets.ts"
import { Metadata } from "./Metadata.ts"
import { OffsetCommit, OffsetFetch } from "./Offsets.ts"
import { Produce } from "./Produce.ts"
import { CreatePartitions, CreateTopics, DeleteTopics } from "./Topics.ts"

const apis: Array<AnyApi> = [
  Produce,
  Fetch,
  ListOffsets,
  Metadata,
  OffsetCommit,
  OffsetFetch,
  FindCoordinator,
  JoinGroup,
  Heartbeat,
  LeaveGroup,
  SyncGroup,
  DescribeGroups,
  ListGroups,
  CreateTopics,
  DeleteTopics,
  InitProducerId,
  DescribeConfigs,
  CreatePartitions
]
apis.push(makeApiVersions(() => apis))

export const API_TABLE: ReadonlyMap<number, AnyApi> = new Map(apis.map((api) => [api.key, api]))
