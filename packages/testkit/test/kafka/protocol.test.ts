/**
 * The wire-format building blocks: primitive encodings round-trip, record batches round-trip with
 * a valid CRC-32C, and the checksum matches published test vectors.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { crc32c } from "../../src/kafka/protocol/Crc32c.ts"
import { Reader } from "../../src/kafka/protocol/Reader.ts"
import {
  decodeBatch,
  encodeBatch,
  hasValidCrc,
  readBatchHeader,
  splitBatches
} from "../../src/kafka/protocol/RecordBatch.ts"
import { Writer } from "../../src/kafka/protocol/Writer.ts"

const roundTrip =
  <A>(write: (w: Writer, a: A) => unknown, read: (r: Reader) => A) =>
  (value: A) => {
    const w = new Writer(1)
    write(w, value)
    const r = new Reader(w.toBuffer())
    expect(read(r)).toEqual(value)
    expect(r.remaining).toBe(0)
  }

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const bytes = fc.uint8Array({ maxLength: 64 }).map((a): Buffer => Buffer.from(a))
const nullableBytes: fc.Arbitrary<Buffer | null> = fc.option(bytes, { nil: null })

describe("primitive encodings", () => {
  it("round-trips fixed-width integers", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -128, max: 127 }),
        roundTrip(
          (w, v) => w.int8(v),
          (r) => r.int8()
        )
      )
    )
    fc.assert(
      fc.property(
        fc.integer({ min: -32768, max: 32767 }),
        roundTrip(
          (w, v) => w.int16(v),
          (r) => r.int16()
        )
      )
    )
    fc.assert(
      fc.property(
        fc.integer(),
        roundTrip(
          (w, v) => w.int32(v),
          (r) => r.int32()
        )
      )
    )
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        roundTrip(
          (w, v) => w.uint32(v),
          (r) => r.uint32()
        )
      )
    )
    fc.assert(
      fc.property(
        fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
        roundTrip(
          (w, v) => w.int64(v),
          (r) => r.int64()
        )
      )
    )
    fc.assert(
      fc.property(
        fc.boolean(),
        roundTrip(
          (w, v) => w.boolean(v),
          (r) => r.boolean()
        )
      )
    )
  })

  it("round-trips zigzag varints and varlongs", () => {
    fc.assert(
      fc.property(
        fc.integer(),
        roundTrip(
          (w, v) => w.varint(v),
          (r) => r.varint()
        )
      )
    )
    fc.assert(
      fc.property(
        fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
        roundTrip(
          (w, v) => w.varlong(v),
          (r) => r.varlong()
        )
      )
    )
  })

  it("encodes zigzag varints as the protocol guide specifies", () => {
    const encode = (f: (w: Writer) => unknown) => {
      const w = new Writer()
      f(w)
      return [...w.toBuffer()]
    }
    expect(encode((w) => w.varint(0))).toEqual([0x00])
    expect(encode((w) => w.varint(-1))).toEqual([0x01])
    expect(encode((w) => w.varint(1))).toEqual([0x02])
    expect(encode((w) => w.varint(-64))).toEqual([0x7f])
    expect(encode((w) => w.varint(64))).toEqual([0x80, 0x01])
    expect(encode((w) => w.varint(2147483647))).toEqual([0xfe, 0xff, 0xff, 0xff, 0x0f])
    expect(encode((w) => w.varlong(-(2n ** 63n)))).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
  })

  it("round-trips strings, bytes and arrays, including null", () => {
    fc.assert(
      fc.property(
        fc.string(),
        roundTrip(
          (w, v) => w.string(v),
          (r) => r.string()
        )
      )
    )
    fc.assert(
      fc.property(
        fc.option(fc.string({ unit: "grapheme" }), { nil: null }),
        roundTrip(
          (w, v) => w.nullableString(v),
          (r) => r.nullableString()
        )
      )
    )
    fc.assert(
      fc.property(
        nullableBytes,
        roundTrip(
          (w, v) => w.nullableBytes(v),
          (r) => r.nullableBytes()
        )
      )
    )
    fc.assert(
      fc.property(
        nullableBytes,
        roundTrip(
          (w, v) => w.varintBytes(v),
          (r) => r.varintBytes()
        )
      )
    )
    fc.assert(
      fc.property(
        fc.option(fc.array(fc.tuple(fc.string(), fc.integer())), { nil: null }),
        roundTrip(
          (w, v) => w.nullableArray(v, (w, [s, n]) => w.string(s).int32(n)),
          (r) => r.nullableArray((r) => [r.string(), r.int32()] as [string, number])
        )
      )
    )
  })

  it("keeps large blocks as chunks and still produces the same bytes", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 9000 }), { maxLength: 5 }), (blocks) => {
        const w = new Writer(1)
        for (const block of blocks) w.int16(7).bytes(block)
        const r = new Reader(w.toBuffer())
        expect(w.length).toBe(blocks.reduce((n, b) => n + 6 + b.length, 0))
        for (const block of blocks) {
          expect(r.int16()).toBe(7)
          expect(r.bytes()).toEqual(Buffer.from(block))
        }
      }),
      { numRuns: 30 }
    )
  })

  it("rejects reads past the end of a request", () => {
    expect(() => new Reader(Buffer.from([0, 5, 0x61])).string()).toThrow()
    expect(() => new Reader(Buffer.from([0x7f, 0xff, 0xff, 0xff])).array((r) => r.int8())).toThrow()
  })
})

describe("CRC-32C", () => {
  it("matches known vectors", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283)
    expect(crc32c(Buffer.alloc(0))).toBe(0)
    // RFC 3720, appendix B.4
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa)
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43)
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e)
  })

  it("agrees with a bytewise reference on any input and range", () => {
    const reference = (data: Uint8Array): number => {
      let crc = 0xffffffff
      for (const byte of data) {
        crc ^= byte
        for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1
      }
      return (crc ^ 0xffffffff) >>> 0
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(20), fc.nat(20), (data, a, b) => {
        const start = Math.min(a, data.length)
        const end = Math.max(start, data.length - b)
        expect(crc32c(data, start, end)).toBe(reference(data.subarray(start, end)))
      })
    )
  })
})

const record = fc.record({
  timestampDelta: fc.bigInt({ min: 0n, max: 2n ** 40n }),
  key: nullableBytes,
  value: nullableBytes,
  headers: fc.array(fc.record({ key: fc.string(), value: nullableBytes }), { maxLength: 3 })
})

describe("record batch", () => {
  it("round-trips records with keys, null values, headers and timestamp deltas", () => {
    fc.assert(
      fc.property(
        fc.array(record, { minLength: 1, maxLength: 8 }),
        fc.constantFrom<0 | 1>(0, 1),
        fc.bigInt({ min: 0n, max: 2n ** 45n }),
        fc.bigInt({ min: -1n, max: 2n ** 40n }),
        fc.integer({ min: -1, max: 32767 }),
        fc.integer({ min: -1, max: 2 ** 31 - 1 }),
        (records, compression, baseTimestamp, producerId, producerEpoch, baseSequence) => {
          const batch = encodeBatch({ records, compression, baseTimestamp, producerId, producerEpoch, baseSequence })
          expect(hasValidCrc(batch)).toBe(true)
          expect(splitBatches(batch)).toEqual([batch])
          const decoded = decodeBatch(batch)
          expect(decoded).toMatchObject({
            magic: 2,
            compression,
            lastOffsetDelta: records.length - 1,
            baseTimestamp,
            producerId,
            producerEpoch,
            baseSequence,
            recordCount: records.length
          })
          expect(decoded.records).toEqual(records.map((r, i) => ({ ...r, offsetDelta: i })))
        }
      ),
      { numRuns: 100 }
    )
  })

  it("detects any single flipped bit after the CRC field, but not in the base offset", () => {
    const batch = encodeBatch({ records: [{ timestampDelta: 0n, key: null, value: Buffer.from("v"), headers: [] }] })
    fc.assert(
      fc.property(fc.integer({ min: 21, max: batch.length - 1 }), fc.integer({ min: 0, max: 7 }), (at, bit) => {
        const corrupt = Buffer.from(batch)
        corrupt[at]! ^= 1 << bit
        expect(hasValidCrc(corrupt)).toBe(false)
      })
    )
    const moved = Buffer.from(batch)
    moved.writeBigInt64BE(12345n, 0)
    expect(hasValidCrc(moved)).toBe(true)
    expect(readBatchHeader(moved).baseOffset).toBe(12345n)
  })

  it("splits a record set into its batches and refuses a truncated one", () => {
    const one = encodeBatch({ records: [{ timestampDelta: 0n, key: null, value: Buffer.from("a"), headers: [] }] })
    const two = encodeBatch({ records: [{ timestampDelta: 1n, key: Buffer.from("k"), value: null, headers: [] }] })
    expect(splitBatches(Buffer.concat([one, two]))).toEqual([one, two])
    expect(splitBatches(Buffer.concat([one, two.subarray(0, two.length - 1)]))).toBeUndefined()
  })
})
