/**
 * The group coordinator's state machine, driven directly on fake timers, and a dead member's
 * session expiring under a live kafkajs consumer.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { GroupCoordinator, type JoinRequest, type JoinResult } from "../../src/kafka/GroupCoordinator.ts"
import { start } from "../../src/kafka/index.ts"
import { ApiKey } from "../../src/kafka/protocol/ApiKey.ts"
import { ErrorCode } from "../../src/kafka/protocol/ErrorCode.ts"
import { Writer } from "../../src/kafka/protocol/Writer.ts"
import { kafkaFor, rawClient, unique, waitFor } from "./support.ts"

const GROUP = "g"
const protocols = (...names: Array<string>) => names.map((name) => ({ name, metadata: Buffer.from(name) }))

const request = (memberId: string, overrides: Partial<JoinRequest> = {}): JoinRequest => ({
  groupId: GROUP,
  sessionTimeoutMs: 1000,
  rebalanceTimeoutMs: 2000,
  memberId,
  groupInstanceId: null,
  protocolType: "consumer",
  protocols: protocols("range"),
  clientId: "client",
  requireKnownMemberId: true,
  ...overrides
})

/** Joins a new member the v4+ way: MEMBER_ID_REQUIRED, then again with the id it was given. */
const joinNew = async (coordinator: GroupCoordinator, overrides: Partial<JoinRequest> = {}) => {
  const first = await coordinator.join(request("", overrides))
  expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED)
  expect(first.memberId).not.toBe("")
  return { memberId: first.memberId, joined: coordinator.join(request(first.memberId, overrides)) }
}

describe("group coordinator", () => {
  let coordinator: GroupCoordinator
  beforeEach(() => {
    vi.useFakeTimers()
    coordinator = new GroupCoordinator({ initialRebalanceDelayMs: 0 })
  })
  afterEach(() => {
    coordinator.close()
    vi.useRealTimers()
  })

  it("makes the first member leader of generation 1 and becomes Stable on the leader's sync", async () => {
    const { memberId, joined } = await joinNew(coordinator)
    const result = await joined
    expect(result).toMatchObject({ errorCode: 0, generationId: 1, protocolName: "range", leaderId: memberId, memberId })
    expect(result.members.map((m) => m.memberId)).toEqual([memberId])
    expect(coordinator.describe(GROUP)?.state).toBe("CompletingRebalance")
    expect(coordinator.heartbeat(GROUP, 1, memberId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
    expect(coordinator.checkCommit(GROUP, 1, memberId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
    const sync = await coordinator.sync(GROUP, 1, memberId, new Map([[memberId, Buffer.from("all")]]))
    expect(sync).toEqual({ errorCode: 0, assignment: Buffer.from("all") })
    expect(coordinator.describe(GROUP)?.state).toBe("Stable")
    expect(coordinator.heartbeat(GROUP, 1, memberId)).toBe(ErrorCode.NONE)
    expect(coordinator.checkCommit(GROUP, 1, memberId)).toBe(ErrorCode.NONE)
  })

  it("rebalances when a member joins, relaying all metadata to the leader only", async () => {
    const a = await joinNew(coordinator)
    await a.joined
    await coordinator.sync(GROUP, 1, a.memberId, new Map())
    const b = await joinNew(coordinator, { clientId: "other" })
    expect(coordinator.describe(GROUP)?.state).toBe("PreparingRebalance")
    expect(coordinator.heartbeat(GROUP, 1, a.memberId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
    // Commits for the current generation are still accepted while members rejoin.
    expect(coordinator.checkCommit(GROUP, 1, a.memberId)).toBe(ErrorCode.NONE)
    const aAgain = coordinator.join(request(a.memberId))
    const [leader, follower] = await Promise.all([aAgain, b.joined])
    expect(leader).toMatchObject({ generationId: 2, leaderId: a.memberId })
    expect(leader.members.map((m) => m.memberId).sort()).toEqual([a.memberId, b.memberId].sort())
    expect(follower).toMatchObject({ generationId: 2, leaderId: a.memberId, members: [] })

    const followerSync = coordinator.sync(GROUP, 2, b.memberId, new Map())
    const leaderSync = coordinator.sync(
      GROUP,
      2,
      a.memberId,
      new Map([
        [a.memberId, Buffer.from("p0")],
        [b.memberId, Buffer.from("p1")]
      ])
    )
    expect((await followerSync).assignment).toEqual(Buffer.from("p1"))
    expect((await leaderSync).assignment).toEqual(Buffer.from("p0"))
    expect(coordinator.heartbeat(GROUP, 1, a.memberId)).toBe(ErrorCode.ILLEGAL_GENERATION)
    expect(coordinator.checkCommit(GROUP, 1, a.memberId)).toBe(ErrorCode.ILLEGAL_GENERATION)
    expect(coordinator.heartbeat(GROUP, 2, "stranger")).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
  })

  it("expires a member that stops heartbeating and rebalances the rest", async () => {
    const a = await joinNew(coordinator)
    await a.joined
    await coordinator.sync(GROUP, 1, a.memberId, new Map())
    const b = await joinNew(coordinator, { sessionTimeoutMs: 5000 })
    const [aJoin] = await Promise.all([coordinator.join(request(a.memberId)), b.joined])
    await Promise.all([
      coordinator.sync(GROUP, 2, a.memberId, new Map()),
      coordinator.sync(GROUP, 2, b.memberId, new Map())
    ])
    expect(aJoin.generationId).toBe(2)
    // b keeps heartbeating, a (1000 ms session) does not.
    for (let i = 0; i < 2; i++) {
      await vi.advanceTimersByTimeAsync(450)
      expect(coordinator.heartbeat(GROUP, 2, b.memberId)).toBe(ErrorCode.NONE)
    }
    expect(coordinator.describe(GROUP)?.members).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(150)
    expect(coordinator.describe(GROUP)?.members.map((m) => m.id)).toEqual([b.memberId])
    expect(coordinator.heartbeat(GROUP, 2, b.memberId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
    const rejoin = await coordinator.join(request(b.memberId, { sessionTimeoutMs: 5000 }))
    expect(rejoin).toMatchObject({ generationId: 3, leaderId: b.memberId })
    expect(coordinator.heartbeat(GROUP, 2, a.memberId)).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
  })

  it("completes a rebalance without members that do not rejoin within the rebalance timeout", async () => {
    const a = await joinNew(coordinator, { sessionTimeoutMs: 60_000 })
    await a.joined
    await coordinator.sync(GROUP, 1, a.memberId, new Map())
    const b = await joinNew(coordinator, { sessionTimeoutMs: 60_000 })
    let done: JoinResult | undefined
    void b.joined.then((r) => {
      done = r
    })
    await vi.advanceTimersByTimeAsync(1999)
    expect(done).toBeUndefined()
    await vi.advanceTimersByTimeAsync(1)
    expect(done).toMatchObject({ errorCode: 0, generationId: 2, leaderId: b.memberId })
    expect(coordinator.describe(GROUP)?.members.map((m) => m.id)).toEqual([b.memberId])
  })

  it("answers SyncGroup of a previous generation and unknown members with errors", async () => {
    const a = await joinNew(coordinator)
    await a.joined
    expect((await coordinator.sync(GROUP, 7, a.memberId, new Map())).errorCode).toBe(ErrorCode.ILLEGAL_GENERATION)
    expect((await coordinator.sync(GROUP, 1, "nobody", new Map())).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
    expect((await coordinator.join(request("nobody"))).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID)
  })

  it("tells followers waiting in SyncGroup to rejoin when the group rebalances under them", async () => {
    const a = await joinNew(coordinator)
    await a.joined
    await coordinator.sync(GROUP, 1, a.memberId, new Map())
    const b = await joinNew(coordinator)
    await Promise.all([coordinator.join(request(a.memberId)), b.joined])
    const waiting = coordinator.sync(GROUP, 2, b.memberId, new Map())
    expect(coordinator.leave(GROUP, [a.memberId])).toEqual([ErrorCode.NONE])
    expect((await waiting).errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS)
    expect(coordinator.describe(GROUP)?.state).toBe("PreparingRebalance")
    expect(coordinator.leave(GROUP, [a.memberId])).toEqual([ErrorCode.UNKNOWN_MEMBER_ID])
  })

  it("picks the protocol every member supports, by vote, and refuses members sharing none", async () => {
    const a = await joinNew(coordinator, { protocols: protocols("roundrobin", "range") })
    await a.joined
    await coordinator.sync(GROUP, 1, a.memberId, new Map())
    const refused = await coordinator.join(request("", { protocols: protocols("sticky") }))
    expect(refused.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
    const b = await joinNew(coordinator, { protocols: protocols("range", "sticky") })
    const [aJoin] = await Promise.all([
      coordinator.join(request(a.memberId, { protocols: protocols("roundrobin", "range") })),
      b.joined
    ])
    expect(aJoin.protocolName).toBe("range")
    expect(aJoin.members.find((m) => m.memberId === b.memberId)?.metadata).toEqual(Buffer.from("range"))
  })

  it("becomes Empty when the last member leaves, keeping committed offsets", async () => {
    const a = await joinNew(coordinator)
    await a.joined
    await coordinator.sync(GROUP, 1, a.memberId, new Map())
    coordinator.commit(GROUP, "t", 0, { offset: 42n, metadata: null })
    expect(coordinator.leave(GROUP, [a.memberId])).toEqual([ErrorCode.NONE])
    expect(coordinator.describe(GROUP)?.state).toBe("Empty")
    expect(coordinator.committed(GROUP, "t", 0)?.offset).toBe(42n)
    // With nobody managing the group, simple commits (generation -1) are allowed again.
    expect(coordinator.checkCommit(GROUP, -1, "")).toBe(ErrorCode.NONE)
  })

  it("waits the initial rebalance delay so members starting together share the first generation", async () => {
    coordinator.close()
    coordinator = new GroupCoordinator({ initialRebalanceDelayMs: 300 })
    const a = await joinNew(coordinator)
    await vi.advanceTimersByTimeAsync(200)
    const b = await joinNew(coordinator)
    let settled = false
    void Promise.all([a.joined, b.joined]).then(() => {
      settled = true
    })
    await vi.advanceTimersByTimeAsync(250) // 450 ms: past the first delay, not past the extended one
    expect(settled).toBe(false)
    await vi.advanceTimersByTimeAsync(60)
    const [first, second] = await Promise.all([a.joined, b.joined])
    expect(first.generationId).toBe(1)
    expect(second.generationId).toBe(1)
  })

  it("gives JoinGroup below v4 a member id at once", async () => {
    const result = await coordinator.join(request("", { requireKnownMemberId: false }))
    expect(result).toMatchObject({ errorCode: 0, generationId: 1 })
    expect(result.memberId).toMatch(/^client-/)
  })
})

describe("session expiry with kafkajs", () => {
  it("removes a member that stops heartbeating and hands its partitions to the live one", async () => {
    const emulator = await start()
    const kafka = kafkaFor(emulator)
    const topic = unique("expiry")
    const groupId = unique("group")
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] })
    await admin.disconnect()
    const consumer = kafka.consumer({ groupId, sessionTimeout: 3000, heartbeatInterval: 100, maxWaitTimeInMs: 100 })
    const raw = await rawClient(emulator)
    try {
      let assigned: ReadonlyArray<number> = []
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        assigned = e.payload.memberAssignment[topic] ?? []
      })
      await consumer.connect()
      await consumer.subscribe({ topic })
      await consumer.run({ eachMessage: async () => undefined })
      await waitFor(() => assigned.length === 4, 10_000, "the first member to own every partition")

      // A second member joins through the protocol, takes its share, then goes silent.
      const metadata = new Writer()
        .int16(0)
        .array([topic], (w, t) => w.string(t))
        .bytes(Buffer.alloc(0))
        .toBuffer()
      const join = (memberId: string) =>
        raw.request(ApiKey.JoinGroup, 5, (w) =>
          w
            .string(groupId)
            .int32(600)
            .int32(3000)
            .string(memberId)
            .nullableString(null)
            .string("consumer")
            .array(["RoundRobinAssigner"], (w, name) => w.string(name).bytes(metadata))
        )
      const first = await join("")
      first.int32()
      expect(first.int16()).toBe(ErrorCode.MEMBER_ID_REQUIRED)
      first.int32()
      first.string()
      first.string()
      const memberId = first.string()
      const second = await join(memberId)
      second.int32()
      expect(second.int16()).toBe(ErrorCode.NONE)
      const generation = second.int32()
      const sync = await raw.request(ApiKey.SyncGroup, 3, (w) =>
        w.string(groupId).int32(generation).string(memberId).nullableString(null).int32(0)
      )
      sync.int32()
      expect(sync.int16()).toBe(ErrorCode.NONE)
      await waitFor(() => assigned.length === 2, 10_000, "the partitions to be split")

      // No heartbeats from the raw member: after its 600 ms session it is gone.
      await waitFor(() => assigned.length === 4, 10_000, "the live member to own every partition again")
      const description = await (async () => {
        const a = kafka.admin()
        await a.connect()
        const d = await a.describeGroups([groupId])
        await a.disconnect()
        return d
      })()
      expect(description.groups[0]!.members).toHaveLength(1)
      expect(description.groups[0]!.state).toBe("Stable")
    } finally {
      raw.close()
      await consumer.disconnect()
      await emulator.close()
    }
  })
})

describe("initial rebalance delay with kafkajs", () => {
  it("completes each new group's first join once the delay has passed", async () => {
    const emulator = await start({ groupInitialRebalanceDelayMs: 300 })
    const kafka = kafkaFor(emulator)
    const topic = unique("delay")
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    await admin.disconnect()
    try {
      // Repeated, because a timer firing a moment before the wall clock reached its deadline once
      // left the join waiting for the rebalance timeout.
      for (let i = 0; i < 6; i++) {
        const consumer = kafka.consumer({ groupId: unique("group"), heartbeatInterval: 100, maxWaitTimeInMs: 100 })
        let joinedAfter: number | undefined
        const started = Date.now()
        consumer.on(consumer.events.GROUP_JOIN, () => {
          joinedAfter = Date.now() - started
        })
        await consumer.connect()
        await consumer.subscribe({ topic })
        await consumer.run({ eachMessage: async () => undefined })
        await waitFor(() => joinedAfter !== undefined, 5_000, "the first join")
        expect(joinedAfter).toBeGreaterThanOrEqual(290)
        await consumer.disconnect()
      }
    } finally {
      await emulator.close()
    }
  })
})
