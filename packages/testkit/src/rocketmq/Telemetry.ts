/**
 * Clients and their telemetry streams. A client opens a Telemetry stream per
 * endpoint and reports its settings on it; the broker answers with the
 * settings the client must adopt (retry backoff, body size limit, and for
 * consumers the group's FIFO flag, batch size, long-polling timeout and
 * maximum delivery attempts) and later uses the stream for its own commands,
 * here the transaction check-back (`RecoverOrphanedTransactionCommand`).
 *
 * @since 0.1.0
 */
import type { ServerDuplexStream } from "@grpc/grpc-js"
import * as Names from "./Names.ts"
import * as Protocol from "./Protocol.ts"

type Stream = ServerDuplexStream<Protocol.TelemetryCommand, Protocol.TelemetryCommand>

const { ClientType } = Protocol.definition

/** What the broker knows of one client (by its `x-mq-client-id`). */
export interface Client {
  readonly id: string
  type: number
  group: string | undefined
  /** Topics it publishes to (from its settings and its sends). */
  readonly topics: Set<string>
  readonly streams: Set<Stream>
  lastSeen: number
  terminated: boolean
}

export interface TelemetryOptions {
  readonly maxMessageBytes: number
  readonly maxDeliveryAttempts: number
  readonly fifoGroups: ReadonlySet<string>
  readonly receiveBatchSize: number
  readonly longPollingTimeoutMs: number
}

/** How long a client without an open stream still counts as alive after its last call (heartbeats come every 10 s). */
const ALIVE_WITHOUT_STREAM_MS = 30_000

export class Clients {
  readonly #clients = new Map<string, Client>()
  readonly #options: TelemetryOptions

  constructor(options: TelemetryOptions) {
    this.#options = options
  }

  /** The client record for `id`, created on first sight. */
  touch(id: string): Client {
    let client = this.#clients.get(id)
    if (client === undefined) {
      client = {
        id,
        type: ClientType.CLIENT_TYPE_UNSPECIFIED,
        group: undefined,
        topics: new Set(),
        streams: new Set(),
        lastSeen: Date.now(),
        terminated: false
      }
      this.#clients.set(id, client)
    }
    client.lastSeen = Date.now()
    return client
  }

  /** Serves one Telemetry stream until either side ends it. */
  open(id: string, namespace: string, stream: Stream): void {
    const client = this.touch(id)
    client.terminated = false
    client.streams.add(stream)
    const close = () => {
      if (client.streams.delete(stream)) client.lastSeen = Date.now()
    }
    stream.on("data", (command: Protocol.TelemetryCommand) => {
      client.lastSeen = Date.now()
      const settings = command.getSettings()
      if (settings !== undefined) {
        this.#adopt(client, settings, namespace)
        stream.write(
          new Protocol.service.TelemetryCommand().setStatus(Protocol.OK).setSettings(this.#answer(settings, namespace))
        )
      }
      // Thread stack traces and verification results need no answer.
    })
    stream.on("end", () => {
      close()
      stream.end()
    })
    stream.on("error", close)
    stream.on("cancelled", close)
    stream.on("close", close)
  }

  /** Whether the client may still hold messages: not terminated and recently heard from. */
  isAlive(id: string): boolean {
    const client = this.#clients.get(id)
    if (client === undefined || client.terminated) return false
    return client.streams.size > 0 || Date.now() - client.lastSeen < ALIVE_WITHOUT_STREAM_MS
  }

  terminate(id: string): void {
    const client = this.#clients.get(id)
    if (client !== undefined) client.terminated = true
  }

  /** Records that a client publishes to `topic` (a transaction check-back may go to it). */
  publishes(id: string, topic: string): void {
    this.touch(id).topics.add(topic)
  }

  /**
   * Sends a command to a live producer of `topic`, preferring `preferred`.
   * Returns false when no producer of the topic has an open stream.
   */
  sendToProducer(topic: string, preferred: string | undefined, command: Protocol.TelemetryCommand): boolean {
    const candidates: Array<Client> = []
    const first = preferred === undefined ? undefined : this.#clients.get(preferred)
    if (first !== undefined) candidates.push(first)
    for (const client of this.#clients.values()) {
      if (client !== first && client.type === ClientType.PRODUCER && client.topics.has(topic)) candidates.push(client)
    }
    for (const client of candidates) {
      if (client.terminated) continue
      for (const stream of client.streams) {
        stream.write(command)
        return true
      }
    }
    return false
  }

  /** Ends every open stream; clients reconnect on their own. */
  dropStreams(): void {
    for (const client of this.#clients.values()) {
      for (const stream of [...client.streams]) {
        client.streams.delete(stream)
        stream.end()
      }
    }
  }

  close(): void {
    this.dropStreams()
    this.#clients.clear()
  }

  #adopt(client: Client, settings: Protocol.Settings, namespace: string): void {
    client.type = settings.getClientType() ?? client.type
    const publishing = settings.getPublishing()
    if (publishing !== undefined) {
      for (const topic of publishing.getTopicsList()) client.topics.add(Names.ofResource(topic, namespace))
    }
    const subscription = settings.getSubscription()
    if (subscription !== undefined) client.group = Names.ofResource(subscription.getGroup(), namespace)
  }

  /** The settings the broker imposes on a client, given what it reported. */
  #answer(reported: Protocol.Settings, namespace: string): Protocol.Settings {
    const { definition } = Protocol
    const type = reported.getClientType() ?? ClientType.CLIENT_TYPE_UNSPECIFIED
    const answer = new definition.Settings().setClientType(type)
    const accessPoint = reported.getAccessPoint()
    if (accessPoint !== undefined) answer.setAccessPoint(accessPoint)
    const requestTimeout = reported.getRequestTimeout()
    if (requestTimeout !== undefined) answer.setRequestTimeout(requestTimeout)
    const publishing = reported.getPublishing()
    const subscription = reported.getSubscription()
    if (publishing !== undefined || type === ClientType.PRODUCER) {
      // Producers retry failed sends at once, with a short exponential backoff when throttled.
      answer.setBackoffPolicy(
        new definition.RetryPolicy()
          .setMaxAttempts(3)
          .setExponentialBackoff(
            new definition.ExponentialBackoff()
              .setInitial(Protocol.duration(10))
              .setMax(Protocol.duration(1000))
              .setMultiplier(2)
          )
      )
      answer.setPublishing(
        new definition.Publishing()
          .setTopicsList(publishing?.getTopicsList() ?? [])
          .setMaxBodySize(this.#options.maxMessageBytes)
          .setValidateMessageType(publishing?.getValidateMessageType() ?? true)
      )
    } else if (subscription !== undefined) {
      const plain = subscription.getGroup()?.getName() ?? ""
      const group = Names.ofResource(subscription.getGroup(), namespace)
      // The group's retry policy: how often a message is delivered before it is dead-lettered.
      answer.setBackoffPolicy(
        new definition.RetryPolicy()
          .setMaxAttempts(this.#options.maxDeliveryAttempts)
          .setExponentialBackoff(
            new definition.ExponentialBackoff()
              .setInitial(Protocol.duration(1000))
              .setMax(Protocol.duration(10_000))
              .setMultiplier(2)
          )
      )
      const answered = new definition.Subscription()
        .setSubscriptionsList(subscription.getSubscriptionsList())
        .setFifo(this.#options.fifoGroups.has(group) || this.#options.fifoGroups.has(plain))
        .setReceiveBatchSize(this.#options.receiveBatchSize)
        .setLongPollingTimeout(Protocol.duration(this.#options.longPollingTimeoutMs))
      const groupResource = subscription.getGroup()
      if (groupResource !== undefined) answered.setGroup(groupResource)
      answer.setSubscription(answered)
    }
    answer.setMetric(new definition.Metric().setOn(false))
    return answer
  }
}
