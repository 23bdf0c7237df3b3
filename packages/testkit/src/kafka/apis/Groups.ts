/**
 * Group membership APIs: FindCoordinator (key 10) v0–v2, JoinGroup (11) v0–v5, Heartbeat (12)
 * v0–v3, LeaveGroup (13) v0–v3, SyncGroup (14) v0–v3, DescribeGroups (15) v0–v2 and ListGroups
 * (16) v0–v2. The state machine lives in GroupCoordinator; these modules only translate the wire
 * format. `group_instance_id` (static membership) is read and ignored: every member is dynamic.
 *
 * @since 0.1.0
 */
import type { GroupProtocol, JoinResult, SyncResult } from "../GroupCoordinator.ts"
import { ApiKey } from "../protocol/ApiKey.ts"
import { ErrorCode } from "../protocol/ErrorCode.ts"
import { defineApi } from "./Api.ts"

const copy = (bytes: Buffer): Buffer => Buffer.from(bytes)
const EMPTY = Buffer.alloc(0)

// ---- FindCoordinator ----

const GROUP_KEY_TYPE = 0

interface FindCoordinatorResponse {
  readonly errorCode: number
  readonly errorMessage: string | null
  readonly host: string
  readonly port: number
}

export const FindCoordinator = defineApi<{ readonly keyType: number }, FindCoordinatorResponse>({
  key: ApiKey.FindCoordinator,
  name: "FindCoordinator",
  minVersion: 0,
  maxVersion: 2,
  decode: (r, version) => {
    r.string() // the group (or transactional id): node 0 coordinates everything
    return { keyType: version >= 1 ? r.int8() : GROUP_KEY_TYPE }
  },
  handle: ({ broker }, request) =>
    request.keyType === GROUP_KEY_TYPE
      ? { errorCode: ErrorCode.NONE, errorMessage: null, host: broker.host, port: broker.port }
      : { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: "Transactions are not supported.", host: "", port: -1 },
  fail: (_, errorCode) => ({ errorCode, errorMessage: null, host: "", port: -1 }),
  encode: (w, response, version) => {
    if (version >= 1) w.int32(0)
    w.int16(response.errorCode)
    if (version >= 1) w.nullableString(response.errorMessage)
    w.int32(response.errorCode === ErrorCode.NONE ? 0 : -1)
      .string(response.host)
      .int32(response.port)
  }
})

// ---- JoinGroup ----

interface JoinGroupRequest {
  readonly groupId: string
  readonly sessionTimeoutMs: number
  readonly rebalanceTimeoutMs: number
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly protocolType: string
  readonly protocols: ReadonlyArray<GroupProtocol>
}

export const JoinGroup = defineApi<JoinGroupRequest, JoinResult>({
  key: ApiKey.JoinGroup,
  name: "JoinGroup",
  minVersion: 0,
  maxVersion: 5,
  decode: (r, version) => {
    const groupId = r.string()
    const sessionTimeoutMs = r.int32()
    const rebalanceTimeoutMs = version >= 1 ? r.int32() : sessionTimeoutMs
    const memberId = r.string()
    const groupInstanceId = version >= 5 ? r.nullableString() : null
    const protocolType = r.string()
    const protocols = r.array((r) => ({ name: r.string(), metadata: copy(r.bytes()) }))
    return { groupId, sessionTimeoutMs, rebalanceTimeoutMs, memberId, groupInstanceId, protocolType, protocols }
  },
  handle: ({ broker, version, clientId }, request) =>
    broker.groups.join({ ...request, clientId, requireKnownMemberId: version >= 4 }),
  fail: (request, errorCode) => ({
    errorCode,
    generationId: -1,
    protocolName: "",
    leaderId: "",
    memberId: request.memberId,
    members: []
  }),
  encode: (w, response, version) => {
    if (version >= 2) w.int32(0)
    w.int16(response.errorCode)
      .int32(response.generationId)
      .string(response.protocolName)
      .string(response.leaderId)
      .string(response.memberId)
      .array(response.members, (w, m) => {
        w.string(m.memberId)
        if (version >= 5) w.nullableString(m.groupInstanceId)
        w.bytes(m.metadata)
      })
  }
})

// ---- SyncGroup ----

interface SyncGroupRequest {
  readonly groupId: string
  readonly generationId: number
  readonly memberId: string
  readonly assignments: ReadonlyMap<string, Buffer>
}

export const SyncGroup = defineApi<SyncGroupRequest, SyncResult>({
  key: ApiKey.SyncGroup,
  name: "SyncGroup",
  minVersion: 0,
  maxVersion: 3,
  decode: (r, version) => {
    const groupId = r.string()
    const generationId = r.int32()
    const memberId = r.string()
    if (version >= 3) r.nullableString() // group_instance_id
    const assignments = new Map(r.array((r) => [r.string(), copy(r.bytes())] as const))
    return { groupId, generationId, memberId, assignments }
  },
  handle: ({ broker }, request) =>
    broker.groups.sync(request.groupId, request.generationId, request.memberId, request.assignments),
  fail: (_, errorCode) => ({ errorCode, assignment: EMPTY }),
  encode: (w, response, version) => {
    if (version >= 1) w.int32(0)
    w.int16(response.errorCode).bytes(response.assignment)
  }
})

// ---- Heartbeat ----

interface HeartbeatRequest {
  readonly groupId: string
  readonly generationId: number
  readonly memberId: string
}

export const Heartbeat = defineApi<HeartbeatRequest, number>({
  key: ApiKey.Heartbeat,
  name: "Heartbeat",
  minVersion: 0,
  maxVersion: 3,
  decode: (r, version) => {
    const request = { groupId: r.string(), generationId: r.int32(), memberId: r.string() }
    if (version >= 3) r.nullableString() // group_instance_id
    return request
  },
  handle: ({ broker }, request) => broker.groups.heartbeat(request.groupId, request.generationId, request.memberId),
  fail: (_, errorCode) => errorCode,
  encode: (w, errorCode, version) => {
    if (version >= 1) w.int32(0)
    w.int16(errorCode)
  }
})

// ---- LeaveGroup ----

interface LeaveGroupRequest {
  readonly groupId: string
  readonly members: ReadonlyArray<{ readonly memberId: string; readonly groupInstanceId: string | null }>
}

interface LeaveGroupResponse {
  readonly errorCode: number
  readonly members: ReadonlyArray<{
    readonly memberId: string
    readonly groupInstanceId: string | null
    readonly errorCode: number
  }>
}

export const LeaveGroup = defineApi<LeaveGroupRequest, LeaveGroupResponse>({
  key: ApiKey.LeaveGroup,
  name: "LeaveGroup",
  minVersion: 0,
  maxVersion: 3,
  decode: (r, version) => {
    const groupId = r.string()
    if (version >= 3) {
      return { groupId, members: r.array((r) => ({ memberId: r.string(), groupInstanceId: r.nullableString() })) }
    }
    return { groupId, members: [{ memberId: r.string(), groupInstanceId: null }] }
  },
  handle: ({ broker, version }, request) => {
    const codes = broker.groups.leave(
      request.groupId,
      request.members.map((m) => m.memberId)
    )
    const members = request.members.map((m, i) => ({ ...m, errorCode: codes[i]! }))
    // Before v3 the single member's outcome is the top-level error.
    return { errorCode: version >= 3 ? ErrorCode.NONE : (codes[0] ?? ErrorCode.NONE), members }
  },
  fail: (request, errorCode) => ({ errorCode, members: request.members.map((m) => ({ ...m, errorCode })) }),
  encode: (w, response, version) => {
    if (version >= 1) w.int32(0)
    w.int16(response.errorCode)
    if (version >= 3) {
      w.array(response.members, (w, m) => w.string(m.memberId).nullableString(m.groupInstanceId).int16(m.errorCode))
    }
  }
})

// ---- DescribeGroups / ListGroups ----

interface DescribedGroup {
  readonly errorCode: number
  readonly groupId: string
  readonly state: string
  readonly protocolType: string
  readonly protocolName: string
  readonly members: ReadonlyArray<{ id: string; clientId: string; metadata: Buffer; assignment: Buffer }>
}

export const DescribeGroups = defineApi<ReadonlyArray<string>, ReadonlyArray<DescribedGroup>>({
  key: ApiKey.DescribeGroups,
  name: "DescribeGroups",
  minVersion: 0,
  maxVersion: 2,
  decode: (r) => r.array((r) => r.string()),
  handle: ({ broker }, groupIds) =>
    groupIds.map((groupId) => {
      const group = broker.groups.describe(groupId)
      return group === undefined
        ? { errorCode: ErrorCode.NONE, groupId, state: "Dead", protocolType: "", protocolName: "", members: [] }
        : { errorCode: ErrorCode.NONE, groupId, ...group }
    }),
  fail: (groupIds, errorCode) =>
    groupIds.map((groupId) => ({ errorCode, groupId, state: "", protocolType: "", protocolName: "", members: [] })),
  encode: (w, groups, version) => {
    if (version >= 1) w.int32(0)
    w.array(groups, (w, g) => {
      w.int16(g.errorCode).string(g.groupId).string(g.state).string(g.protocolType).string(g.protocolName)
      w.array(g.members, (w, m) =>
        w.string(m.id).string(m.clientId).string("/127.0.0.1").bytes(m.metadata).bytes(m.assignment)
      )
    })
  }
})

interface ListGroupsResponse {
  readonly errorCode: number
  readonly groups: ReadonlyArray<{ readonly groupId: string; readonly protocolType: string }>
}

export const ListGroups = defineApi<null, ListGroupsResponse>({
  key: ApiKey.ListGroups,
  name: "ListGroups",
  minVersion: 0,
  maxVersion: 2,
  decode: () => null,
  handle: ({ broker }) => ({ errorCode: ErrorCode.NONE, groups: broker.groups.list() }),
  fail: (_, errorCode) => ({ errorCode, groups: [] }),
  encode: (w, response, version) => {
    if (version >= 1) w.int32(0)
    w.int16(response.errorCode).array(response.groups, (w, g) => w.string(g.groupId).string(g.protocolType))
  }
})
