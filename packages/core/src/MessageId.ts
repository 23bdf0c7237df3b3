/**
 * Message ids: UUIDv7 (RFC 9562), time-ordered and unique per process.
 *
 * The id is assigned once, when a message is made, and never changes across
 * retries, outbox re-sends and redeliveries, so it can serve as the dedupe key.
 * Within one millisecond a 12-bit counter keeps ids strictly increasing; when
 * it overflows, the timestamp field is advanced instead of repeating.
 *
 * @since 0.1.0
 */
import { Clock, Effect } from "effect"

let lastMillis = -1
let counter = 0

// Char codes of each byte's two hex digits.
const digits = "0123456789abcdef"
const highDigit = Uint8Array.from({ length: 256 }, (_, i) => digits.charCodeAt(i >> 4))
const lowDigit = Uint8Array.from({ length: 256 }, (_, i) => digits.charCodeAt(i & 0x0f))

// Random bits for 256 ids, refilled when used up: one `getRandomValues` call per id
// cost more than everything else in making it (ids are not secrets; Node's
// `randomUUID` pools the same way).
const pool = new Uint8Array(8 * 256)
let pooled = pool.length

// The id's 36 char codes, dashes in place, rewritten for each id: one flat string is made from
// them at once, where joining 16 pieces made a rope of them (about 0.6 KB per id) to flatten later.
const chars: Array<number> = Array.from({ length: 36 }, () => 0x2d)
const put = (at: number, byte: number): void => {
  chars[at] = highDigit[byte] as number
  chars[at + 1] = lowDigit[byte] as number
}

/** Makes a UUIDv7 for the given time (epoch milliseconds). */
export const fromMillis = (now: number): string => {
  let millis = Math.max(Math.floor(now), 0)
  if (millis > lastMillis) {
    lastMillis = millis
    counter = 0
  } else {
    millis = lastMillis
    counter++
    if (counter > 0xfff) {
      lastMillis = ++millis
      counter = 0
    }
  }
  if (pooled === pool.length) {
    crypto.getRandomValues(pool)
    pooled = 0
  }
  const r = pooled
  pooled += 8
  // 48-bit big-endian timestamp; division keeps it exact beyond 32 bits.
  const high = Math.floor(millis / 0x10000)
  put(0, (high >>> 24) & 0xff)
  put(2, (high >>> 16) & 0xff)
  put(4, (high >>> 8) & 0xff)
  put(6, high & 0xff)
  put(9, (millis >>> 8) & 0xff)
  put(11, millis & 0xff)
  // Version 7, then the 12-bit counter.
  put(14, 0x70 | ((counter >>> 8) & 0x0f))
  put(16, counter & 0xff)
  // Variant 10, then 62 random bits.
  put(19, 0x80 | ((pool[r] as number) & 0x3f))
  put(21, pool[r + 1] as number)
  for (let i = 2; i < 8; i++) put(20 + 2 * i, pool[r + i] as number)
  return String.fromCharCode.apply(null, chars)
}

/** Makes a new message id from the Effect clock (so `TestClock` controls its timestamp). */
export const make: Effect.Effect<string> = Effect.map(Clock.currentTimeMillis, fromMillis)

/** The creation time encoded in a UUIDv7, epoch milliseconds (its first 48 bits). */
export const timestampOf = (id: string): number =>
  Number.parseInt(id.slice(0, 8), 16) * 0x10000 + Number.parseInt(id.slice(9, 13), 16)

/** The value of each ASCII char code as a hexadecimal digit, -1 for the others. */
const hexValues = Int8Array.from({ length: 128 }, (_, c) =>
  c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1
)

/** The hexadecimal value of the character at `i`, or -1 (beyond ASCII too). */
const hexAt = (id: string, i: number): number => hexValues[id.charCodeAt(i)] ?? -1

/**
 * The milliseconds a UUIDv7 carries, or `undefined` when `id` is not shaped
 * like one. It runs for every message sent and received: the fixed characters
 * are checked first, then the digits by table, without a branch per position.
 */
export const timeOfUuidV7 = (id: string): number | undefined => {
  if (
    id.length !== 36 ||
    id.charCodeAt(8) !== 45 /* "-" */ ||
    id.charCodeAt(13) !== 45 ||
    id.charCodeAt(14) !== 55 /* "7" */ ||
    id.charCodeAt(18) !== 45 ||
    id.charCodeAt(23) !== 45
  ) {
    return undefined
  }
  // Variant 10: "8", "9", "a" or "b" (either case).
  const variant = hexAt(id, 19)
  if (variant < 8 || variant > 11) return undefined
  // The first 48 bits (twelve digits around the first dash) are the time.
  let high = 0
  for (let i = 0; i < 8; i++) {
    const digit = hexAt(id, i)
    if (digit < 0) return undefined
    high = high * 16 + digit
  }
  let low = 0
  for (let i = 9; i < 13; i++) {
    const digit = hexAt(id, i)
    if (digit < 0) return undefined
    low = low * 16 + digit
  }
  // The other digits only have to be digits: any -1 makes the OR negative.
  let rest = 0
  for (let i = 15; i < 18; i++) rest |= hexAt(id, i)
  for (let i = 20; i < 23; i++) rest |= hexAt(id, i)
  for (let i = 24; i < 36; i++) rest |= hexAt(id, i)
  return rest < 0 ? undefined : high * 0x10000 + low
}

/** Whether `id` has the shape of a UUIDv7. User-supplied ids may have any non-empty form. */
export const isUuidV7 = (id: string): boolean => timeOfUuidV7(id) !== undefined
