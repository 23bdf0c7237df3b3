/**
 * Sequential decoder for the Kafka wire format (big-endian fixed-width integers, zigzag varints,
 * int16/int32 length-prefixed strings, bytes and arrays, where a length of -1 means null).
 *
 * @since 0.1.0
 */

/** Thrown when a request is shorter than its declared fields; the server answers by closing the connection. */
export class ProtocolDecodeError extends Error {
  override readonly name = "ProtocolDecodeError"
}

export class Reader {
  readonly buffer: Buffer
  offset: number

  constructor(buffer: Buffer, offset = 0) {
    this.buffer = buffer
    this.offset = offset
  }

  get remaining(): number {
    return this.buffer.length - this.offset
  }

  private need(bytes: number): number {
    const at = this.offset
    if (at + bytes > this.buffer.length) throw new ProtocolDecodeError(`need ${bytes} bytes at ${at}`)
    this.offset = at + bytes
    return at
  }

  int8(): number {
    return this.buffer.readInt8(this.need(1))
  }

  boolean(): boolean {
    return this.int8() !== 0
  }

  int16(): number {
    return this.buffer.readInt16BE(this.need(2))
  }

  int32(): number {
    return this.buffer.readInt32BE(this.need(4))
  }

  uint32(): number {
    return this.buffer.readUInt32BE(this.need(4))
  }

  int64(): bigint {
    return this.buffer.readBigInt64BE(this.need(8))
  }

  /** An int64 that the caller knows fits a double exactly (offsets, timestamps, producer ids). */
  int64Number(): number {
    return Number(this.int64())
  }

  /** Unsigned LEB128 varint of at most 32 bits. */
  uvarint(): number {
    let result = 0
    let shift = 0
    for (;;) {
      const byte = this.buffer[this.need(1)]!
      if (shift === 28 && byte > 0x0f) throw new ProtocolDecodeError("varint longer than 32 bits")
      result |= (byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return result >>> 0
      shift += 7
    }
  }

  /** Zigzag-encoded signed 32-bit varint. */
  varint(): number {
    const raw = this.uvarint()
    return (raw >>> 1) ^ -(raw & 1)
  }

  /** Zigzag-encoded signed 64-bit varint. */
  varlong(): bigint {
    let result = 0n
    let shift = 0n
    for (;;) {
      const byte = this.buffer[this.need(1)]!
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) break
      shift += 7n
      if (shift > 63n) throw new ProtocolDecodeError("varlong longer than 64 bits")
    }
    return (result >> 1n) ^ -(result & 1n)
  }

  nullableString(): string | null {
    const length = this.int16()
    if (length < 0) return null
    const at = this.need(length)
    return this.buffer.toString("utf8", at, at + length)
  }

  string(): string {
    const value = this.nullableString()
    if (value === null) throw new ProtocolDecodeError("null where a string is required")
    return value
  }

  /** Bytes as a view into the request buffer (no copy). */
  nullableBytes(): Buffer | null {
    const length = this.int32()
    if (length < 0) return null
    const at = this.need(length)
    return this.buffer.subarray(at, at + length)
  }

  bytes(): Buffer {
    return this.nullableBytes() ?? Buffer.alloc(0)
  }

  /** Raw bytes with a varint length prefix, as in record keys, values and headers (-1 means null). */
  varintBytes(): Buffer | null {
    const length = this.varint()
    if (length < 0) return null
    const at = this.need(length)
    return this.buffer.subarray(at, at + length)
  }

  raw(length: number): Buffer {
    const at = this.need(length)
    return this.buffer.subarray(at, at + length)
  }

  nullableArray<A>(item: (reader: Reader) => A): Array<A> | null {
    const length = this.int32()
    if (length < 0) return null
    if (length > this.remaining) throw new ProtocolDecodeError(`array of ${length} items exceeds the request`)
    const out = new Array<A>(length)
    for (let i = 0; i < length; i++) out[i] = item(this)
    return out
  }

  array<A>(item: (reader: Reader) => A): Array<A> {
    return this.nullableArray(item) ?? []
  }
}
