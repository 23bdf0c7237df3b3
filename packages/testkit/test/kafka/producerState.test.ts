/**
 * Idempotent sequence bookkeeping on its own: wrap-around at 2^31-1 and the five-batch window.
 */
import { describe, expect, it } from "vitest"
import { ProducerState, RECENT_BATCHES } from "../../src/kafka/ProducerState.ts"
import { ErrorCode } from "../../src/kafka/protocol/ErrorCode.ts"

const INT32_MAX = 2 ** 31 - 1

describe("producer state", () => {
  it("continues a sequence across the wrap from 2^31-1 to 0", () => {
    const state = new ProducerState()
    const pid = BigInt(state.allocate().producerId)
    // A producer state carried over from an earlier epoch would start anywhere; a new epoch starts at 0,
    // so reach the top by recording directly.
    state.record(pid, 0, "t", 0, INT32_MAX - 4, 2, 0)
    expect(state.check(pid, 0, "t", 0, INT32_MAX - 1, 2)).toEqual({ _tag: "Append" })
    state.record(pid, 0, "t", 0, INT32_MAX - 1, 2, 3) // covers INT32_MAX-1, INT32_MAX, 0
    expect(state.check(pid, 0, "t", 0, 1, 0)).toEqual({ _tag: "Append" })
    expect(state.check(pid, 0, "t", 0, INT32_MAX - 1, 2)).toEqual({ _tag: "Duplicate", baseOffset: 3 })
    expect(state.check(pid, 0, "t", 0, 2, 0)).toEqual({
      _tag: "Reject",
      errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    })
  })

  it("keeps sequences per partition and per topic apart, and forgets deleted topics", () => {
    const state = new ProducerState()
    const pid = BigInt(state.allocate().producerId)
    state.record(pid, 0, "t", 0, 0, 0, 0)
    expect(state.check(pid, 0, "t", 1, 0, 0)).toEqual({ _tag: "Append" })
    expect(state.check(pid, 0, "u", 0, 0, 0)).toEqual({ _tag: "Append" })
    expect(state.check(pid, 0, "t", 0, 0, 0)).toEqual({ _tag: "Duplicate", baseOffset: 0 })
    state.forgetTopic("t")
    expect(state.check(pid, 0, "t", 0, 0, 0)).toEqual({ _tag: "Append" })
  })

  it(`remembers exactly the last ${RECENT_BATCHES} batches`, () => {
    const state = new ProducerState()
    const pid = BigInt(state.allocate().producerId)
    for (let seq = 0; seq < 8; seq++) state.record(pid, 0, "t", 0, seq, 0, seq * 10)
    for (let seq = 8 - RECENT_BATCHES; seq < 8; seq++) {
      expect(state.check(pid, 0, "t", 0, seq, 0)).toEqual({ _tag: "Duplicate", baseOffset: seq * 10 })
    }
    expect(state.check(pid, 0, "t", 0, 8 - RECENT_BATCHES - 1, 0)._tag).toBe("Reject")
    expect(state.allocate().producerId).not.toBe(Number(pid))
  })
})
