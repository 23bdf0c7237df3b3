/**
 * What the chaos test and its consumer processes agree on: the message
 * schema, the settings a consumer process is started with, and the status
 * lines it reports on stdout.
 */
import { Topic } from "@lossless/core"
import { Schema } from "effect"

/** The payload of every message: its place in the send order. */
export const Job = Schema.Struct({ n: Schema.Int })

/** The run's topic. */
export const jobTopic = (name: string) => Topic.make(name, Job)

/** Everything a consumer process needs, passed as JSON in its first argument. */
export interface ConsumerSettings {
  readonly rabbitUrl: string
  readonly postgresUrl: string
  readonly redisUrl: string
  readonly topic: string
  /** Deduped by the SQL inbox: effect row and inbox key in one transaction. */
  readonly inboxGroup: string
  /** Deduped by Redis claims: the effect row is written before the claim is completed. */
  readonly claimsGroup: string
  readonly inboxTable: string
  /** One row per handler run, written by the handlers of both groups. */
  readonly effectsTable: string
  readonly redisPrefix: string
  /** How long a crashed process's Redis claim blocks the message. */
  readonly claimLeaseMillis: number
  /** How long each handler takes after writing its effect. */
  readonly handlerMillis: number
  readonly concurrency: number
}

/** What a consumer process reports, several times a second. */
export interface Status {
  readonly event: "ready" | "status"
  /** Handlers running right now, over both groups. */
  readonly inflight: number
  /** Handler runs that succeeded, per group. */
  readonly handled: { readonly inbox: number; readonly claims: number }
  /** Deliveries whose key was already recorded: the inbox answered "handled before", Redis "Done" or "Busy". */
  readonly suppressed: { readonly inbox: number; readonly claimsDone: number; readonly claimsBusy: number }
  /** Handler runs on deliveries the broker flagged as redelivered, over both groups. */
  readonly redelivered: number
}

/** Prefix of a status line; every other line a consumer process prints is a log line. */
export const statusMarker = "@chaos "

export const idleStatus: Status = {
  event: "status",
  inflight: 0,
  handled: { inbox: 0, claims: 0 },
  suppressed: { inbox: 0, claimsDone: 0, claimsBusy: 0 },
  redelivered: 0
}
