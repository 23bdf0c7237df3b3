/**
 * @lossless/redis: a Redis dedupe store for the Lossless consumer runtime, so
 * every consumer process of a group suppresses the same duplicates.
 *
 * @since 0.1.0
 */

/** The ioredis client as a scoped service, with fail-fast defaults. */
export * as RedisClient from "./RedisClient.ts"
/** The dedupe store: atomic, owner-checked claims in Redis. */
export * as RedisDedupeStore from "./RedisDedupeStore.ts"
