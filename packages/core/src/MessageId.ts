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

const hex: ReadonlyArray<string> = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))

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
  const bytes = new Uint8Array(16)
  crypto.getRandomValues(bytes.subarray(8))
  // 48-bit big-endian timestamp; division keeps it exact beyond 32 bits.
  const high = Math.floor(millis / 0x10000)
  bytes[0] = (high >>> 24) & 0xff
  bytes[1] = (high >>> 16) & 0xff
  bytes[2] = (high >>> 8) & 0xff
  bytes[3] = high & 0xff
  bytes[4] = (millis >>> 8) & 0xff
  bytes[5] = millis & 0xff
  bytes[6] = 0x70 | ((counter >>> 8) & 0x0f)
  bytes[7] = counter & 0xff
  bytes[8] = 0x80 | ((bytes[8] as number) & 0x3f)
  let out = ""
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) out += "-"
    out += hex[bytes[i] as number]
  }
  return out
}

/** Makes a new message id from the Effect clock (so `TestClock` controls its timestamp). */
export const make: Effect.Effect<string> = Effect.map(Clock.currentTimeMillis, fromMillis)

/** The creation time encoded in a UUIDv7, epoch milliseconds. */
export const timestampOf = (id: string): number => Number.parseInt(id.replaceAll("-", "").slice(0, 12), 16)

const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i

/** Whether `id` has the shape of a UUIDv7. User-supplied ids may have any non-empty form. */
export const isUuidV7 = (id: string): boolean => uuidV7.test(id)
