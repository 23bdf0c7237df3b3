/** 32-bit FNV-1a of a string: a cheap, stable spread of keys over lanes and partitions. */
export const fnv1a = (text: string): number => {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 16777619)
  }
  return h >>> 0
}
