/**
 * Encoder for the Kafka wire format. Large byte blocks (stored record batches) are kept as separate
 * chunks instead of being copied, so a Fetch response is written to the socket with the stored
 * buffers as they are.
 *
 * @since 0.1.0
 */

/** Blocks at least this large are referenced, not copied. */
const CHUNK_THRESHOLD = 4096

export class Writer {
  private readonly chunks: Array<Buffer> = []
  private current: Buffer
  private position = 0
  private flushed = 0

  constructor(initialCapacity = 256) {
    this.current = Buffer.allocUnsafe(initialCapacity)
  }

  /** Total number of bytes written so far. */
  get length(): number {
    return this.flushed + this.position
  }

  private ensure(bytes: number): void {
    if (this.position + bytes <= this.current.length) return
    const next = Buffer.allocUnsafe(Math.max(this.current.length * 2, this.position + bytes))
    this.current.copy(next, 0, 0, this.position)
    this.current = next
  }

  int8(value: number): this {
    this.ensure(1)
    this.current.writeInt8(value, this.position)
    this.position += 1
    return this
  }

  boolean(value: boolean): this {
    return this.int8(value ? 1 : 0)
  }

  int16(value: number): this {
    this.ensure(2)
    this.current.writeInt16BE(value, this.position)
    this.position += 2
    return this
  }

  int32(value: number): this {
    this.ensure(4)
    this.current.writeInt32BE(value, this.position)
    this.position += 4
    return this
  }

  uint32(value: number): this {
    this.ensure(4)
    this.current.writeUInt32BE(value >>> 0, this.position)
    this.position += 4
    return this
  }

  int64(value: bigint | number): this {
    this.ensure(8)
    this.current.writeBigInt64BE(typeof value === "bigint" ? value : BigInt(value), this.position)
    this.position += 8
    return this
  }

  uvarint(value: number): this {
    let v = value >>> 0
    this.ensure(5)
    while (v >= 0x80) {
      this.current[this.position++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    this.current[this.position++] = v
    return this
  }

  /** Zigzag-encoded signed 32-bit varint. */
  varint(value: number): this {
    return this.uvarint((value << 1) ^ (value >> 31))
  }

  /** Zigzag-encoded signed 64-bit varint. */
  varlong(value: bigint | number): this {
    const v = BigInt.asIntN(64, typeof value === "bigint" ? value : BigInt(value))
    let zigzag = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n))
    this.ensure(10)
    while (zigzag >= 0x80n) {
      this.current[this.position++] = Number(zigzag & 0x7fn) | 0x80
      zigzag >>= 7n
    }
    this.current[this.position++] = Number(zigzag)
    return this
  }

  nullableString(value: string | null): this {
    if (value === null) return this.int16(-1)
    const length = Buffer.byteLength(value, "utf8")
    this.int16(length)
    this.ensure(length)
    this.current.write(value, this.position, length, "utf8")
    this.position += length
    return this
  }

  string(value: string): this {
    return this.nullableString(value)
  }

  raw(bytes: Uint8Array): this {
    if (bytes.length >= CHUNK_THRESHOLD) {
      this.flush()
      this.chunks.push(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length))
      this.flushed += bytes.length
      return this
    }
    this.ensure(bytes.length)
    this.current.set(bytes, this.position)
    this.position += bytes.length
    return this
  }

  nullableBytes(bytes: Uint8Array | null): this {
    if (bytes === null) return this.int32(-1)
    return this.int32(bytes.length).raw(bytes)
  }

  bytes(bytes: Uint8Array): this {
    return this.nullableBytes(bytes)
  }

  /** Raw bytes with a varint length prefix (-1 for null), as in records. */
  varintBytes(bytes: Uint8Array | null): this {
    if (bytes === null) return this.varint(-1)
    return this.varint(bytes.length).raw(bytes)
  }

  array<A>(items: ReadonlyArray<A>, item: (writer: this, value: A) => unknown): this {
    this.int32(items.length)
    for (const value of items) item(this, value)
    return this
  }

  nullableArray<A>(items: ReadonlyArray<A> | null, item: (writer: this, value: A) => unknown): this {
    if (items === null) return this.int32(-1)
    return this.array(items, item)
  }

  private flush(): void {
    if (this.position === 0) return
    this.chunks.push(this.current.subarray(0, this.position))
    this.flushed += this.position
    this.current = Buffer.allocUnsafe(Math.max(256, this.current.length - this.position))
    this.position = 0
  }

  /** The written bytes as a list of buffers (no copy of referenced blocks). */
  toChunks(): Array<Buffer> {
    this.flush()
    return this.chunks
  }

  /** The written bytes as one buffer. */
  toBuffer(): Buffer {
    const chunks = this.toChunks()
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.flushed)
  }
}
