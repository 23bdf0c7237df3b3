/**
 * The queue of one group on one topic (or of its dead letters): messages
 * ready for delivery in order, messages handed out and not yet settled, and
 * the subscribers competing for them.
 */
import { type Delivery, Envelope } from "@lossless/core"
import { Queue } from "effect"

export interface Entry {
  /** Position in this queue; a message returned unsettled goes back to its place. */
  seq: number
  envelope: Envelope.Envelope
  attempt: number
  /** Returned to the queue unsettled since it was last handed out. */
  returned: boolean
}

export interface Subscriber {
  readonly id: number
  readonly prefetch: number
  readonly queue: Queue.Queue<Delivery.Delivery>
  /** Deliveries handed to this subscriber and not settled, by delivery id. */
  readonly held: Map<number, Entry>
  closed: boolean
}

export type MakeDelivery = (
  queue: GroupQueue,
  subscriber: Subscriber,
  deliveryId: number,
  entry: Entry
) => Delivery.Delivery

/** Entries in `seq` order with O(1) removal from the front. */
class ReadyList {
  private items: Array<Entry> = []
  private head = 0

  get size(): number {
    return this.items.length - this.head
  }

  push(entry: Entry): void {
    this.items.push(entry)
  }

  shift(): Entry | undefined {
    if (this.head >= this.items.length) return undefined
    const entry = this.items[this.head]
    this.items[this.head++] = undefined as unknown as Entry
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return entry
  }

  /** Puts an entry back at its place by `seq` (rare: only when a subscriber leaves). */
  insertInOrder(entry: Entry): void {
    let lo = this.head
    let hi = this.items.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((this.items[mid] as Entry).seq < entry.seq) lo = mid + 1
      else hi = mid
    }
    this.items.splice(lo, 0, entry)
  }

  *[Symbol.iterator](): IterableIterator<Entry> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i] as Entry
  }
}

export class GroupQueue {
  private readonly ready = new ReadyList()
  private readonly subscribers: Array<Subscriber> = []
  private nextSeq = 0
  private nextSubscriber = 0
  private nextDelivery = 0
  private cursor = 0
  /** Entries waiting for a timer (retryLater, delayed delivery). */
  delayed = 0

  readonly topic: string
  readonly group: string
  private readonly makeDelivery: MakeDelivery

  constructor(topic: string, group: string, makeDelivery: MakeDelivery) {
    this.topic = topic
    this.group = group
    this.makeDelivery = makeDelivery
  }

  get readyCount(): number {
    return this.ready.size
  }

  get inflightCount(): number {
    let n = 0
    for (const s of this.subscribers) n += s.held.size
    return n
  }

  /** Appends a message at the back of the queue and hands it out if a subscriber has room. */
  enqueue(envelope: Envelope.Envelope, attempt: number): void {
    this.ready.push({ seq: this.nextSeq++, envelope, attempt, returned: false })
    this.pump()
  }

  addSubscriber(prefetch: number, queue: Queue.Queue<Delivery.Delivery>): Subscriber {
    const subscriber: Subscriber = { id: this.nextSubscriber++, prefetch, queue, held: new Map(), closed: false }
    this.subscribers.push(subscriber)
    this.pump()
    return subscriber
  }

  /** Removes a subscriber; whatever it held unsettled goes back to its place for redelivery. */
  removeSubscriber(subscriber: Subscriber): void {
    if (subscriber.closed) return
    subscriber.closed = true
    const index = this.subscribers.indexOf(subscriber)
    if (index >= 0) this.subscribers.splice(index, 1)
    for (const entry of subscriber.held.values()) {
      entry.returned = true
      this.ready.insertInOrder(entry)
    }
    subscriber.held.clear()
    this.pump()
  }

  /**
   * Takes a delivery back from its subscriber for settlement. Returns the
   * entry, or a reason why the delivery can no longer be settled.
   */
  release(subscriber: Subscriber, deliveryId: number): Entry | string {
    if (subscriber.closed) return "the subscription has ended; the message was returned for redelivery"
    const entry = subscriber.held.get(deliveryId)
    if (entry === undefined) return "the delivery was already settled"
    subscriber.held.delete(deliveryId)
    return entry
  }

  /** Hands ready messages to subscribers with free prefetch, round-robin. */
  pump(): void {
    const subs = this.subscribers
    while (this.ready.size > 0 && subs.length > 0) {
      let chosen: Subscriber | undefined
      for (let i = 0; i < subs.length; i++) {
        const candidate = subs[(this.cursor + i) % subs.length] as Subscriber
        if (candidate.held.size < candidate.prefetch) {
          chosen = candidate
          this.cursor = (this.cursor + i + 1) % subs.length
          break
        }
      }
      if (chosen === undefined) return
      const entry = this.ready.shift() as Entry
      const deliveryId = this.nextDelivery++
      chosen.held.set(deliveryId, entry)
      Queue.offerUnsafe(chosen.queue, this.makeDelivery(this, chosen, deliveryId, entry))
      entry.returned = false
    }
  }

  /** Envelopes waiting to be handed out, in order (for inspection). */
  peekReady(): Array<Envelope.Envelope> {
    return Array.from(this.ready, (entry) => Envelope.withAttempt(entry.envelope, entry.attempt))
  }
}
