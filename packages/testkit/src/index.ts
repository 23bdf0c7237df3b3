/**
 * @lossless/testkit: the conformance suite every transport runs, and the
 * helpers for tests that count.
 *
 * @since 0.1.0
 */

/** The shared conformance suite for transports. */
export * as Conformance from "./Conformance.ts"
/** The shared suite every dedupe store runs. */
export * as DedupeStoreSuite from "./DedupeStoreSuite.ts"
/** A transport wrapper that fails, stalls and duplicates on command. */
export * as Faulty from "./Faulty.ts"
/** Unique names, envelopes, subscriptions and counting assertions. */
export * as Harness from "./Harness.ts"
/** The shared suite every outbox store runs. */
export * as OutboxStoreSuite from "./OutboxStoreSuite.ts"
/** Reachability checks for the services real-broker suites need. */
export * as Services from "./Services.ts"
