/**
 * Consumer groups in clustering mode, consumed the RocketMQ 5 way (POP):
 * every group receives every message of a topic once, independently of the
 * other groups, and consumers of one group share its messages.
 *
 * A received message stays invisible to the group for the requested duration
 * under a fresh receipt handle. Acknowledging the handle ends it; changing its
 * invisible duration replaces the handle (the old one becomes stale); letting
 * it expire makes the message visible again, and the next delivery counts one
 * more attempt. A message whose delivery attempts reached the maximum goes to
 * the group's dead-letter topic `%DLQ%<group>` instead of coming back.
 *
 * Messages that carry a message group are delivered in order, one at a time
 * per message group: the next one only after the previous was acknowledged or
 * dead-lettered.
 *
 * @since 0.1.0
 */
import type { Scheduler } from "./Scheduler.ts"
import type { StoredMessage, Topic, Topics } from "./Topics.ts"

/** The dead-letter topic of a consumer group. */
export const deadLetterTopic = (group: string): string => `%DLQ%${group}`

/** How a receive request wants its messages held. */
export interface ReceiveOptions {
  readonly invisibleMs: number
  /** Keep the messages invisible while the receiving client is alive (push consumers). */
  readonly autoRenew: boolean
  readonly clientId: string | undefined
}

/** Chooses which messages a receive request accepts (tag filters). */
export type Filter = (message: StoredMessage) => boolean

/** One message of one group between its first delivery and its acknowledgement. */
export class Delivery {
  readonly message: StoredMessage
  readonly lane: Lane | undefined
  attempts = 0
  handle: string | undefined = undefined
  invisibleUntil = 0
  autoRenew = false
  owner: string | undefined = undefined
  state: "ready" | "inflight" | "done" = "ready"

  constructor(message: StoredMessage, lane: Lane | undefined) {
    this.message = message
    this.lane = lane
  }
}

/** The messages of one message group, released one at a time. */
interface Lane {
  readonly key: string
  current: Delivery | undefined
  readonly waiting: Array<StoredMessage>
}

interface Waiter {
  readonly max: number
  readonly filter: Filter
  readonly options: ReceiveOptions
  readonly resolve: (deliveries: ReadonlyArray<Delivery>) => void
}

/** The outcome of an operation on a receipt handle. */
export type HandleResult =
  | { readonly _tag: "ok"; readonly handle: string }
  | { readonly _tag: "invalid"; readonly reason: string }

export interface GroupsOptions {
  readonly maxDeliveryAttempts: number
  /** How long an auto-renewed delivery stays invisible between liveness checks of its client. */
  readonly renewMs: number
  readonly isAlive: (clientId: string) => boolean
}

let handleSeq = 0
const handlePrefix = `${process.pid.toString(36)}${Date.now().toString(36)}`

/** The progress of one consumer group on one topic. */
export class Subscription {
  readonly group: string
  readonly topic: Topic
  readonly #topics: Topics
  readonly #scheduler: Scheduler
  readonly #options: GroupsOptions
  /** Next position in the topic's log never handed to this group. */
  #cursor = 0
  /** Deliveries visible again (expired, released, or next in their message group). */
  #ready: Array<Delivery> = []
  #readyHead = 0
  /** Live receipt handles; acknowledged ones stay until their deadline so a repeated ack is answered OK. */
  readonly #handles = new Map<string, Delivery>()
  readonly #lanes = new Map<string, Lane>()
  readonly #waiters = new Set<Waiter>()
  readonly #unlisten: () => void

  constructor(group: string, topic: Topic, topics: Topics, scheduler: Scheduler, options: GroupsOptions) {
    this.group = group
    this.topic = topic
    this.#topics = topics
    this.#scheduler = scheduler
    this.#options = options
    this.#unlisten = topic.onAppend(() => this.#wake())
  }

  /** Takes up to `max` visible messages and makes them invisible under new receipt handles. */
  take(max: number, filter: Filter, options: ReceiveOptions): Array<Delivery> {
    const out: Array<Delivery> = []
    const now = Date.now()
    const log = this.topic.log
    while (out.length < max) {
      let delivery = this.#shiftReady()
      if (delivery === undefined) {
        if (this.#cursor >= log.length) break
        const message = log[this.#cursor++] as StoredMessage
        // A message the group's filter rejects is consumed for this group, as on the broker.
        if (!filter(message)) continue
        const key = message.messageGroup
        if (key === undefined) {
          delivery = new Delivery(message, undefined)
        } else {
          let lane = this.#lanes.get(key)
          if (lane === undefined) {
            lane = { key, current: undefined, waiting: [] }
            this.#lanes.set(key, lane)
          }
          if (lane.current !== undefined) {
            lane.waiting.push(message)
            continue
          }
          delivery = new Delivery(message, lane)
          lane.current = delivery
        }
      }
      this.#deliver(delivery, now, options)
      out.push(delivery)
    }
    return out
  }

  /**
   * Waits for messages (long polling): resolves with what arrives first, or
   * with nothing after `timeoutMs`. Returns the cancel function.
   */
  wait(
    max: number,
    filter: Filter,
    options: ReceiveOptions,
    timeoutMs: number,
    resolve: (deliveries: ReadonlyArray<Delivery>) => void
  ): () => void {
    const task = this.#scheduler.after(timeoutMs, () => {
      if (this.#waiters.delete(waiter)) resolve([])
    })
    const waiter: Waiter = {
      max,
      filter,
      options,
      resolve: (deliveries) => {
        task.cancel()
        resolve(deliveries)
      }
    }
    this.#waiters.add(waiter)
    return () => {
      task.cancel()
      this.#waiters.delete(waiter)
    }
  }

  /** Ends every pending long poll with an empty result. */
  releaseWaiters(): void {
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const waiter of waiters) waiter.resolve([])
  }

  /** Acknowledges the delivery behind `handle`: the message is consumed for this group. */
  ack(handle: string): HandleResult {
    const delivery = this.#handles.get(handle)
    if (delivery !== undefined && delivery.handle === handle && delivery.state === "done") return { _tag: "ok", handle }
    const live = this.#live(handle)
    if (live._tag === "invalid") return live
    const current = this.#handles.get(handle) as Delivery
    current.state = "done"
    this.#advance(current)
    return { _tag: "ok", handle }
  }

  /**
   * Gives the delivery behind `handle` a new invisible duration and a new
   * handle (the old one is stale). With `suspend`, its next delivery does not
   * count as another attempt.
   */
  changeInvisible(handle: string, invisibleMs: number, suspend = false): HandleResult {
    const live = this.#live(handle)
    if (live._tag === "invalid") return live
    const delivery = this.#handles.get(handle) as Delivery
    if (suspend && delivery.attempts > 0) delivery.attempts--
    delivery.autoRenew = false
    this.#hold(delivery, Date.now(), invisibleMs)
    return { _tag: "ok", handle: delivery.handle as string }
  }

  /** Moves the delivery behind `handle` to the group's dead-letter topic. */
  forwardToDeadLetter(handle: string): HandleResult {
    const live = this.#live(handle)
    if (live._tag === "invalid") return live
    this.#deadLetter(this.#handles.get(handle) as Delivery)
    return { _tag: "ok", handle }
  }

  /** Makes the auto-renewed deliveries of a departed client visible again now. */
  releaseClient(clientId: string): void {
    const released = new Set<Delivery>()
    for (const delivery of this.#handles.values()) {
      if (delivery.state === "inflight" && delivery.autoRenew && delivery.owner === clientId) released.add(delivery)
    }
    for (const delivery of released) this.#reappear(delivery)
  }

  close(): void {
    this.#unlisten()
    this.releaseWaiters()
  }

  #live(handle: string): HandleResult {
    const delivery = this.#handles.get(handle)
    if (delivery === undefined) return { _tag: "invalid", reason: "receipt handle is expired or unknown" }
    if (delivery.handle !== handle) return { _tag: "invalid", reason: "receipt handle was replaced by a newer one" }
    if (delivery.state !== "inflight") return { _tag: "invalid", reason: "message is no longer held by this handle" }
    if (!delivery.autoRenew && Date.now() >= delivery.invisibleUntil) {
      // The deadline passed but its timer has not run yet: the handle is expired all the same.
      this.#expire(delivery, handle)
      return { _tag: "invalid", reason: "receipt handle is expired" }
    }
    return { _tag: "ok", handle }
  }

  #deliver(delivery: Delivery, now: number, options: ReceiveOptions): void {
    delivery.attempts++
    delivery.autoRenew = options.autoRenew
    delivery.owner = options.clientId
    this.#hold(delivery, now, options.invisibleMs)
  }

  #hold(delivery: Delivery, now: number, invisibleMs: number): void {
    const handle = `${handlePrefix}-${(handleSeq++).toString(36)}`
    delivery.handle = handle
    delivery.state = "inflight"
    delivery.invisibleUntil = now + invisibleMs
    this.#handles.set(handle, delivery)
    this.#scheduler.at(delivery.invisibleUntil, () => this.#expire(delivery, handle))
  }

  #expire(delivery: Delivery, handle: string): void {
    if (delivery.handle !== handle || delivery.state !== "inflight") {
      // Replaced or acknowledged: the handle has served its time.
      if (this.#handles.get(handle) === delivery) this.#handles.delete(handle)
      return
    }
    if (delivery.autoRenew && delivery.owner !== undefined && this.#options.isAlive(delivery.owner)) {
      delivery.invisibleUntil = Date.now() + this.#options.renewMs
      this.#scheduler.at(delivery.invisibleUntil, () => this.#expire(delivery, handle))
      return
    }
    this.#reappear(delivery)
  }

  /** The delivery's invisible time is over: it comes back, or goes to the dead-letter topic when out of attempts. */
  #reappear(delivery: Delivery): void {
    if (delivery.handle !== undefined) this.#handles.delete(delivery.handle)
    delivery.handle = undefined
    if (delivery.attempts >= this.#options.maxDeliveryAttempts) {
      this.#deadLetter(delivery)
      return
    }
    delivery.state = "ready"
    this.#pushReady(delivery)
  }

  #deadLetter(delivery: Delivery): void {
    delivery.state = "done"
    const original = delivery.message
    this.#topics.appendStored({
      ...original,
      topic: deadLetterTopic(this.group),
      deliveryTimestamp: undefined,
      deadLetterOf: original.deadLetterOf ?? { topic: original.topic, messageId: original.messageId },
      queueId: 0,
      queueOffset: 0,
      storeTimestamp: 0
    })
    this.#advance(delivery)
  }

  /** A delivery is finished: release the next message of its message group. */
  #advance(delivery: Delivery): void {
    const lane = delivery.lane
    if (lane === undefined || lane.current !== delivery) return
    const next = lane.waiting.shift()
    if (next === undefined) {
      lane.current = undefined
      this.#lanes.delete(lane.key)
      return
    }
    const following = new Delivery(next, lane)
    lane.current = following
    this.#pushReady(following)
  }

  #pushReady(delivery: Delivery): void {
    this.#ready.push(delivery)
    this.#wake()
  }

  #shiftReady(): Delivery | undefined {
    if (this.#readyHead >= this.#ready.length) return undefined
    const delivery = this.#ready[this.#readyHead++]
    if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
      this.#ready = this.#ready.slice(this.#readyHead)
      this.#readyHead = 0
    }
    return delivery
  }

  #wake(): void {
    if (this.#waiters.size === 0) return
    for (const waiter of this.#waiters) {
      const deliveries = this.take(waiter.max, waiter.filter, waiter.options)
      if (deliveries.length === 0) return
      this.#waiters.delete(waiter)
      waiter.resolve(deliveries)
    }
  }
}

/** Every subscription of every consumer group. */
export class ConsumerGroups {
  readonly #subscriptions = new Map<string, Subscription>()
  readonly #topics: Topics
  readonly #scheduler: Scheduler
  readonly #options: GroupsOptions

  constructor(topics: Topics, scheduler: Scheduler, options: GroupsOptions) {
    this.#topics = topics
    this.#scheduler = scheduler
    this.#options = options
  }

  /** The group's subscription to `topic`; a new group starts at the beginning of the topic. */
  subscription(group: string, topic: Topic): Subscription {
    const key = `${group}\u0000${topic.name}`
    let subscription = this.#subscriptions.get(key)
    if (subscription === undefined) {
      subscription = new Subscription(group, topic, this.#topics, this.#scheduler, this.#options)
      this.#subscriptions.set(key, subscription)
    }
    return subscription
  }

  find(group: string, topic: string): Subscription | undefined {
    return this.#subscriptions.get(`${group}\u0000${topic}`)
  }

  releaseClient(clientId: string): void {
    for (const subscription of this.#subscriptions.values()) subscription.releaseClient(clientId)
  }

  releaseWaiters(): void {
    for (const subscription of this.#subscriptions.values()) subscription.releaseWaiters()
  }

  close(): void {
    for (const subscription of this.#subscriptions.values()) subscription.close()
    this.#subscriptions.clear()
  }
}
