/**
 * @lossless/memory: the in-process broker, embedded default and reference
 * implementation of the Lossless transport contract.
 *
 * @since 0.1.0
 */

/** The broker state: topics, groups, queues, dead letters. */
export * as MemoryBroker from "./MemoryBroker.ts"
/** The transport, its layer and its `memory://` URL plugin. */
export * as MemoryTransport from "./MemoryTransport.ts"
