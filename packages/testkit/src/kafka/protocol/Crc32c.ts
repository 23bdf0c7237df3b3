/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum a record batch of magic 2
 * carries over everything from its attributes field to its end.
 *
 * @since 0.1.0
 */

const POLYNOMIAL = 0x82f63b78

/** Eight 256-entry tables ("slicing by 8") so the hot path consumes eight bytes per step. */
const TABLES: ReadonlyArray<Uint32Array> = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256))
  const first = tables[0]!
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1
    first[n] = c >>> 0
  }
  for (let n = 0; n < 256; n++) {
    let c = first[n]!
    for (let t = 1; t < 8; t++) {
      c = (first[c & 0xff]! ^ (c >>> 8)) >>> 0
      tables[t]![n] = c
    }
  }
  return tables
})()

/** Computes the CRC-32C of `bytes[start, end)` as an unsigned 32-bit integer. */
export const crc32c = (bytes: Uint8Array, start = 0, end = bytes.length): number => {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array
  ]
  let crc = 0xffffffff
  let i = start
  const fast = end - ((end - start) & 7)
  while (i < fast) {
    const lo = (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0
    crc =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[bytes[i + 4]!]! ^
      t2[bytes[i + 5]!]! ^
      t1[bytes[i + 6]!]! ^
      t0[bytes[i + 7]!]!
    i += 8
  }
  while (i < end) {
    crc = t0[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8)
    i++
  }
  return (crc ^ 0xffffffff) >>> 0
}
