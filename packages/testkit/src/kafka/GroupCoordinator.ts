/**
 * Consumer-group coordinator: the classic (pre-KIP-848) group membership protocol with its four
 * states. Assignment runs in the group leader (a client); the coordinator only elects the leader,
 * picks the protocol every member supports, relays member metadata to the leader and the leader's
 * assignments to every member, and expires members that stop heartbeating.
 *
 * ```
 * Empty --join--> PreparingRebalance --all joined / rebalance timeout--> CompletingRebalance
 * CompletingRebalance --leader's SyncGroup--> Stable
 * Stable | CompletingRebalance --join with new metadata / leave / session expiry--> PreparingRebalance
 * PreparingRebalance --no member left--> Empty
 * ```
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import { ErrorCode } from "./protocol/ErrorCode.ts"

export type GroupState = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable"

export interface GroupProtocol {
  readonly name: string
  readonly metadata: Buffer
}

export interface JoinRequest {
  readonly groupId: string
  readonly sessionTimeoutMs: number
  readonly rebalanceTimeoutMs: number
  readonly memberId: string
  readonly groupInstanceId: string | null
  readonly protocolType: string
  readonly protocols: ReadonlyArray<GroupProtocol>
  readonly clientId: string
  /** JoinGroup v4+ asks a new member to rejoin with the id it is given (MEMBER_ID_REQUIRED). */
  readonly requireKnownMemberId: boolean
}

export interface JoinResult {
  readonly errorCode: number
  readonly generationId: number
  readonly protocolName: string
  readonly leaderId: string
  readonly memberId: string
  readonly members: ReadonlyArray<{
    readonly memberId: string
    readonly groupInstanceId: string | null
    readonly metadata: Buffer
  }>
}

export interface SyncResult {
  readonly errorCode: number
  readonly assignment: Buffer
}

export interface CommittedOffset {
  readonly offset: bigint
  readonly metadata: string | null
}

interface Member {
  readonly id: string
  readonly groupInstanceId: string | null
  readonly clientId: string
  sessionTimeoutMs: number
  rebalanceTimeoutMs: number
  protocols: ReadonlyArray<GroupProtocol>
  assignment: Buffer
  awaitingJoin: ((result: JoinResult) => void) | undefined
  awaitingSync: ((result: SyncResult) => void) | undefined
  sessionTimer: NodeJS.Timeout | undefined
}

class Group {
  readonly id: string
  state: GroupState = "Empty"
  generationId = 0
  protocolType: string | null = null
  protocolName: string | null = null
  leaderId: string | null = null
  readonly members = new Map<string, Member>()
  /** Member ids handed out with MEMBER_ID_REQUIRED, not yet joined, with their expiry timers. */
  readonly pending = new Map<string, NodeJS.Timeout>()
  readonly offsets = new Map<string, Map<number, CommittedOffset>>()
  rebalanceTimer: NodeJS.Timeout | undefined
  /**
   * Armed during an empty group's first rebalance: the join does not complete while it runs. A flag
   * rather than a deadline, so completion never depends on comparing wall-clock time with timers.
   */
  initialDelayTimer: NodeJS.Timeout | undefined

  constructor(id: string) {
    this.id = id
  }
}

const EMPTY = Buffer.alloc(0)

const failedJoin = (errorCode: number, memberId = ""): JoinResult => ({
  errorCode,
  generationId: -1,
  protocolName: "",
  leaderId: "",
  memberId,
  members: []
})

const sameProtocols = (a: ReadonlyArray<GroupProtocol>, b: ReadonlyArray<GroupProtocol>): boolean =>
  a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.metadata.equals(b[i]!.metadata))

const unrefTimer = (ms: number, f: () => void): NodeJS.Timeout => {
  const timer = setTimeout(f, Math.max(0, ms))
  timer.unref()
  return timer
}

export interface GroupCoordinatorOptions {
  /** Delay before the first rebalance of an empty group completes, so members starting together share it. */
  readonly initialRebalanceDelayMs: number
}

export class GroupCoordinator {
  private readonly groups = new Map<string, Group>()
  private readonly options: GroupCoordinatorOptions

  constructor(options: GroupCoordinatorOptions) {
    this.options = options
  }

  private group(groupId: string): Group {
    let group = this.groups.get(groupId)
    if (group === undefined) {
      group = new Group(groupId)
      this.groups.set(groupId, group)
    }
    return group
  }

  // ---- JoinGroup ----

  join(request: JoinRequest): Promise<JoinResult> {
    if (request.groupId === "") return Promise.resolve(failedJoin(ErrorCode.INVALID_GROUP_ID))
    if (request.sessionTimeoutMs <= 0 || request.sessionTimeoutMs > 3_600_000) {
      return Promise.resolve(failedJoin(ErrorCode.INVALID_SESSION_TIMEOUT, request.memberId))
    }
    const group = this.group(request.groupId)
    if (!this.acceptsProtocols(group, request)) {
      return Promise.resolve(failedJoin(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, request.memberId))
    }
    if (request.memberId === "") {
      const memberId = `${request.clientId}-${randomUUID()}`
      if (request.requireKnownMemberId) {
        group.pending.set(
          memberId,
          unrefTimer(request.sessionTimeoutMs, () => {
            group.pending.delete(memberId)
            this.tryCompleteJoin(group)
          })
        )
        return Promise.resolve(failedJoin(ErrorCode.MEMBER_ID_REQUIRED, memberId))
      }
      return this.addMemberAndRebalance(group, memberId, request)
    }
    const pendingTimer = group.pending.get(request.memberId)
    if (pendingTimer !== undefined) {
      clearTimeout(pendingTimer)
      group.pending.delete(request.memberId)
      return this.addMemberAndRebalance(group, request.memberId, request)
    }
    const member = group.members.get(request.memberId)
    if (member === undefined) return Promise.resolve(failedJoin(ErrorCode.UNKNOWN_MEMBER_ID, request.memberId))
    return new Promise<JoinResult>((resolve) => {
      const changed = !sameProtocols(member.protocols, request.protocols)
      member.sessionTimeoutMs = request.sessionTimeoutMs
      member.rebalanceTimeoutMs = request.rebalanceTimeoutMs
      switch (group.state) {
        case "PreparingRebalance":
          member.protocols = request.protocols
          this.awaitJoin(member, resolve)
          this.tryCompleteJoin(group)
          return
        case "CompletingRebalance":
        case "Stable":
          if (!changed && (group.state === "CompletingRebalance" || member.id !== group.leaderId)) {
            // Nothing changed: the member just learns the current generation again.
            this.scheduleSession(group, member)
            resolve(this.joinResult(group, member))
            return
          }
          member.protocols = request.protocols
          this.awaitJoin(member, resolve)
          this.prepareRebalance(group)
          return
        case "Empty":
          resolve(failedJoin(ErrorCode.UNKNOWN_MEMBER_ID, request.memberId))
      }
    })
  }

  private awaitJoin(member: Member, resolve: (result: JoinResult) => void): void {
    // A second join from the same member replaces the first; the first learns it lost.
    member.awaitingJoin?.(failedJoin(ErrorCode.UNKNOWN_MEMBER_ID, member.id))
    member.awaitingJoin = resolve
  }

  private acceptsProtocols(group: Group, request: JoinRequest): boolean {
    if (request.protocolType === "" || request.protocols.length === 0) return false
    if (group.members.size === 0) return true
    if (group.protocolType !== request.protocolType) return false
    const candidates = this.candidateProtocols(group)
    return request.protocols.some((p) => candidates.has(p.name))
  }

  /** Protocol names every current member supports. */
  private candidateProtocols(group: Group): Set<string> {
    let candidates: Set<string> | undefined
    for (const member of group.members.values()) {
      const names = new Set(member.protocols.map((p) => p.name))
      candidates = candidates === undefined ? names : new Set([...candidates].filter((n) => names.has(n)))
    }
    return candidates ?? new Set()
  }

  private addMemberAndRebalance(group: Group, memberId: string, request: JoinRequest): Promise<JoinResult> {
    return new Promise<JoinResult>((resolve) => {
      const member: Member = {
        id: memberId,
        groupInstanceId: request.groupInstanceId,
        clientId: request.clientId,
        sessionTimeoutMs: request.sessionTimeoutMs,
        rebalanceTimeoutMs: request.rebalanceTimeoutMs,
        protocols: request.protocols,
        assignment: EMPTY,
        awaitingJoin: resolve,
        awaitingSync: undefined,
        sessionTimer: undefined
      }
      if (group.members.size === 0) group.protocolType = request.protocolType
      group.members.set(memberId, member)
      if (group.state === "PreparingRebalance") {
        this.extendInitialDelay(group)
        this.tryCompleteJoin(group)
      } else {
        this.prepareRebalance(group)
      }
    })
  }

  private prepareRebalance(group: Group): void {
    if (group.state === "CompletingRebalance") {
      for (const member of group.members.values()) {
        member.assignment = EMPTY
        const sync = member.awaitingSync
        member.awaitingSync = undefined
        sync?.({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, assignment: EMPTY })
      }
    }
    const wasEmpty = group.state === "Empty"
    group.state = "PreparingRebalance"
    let rebalanceTimeoutMs = 0
    for (const member of group.members.values())
      rebalanceTimeoutMs = Math.max(rebalanceTimeoutMs, member.rebalanceTimeoutMs)
    if (group.rebalanceTimer !== undefined) clearTimeout(group.rebalanceTimer)
    group.rebalanceTimer = unrefTimer(rebalanceTimeoutMs, () => {
      group.rebalanceTimer = undefined
      this.completeJoin(group)
    })
    const delay = wasEmpty ? this.options.initialRebalanceDelayMs : 0
    if (delay > 0) this.armInitialDelay(group)
    this.tryCompleteJoin(group)
  }

  private armInitialDelay(group: Group): void {
    if (group.initialDelayTimer !== undefined) clearTimeout(group.initialDelayTimer)
    group.initialDelayTimer = unrefTimer(this.options.initialRebalanceDelayMs, () => {
      group.initialDelayTimer = undefined
      this.tryCompleteJoin(group)
    })
  }

  /**
   * During an empty group's first rebalance every new member restarts the initial delay, so members
   * starting together share one generation; the rebalance timeout still bounds the whole wait.
   */
  private extendInitialDelay(group: Group): void {
    if (group.initialDelayTimer !== undefined) this.armInitialDelay(group)
  }

  private tryCompleteJoin(group: Group): void {
    if (group.state !== "PreparingRebalance" || group.initialDelayTimer !== undefined) return
    if (group.pending.size > 0) return
    for (const member of group.members.values()) if (member.awaitingJoin === undefined) return
    this.completeJoin(group)
  }

  private completeJoin(group: Group): void {
    if (group.state !== "PreparingRebalance") return
    if (group.rebalanceTimer !== undefined) clearTimeout(group.rebalanceTimer)
    group.rebalanceTimer = undefined
    if (group.initialDelayTimer !== undefined) clearTimeout(group.initialDelayTimer)
    group.initialDelayTimer = undefined
    // Members that did not rejoin in time are out of the group.
    for (const member of [...group.members.values()]) {
      if (member.awaitingJoin === undefined) this.removeMember(group, member)
    }
    for (const timer of group.pending.values()) clearTimeout(timer)
    group.pending.clear()
    group.generationId++
    if (group.members.size === 0) {
      group.state = "Empty"
      group.protocolName = null
      group.protocolType = null
      group.leaderId = null
      return
    }
    group.protocolName = this.selectProtocol(group)
    if (group.leaderId === null || !group.members.has(group.leaderId))
      group.leaderId = group.members.keys().next().value!
    group.state = "CompletingRebalance"
    for (const member of group.members.values()) {
      const join = member.awaitingJoin!
      member.awaitingJoin = undefined
      this.scheduleSession(group, member)
      join(this.joinResult(group, member))
    }
  }

  /** Each member votes for the first protocol it lists among those all members support. */
  private selectProtocol(group: Group): string {
    const candidates = this.candidateProtocols(group)
    const votes = new Map<string, number>()
    for (const member of group.members.values()) {
      const choice = member.protocols.find((p) => candidates.has(p.name))
      if (choice !== undefined) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1)
    }
    let best = ""
    let bestVotes = -1
    for (const [name, count] of votes) {
      if (count > bestVotes) {
        best = name
        bestVotes = count
      }
    }
    return best
  }

  private joinResult(group: Group, member: Member): JoinResult {
    const protocolName = group.protocolName ?? ""
    return {
      errorCode: ErrorCode.NONE,
      generationId: group.generationId,
      protocolName,
      leaderId: group.leaderId ?? "",
      memberId: member.id,
      members:
        member.id === group.leaderId
          ? [...group.members.values()].map((m) => ({
              memberId: m.id,
              groupInstanceId: m.groupInstanceId,
              metadata: m.protocols.find((p) => p.name === protocolName)?.metadata ?? EMPTY
            }))
          : []
    }
  }

  // ---- membership liveness ----

  private scheduleSession(group: Group, member: Member): void {
    if (member.sessionTimer !== undefined) clearTimeout(member.sessionTimer)
    member.sessionTimer = unrefTimer(member.sessionTimeoutMs, () => {
      member.sessionTimer = undefined
      if (group.members.get(member.id) !== member) return
      // A member parked in JoinGroup or SyncGroup is alive by definition.
      if (member.awaitingJoin !== undefined || member.awaitingSync !== undefined) {
        this.scheduleSession(group, member)
        return
      }
      this.removeMember(group, member)
      this.afterMembershipChange(group)
    })
  }

  private removeMember(group: Group, member: Member): void {
    if (member.sessionTimer !== undefined) clearTimeout(member.sessionTimer)
    member.sessionTimer = undefined
    group.members.delete(member.id)
    if (group.leaderId === member.id) group.leaderId = null
    const join = member.awaitingJoin
    const sync = member.awaitingSync
    member.awaitingJoin = undefined
    member.awaitingSync = undefined
    join?.(failedJoin(ErrorCode.UNKNOWN_MEMBER_ID, member.id))
    sync?.({ errorCode: ErrorCode.UNKNOWN_MEMBER_ID, assignment: EMPTY })
  }

  private afterMembershipChange(group: Group): void {
    if (group.state === "Stable" || group.state === "CompletingRebalance") this.prepareRebalance(group)
    else if (group.state === "PreparingRebalance") this.tryCompleteJoin(group)
  }

  // ---- SyncGroup ----

  sync(
    groupId: string,
    generationId: number,
    memberId: string,
    assignments: ReadonlyMap<string, Buffer>
  ): Promise<SyncResult> {
    const group = this.groups.get(groupId)
    const member = group?.members.get(memberId)
    if (group === undefined || member === undefined) {
      return Promise.resolve({ errorCode: ErrorCode.UNKNOWN_MEMBER_ID, assignment: EMPTY })
    }
    if (generationId !== group.generationId) {
      return Promise.resolve({ errorCode: ErrorCode.ILLEGAL_GENERATION, assignment: EMPTY })
    }
    switch (group.state) {
      case "Empty":
        return Promise.resolve({ errorCode: ErrorCode.UNKNOWN_MEMBER_ID, assignment: EMPTY })
      case "PreparingRebalance":
        return Promise.resolve({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, assignment: EMPTY })
      case "Stable":
        this.scheduleSession(group, member)
        return Promise.resolve({ errorCode: ErrorCode.NONE, assignment: member.assignment })
      case "CompletingRebalance":
        return new Promise<SyncResult>((resolve) => {
          member.awaitingSync?.({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, assignment: EMPTY })
          member.awaitingSync = resolve
          this.scheduleSession(group, member)
          if (memberId !== group.leaderId) return
          for (const m of group.members.values()) m.assignment = assignments.get(m.id) ?? EMPTY
          group.state = "Stable"
          for (const m of group.members.values()) {
            const sync = m.awaitingSync
            m.awaitingSync = undefined
            sync?.({ errorCode: ErrorCode.NONE, assignment: m.assignment })
          }
        })
    }
  }

  // ---- Heartbeat / LeaveGroup ----

  heartbeat(groupId: string, generationId: number, memberId: string): number {
    const group = this.groups.get(groupId)
    const member = group?.members.get(memberId)
    if (group === undefined || member === undefined || group.state === "Empty") return ErrorCode.UNKNOWN_MEMBER_ID
    // During PreparingRebalance the generation is still the one members hold, so they learn of the
    // rebalance (REBALANCE_IN_PROGRESS) rather than being told their generation is stale.
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION
    this.scheduleSession(group, member)
    return group.state === "Stable" ? ErrorCode.NONE : ErrorCode.REBALANCE_IN_PROGRESS
  }

  /** Removes members; answers one error code per member id. */
  leave(groupId: string, memberIds: ReadonlyArray<string>): Array<number> {
    const group = this.groups.get(groupId)
    if (group === undefined) return memberIds.map(() => ErrorCode.UNKNOWN_MEMBER_ID)
    let changed = false
    const results = memberIds.map((memberId) => {
      const pending = group.pending.get(memberId)
      if (pending !== undefined) {
        clearTimeout(pending)
        group.pending.delete(memberId)
        changed = true
        return ErrorCode.NONE
      }
      const member = group.members.get(memberId)
      if (member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID
      this.removeMember(group, member)
      changed = true
      return ErrorCode.NONE
    })
    if (changed) this.afterMembershipChange(group)
    return results
  }

  // ---- offsets ----

  /**
   * Checks whether a member may commit: simple (generation -1, no member id) commits only to a group
   * nobody manages; group members only for the current generation, and not while the group waits
   * for its leader's assignment (commits during PreparingRebalance are allowed, as in Kafka, so
   * members can commit before rejoining).
   */
  checkCommit(groupId: string, generationId: number, memberId: string): number {
    const group = this.groups.get(groupId)
    if (group === undefined) return generationId < 0 ? ErrorCode.NONE : ErrorCode.ILLEGAL_GENERATION
    if (generationId < 0 && group.state === "Empty") return ErrorCode.NONE
    if (group.state === "CompletingRebalance") return ErrorCode.REBALANCE_IN_PROGRESS
    const member = group.members.get(memberId)
    if (member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION
    this.scheduleSession(group, member)
    return ErrorCode.NONE
  }

  commit(groupId: string, topic: string, partition: number, offset: CommittedOffset): void {
    const offsets = this.group(groupId).offsets
    let byPartition = offsets.get(topic)
    if (byPartition === undefined) {
      byPartition = new Map()
      offsets.set(topic, byPartition)
    }
    byPartition.set(partition, offset)
  }

  committed(groupId: string, topic: string, partition: number): CommittedOffset | undefined {
    return this.groups.get(groupId)?.offsets.get(topic)?.get(partition)
  }

  /** Every committed (topic, partition) of a group. */
  committedAll(
    groupId: string
  ): Array<{ readonly topic: string; readonly partition: number; readonly offset: CommittedOffset }> {
    const out: Array<{ topic: string; partition: number; offset: CommittedOffset }> = []
    for (const [topic, byPartition] of this.groups.get(groupId)?.offsets ?? []) {
      for (const [partition, offset] of byPartition) out.push({ topic, partition, offset })
    }
    return out
  }

  forgetTopic(topic: string): void {
    for (const group of this.groups.values()) group.offsets.delete(topic)
  }

  // ---- inspection ----

  describe(groupId: string):
    | {
        readonly state: GroupState
        readonly protocolType: string
        readonly protocolName: string
        readonly members: ReadonlyArray<{ id: string; clientId: string; metadata: Buffer; assignment: Buffer }>
      }
    | undefined {
    const group = this.groups.get(groupId)
    if (group === undefined) return undefined
    return {
      state: group.state,
      protocolType: group.protocolType ?? "",
      protocolName: group.protocolName ?? "",
      members: [...group.members.values()].map((m) => ({
        id: m.id,
        clientId: m.clientId,
        metadata: m.protocols.find((p) => p.name === group.protocolName)?.metadata ?? EMPTY,
        assignment: m.assignment
      }))
    }
  }

  list(): Array<{ readonly groupId: string; readonly protocolType: string }> {
    return [...this.groups.values()].map((g) => ({ groupId: g.id, protocolType: g.protocolType ?? "" }))
  }

  close(): void {
    for (const group of this.groups.values()) {
      if (group.rebalanceTimer !== undefined) clearTimeout(group.rebalanceTimer)
      if (group.initialDelayTimer !== undefined) clearTimeout(group.initialDelayTimer)
      for (const timer of group.pending.values()) clearTimeout(timer)
      for (const member of group.members.values())
        if (member.sessionTimer !== undefined) clearTimeout(member.sessionTimer)
    }
    this.groups.clear()
  }
}
