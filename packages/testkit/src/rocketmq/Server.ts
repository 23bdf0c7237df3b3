/**
 * The gRPC side of the emulator: `apache.rocketmq.v2.MessagingService` served
 * by grpc-js on one endpoint that is at once the access point (routes,
 * assignments) and the only broker of every route.
 *
 * @since 0.1.0
 */
import * as grpc from "@grpc/grpc-js"
import * as Codec from "./Codec.ts"
import { ConsumerGroups, type Delivery, type Filter, type HandleResult, type Subscription } from "./ConsumerGroups.ts"
import { Faults } from "./Faults.ts"
import * as Names from "./Names.ts"
import * as Protocol from "./Protocol.ts"
import { Scheduler } from "./Scheduler.ts"
import { Clients } from "./Telemetry.ts"
import { digest, Topic, Topics } from "./Topics.ts"
import { type HalfMessage, Transactions } from "./Transactions.ts"

const { definition, service, Code } = Protocol
const { FilterType, MessageType, Permission, TransactionResolution } = definition

/** Every option resolved to a value. */
export interface ServerConfig {
  readonly host: string
  readonly port: number
  readonly queuesPerTopic: number
  readonly autoCreateTopics: boolean
  readonly topics: ReadonlyArray<string>
  readonly maxMessageBytes: number
  readonly maxDelayMs: number
  readonly maxDeliveryAttempts: number
  readonly transactionCheckIntervalMs: number
  readonly maxTransactionChecks: number
  readonly fifoGroups: ReadonlySet<string>
  readonly longPollingTimeoutMs: number
  readonly receiveBatchSize: number
  readonly autoRenewInvisibleMs: number
}

const BROKER_NAME = "rocketmq-emulator"
/** The proxy's longest invisible time. */
const MAX_INVISIBLE_MS = 12 * 60 * 60 * 1000

interface PendingReceive {
  readonly fail: () => void
}

/** The emulated broker behind one gRPC server. */
export class Broker {
  readonly config: ServerConfig
  readonly scheduler = new Scheduler()
  readonly topics: Topics
  readonly groups: ConsumerGroups
  readonly transactions: Transactions
  readonly clients: Clients
  readonly faults: Faults
  readonly #server = new grpc.Server({
    // Bodies over the broker's own limit must reach it to be refused with MESSAGE_BODY_TOO_LARGE.
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1
  })
  readonly #pendingReceives = new Set<PendingReceive>()
  readonly #filters = new Map<string, Filter>()
  #endpoints: Protocol.Endpoints | undefined
  #storeHost = ""

  constructor(config: ServerConfig) {
    this.config = config
    this.topics = new Topics(config.queuesPerTopic, this.scheduler)
    for (const topic of config.topics) this.topics.getOrCreate(topic)
    this.clients = new Clients({
      maxMessageBytes: config.maxMessageBytes,
      maxDeliveryAttempts: config.maxDeliveryAttempts,
      fifoGroups: config.fifoGroups,
      receiveBatchSize: config.receiveBatchSize,
      longPollingTimeoutMs: config.longPollingTimeoutMs
    })
    this.groups = new ConsumerGroups(this.topics, this.scheduler, {
      maxDeliveryAttempts: config.maxDeliveryAttempts,
      renewMs: config.autoRenewInvisibleMs,
      isAlive: (id) => this.clients.isAlive(id)
    })
    this.transactions = new Transactions(this.topics, this.scheduler, {
      checkIntervalMs: config.transactionCheckIntervalMs,
      maxChecks: config.maxTransactionChecks,
      check: (half) => this.#checkBack(half)
    })
    this.faults = new Faults((connections) => {
      this.clients.dropStreams()
      if (connections) {
        for (const pending of [...this.#pendingReceives]) pending.fail()
      }
    })
    this.#server.addService(serviceDefinition(), this.#handlers() as unknown as grpc.UntypedServiceImplementation)
  }

  /** Binds the server; resolves with the `host:port` clients connect to. */
  async listen(): Promise<string> {
    const { host, port } = this.config
    const bound = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, port) =>
        error === null ? resolve(port) : reject(error)
      )
    )
    const endpoint = `${host}:${bound}`
    this.#storeHost = endpoint
    this.#endpoints = new definition.Endpoints()
      .setScheme(
        /^\d+\.\d+\.\d+\.\d+$/.test(host) ? definition.AddressScheme.IPV4 : definition.AddressScheme.DOMAIN_NAME
      )
      .setAddressesList([new definition.Address().setHost(host).setPort(bound)])
    return endpoint
  }

  /**
   * Ends every call gracefully (pending long polls answer "no new message",
   * telemetry streams complete), then stops the server; a call still open
   * after `graceMs` is cut.
   */
  async close(graceMs = 2000): Promise<void> {
    this.faults.reset()
    this.scheduler.close()
    this.#pendingReceives.clear()
    this.groups.close()
    this.clients.close()
    this.transactions.clear()
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.#server.forceShutdown()
        resolve()
      }, graceMs)
      this.#server.tryShutdown(() => {
        clearTimeout(force)
        resolve()
      })
    })
  }

  #checkBack(half: HalfMessage): void {
    const message = Codec.encode(
      {
        ...half.message,
        bodyCrc32: digest(half.message.body),
        queueOffset: 0,
        storeTimestamp: Date.now()
      },
      undefined,
      this.#storeHost,
      half.namespace
    )
    const command = new service.TelemetryCommand()
      .setStatus(Protocol.OK)
      .setRecoverOrphanedTransactionCommand(
        new service.RecoverOrphanedTransactionCommand().setMessage(message).setTransactionId(half.transactionId)
      )
    this.clients.sendToProducer(half.message.topic, half.producerId, command)
  }

  #broker(): Protocol.Broker {
    return new definition.Broker().setName(BROKER_NAME).setId(0).setEndpoints(this.#endpoints)
  }

  #messageQueue(resource: Protocol.Resource, topic: Topic, id: number): Protocol.MessageQueue {
    return new definition.MessageQueue()
      .setTopic(resource)
      .setId(id)
      .setPermission(Permission.READ_WRITE)
      .setBroker(this.#broker())
      .setAcceptMessageTypesList(topic.accepts as Array<Protocol.MessageType>)
  }

  /**
   * The topic a request names (qualified by the caller's namespace), created
   * on first use when topics are auto-created; otherwise the status refusing
   * it (ILLEGAL_TOPIC for a name the broker never accepts, TOPIC_NOT_FOUND).
   */
  #topic(resource: Protocol.Resource | undefined, caller: Caller): Topic | Protocol.Status {
    const name = Names.ofResource(resource, caller.namespace)
    const existing = this.topics.get(name)
    if (existing !== undefined) return existing
    const illegal = Names.topicNameProblem(resource?.getName() ?? "")
    if (illegal !== undefined) return Protocol.status(Code.ILLEGAL_TOPIC, illegal)
    if (!this.config.autoCreateTopics) return Protocol.status(Code.TOPIC_NOT_FOUND, `topic ${name} not found`)
    return this.topics.getOrCreate(name)
  }

  /** The subscription an ack, change or forward request refers to. */
  #subscription(
    group: Protocol.Resource | undefined,
    topic: Protocol.Resource | undefined,
    caller: Caller
  ): Subscription | undefined {
    return this.groups.find(Names.ofResource(group, caller.namespace), Names.ofResource(topic, caller.namespace))
  }

  #filter(expression: Protocol.FilterExpression | undefined): Filter | undefined {
    if (expression === undefined) return all
    if (expression.getType() === FilterType.SQL) return undefined
    const text = expression.getExpression().trim()
    let filter = this.#filters.get(text)
    if (filter === undefined) {
      const tags = new Set(
        text
          .split("||")
          .map((tag) => tag.trim())
          .filter((tag) => tag !== "")
      )
      filter = text === "" || tags.has("*") ? all : (message) => message.tag !== undefined && tags.has(message.tag)
      this.#filters.set(text, filter)
    }
    return filter
  }

  #handlers() {
    const unary =
      <Req, Res>(method: string, handle: (request: Req, caller: Caller) => Res) =>
      (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
        let response: Res
        try {
          response = handle(call.request, callerOf(call.metadata))
        } catch (error) {
          callback({ code: grpc.status.INTERNAL, details: String(error) })
          return
        }
        respondLater(this.faults.takeDelay(method), () => callback(null, response))
      }

    return {
      queryRoute: unary("QueryRoute", (request: Protocol.QueryRouteRequest, caller) => {
        const resource = request.getTopic()
        const response = new service.QueryRouteResponse()
        const topic = this.#topic(resource, caller)
        if (resource === undefined || !(topic instanceof Topic)) {
          return response.setStatus(
            topic instanceof Topic ? Protocol.status(Code.BAD_REQUEST, "topic is required") : topic
          )
        }
        const queues: Array<Protocol.MessageQueue> = []
        for (let id = 0; id < topic.queues; id++) queues.push(this.#messageQueue(resource, topic, id))
        return response.setStatus(Protocol.OK).setMessageQueuesList(queues)
      }),

      heartbeat: unary("Heartbeat", (_request: Protocol.HeartbeatRequest, { clientId }) => {
        if (clientId !== undefined) this.clients.touch(clientId)
        return new service.HeartbeatResponse().setStatus(Protocol.OK)
      }),

      queryAssignment: unary("QueryAssignment", (request: Protocol.QueryAssignmentRequest, caller) => {
        const resource = request.getTopic()
        const response = new service.QueryAssignmentResponse()
        const topic = this.#topic(resource, caller)
        if (resource === undefined || !(topic instanceof Topic)) {
          return response.setStatus(
            topic instanceof Topic ? Protocol.status(Code.BAD_REQUEST, "topic is required") : topic
          )
        }
        // One assignment per broker; queue id -1: receive from every queue of the topic (POP mode).
        return response
          .setStatus(Protocol.OK)
          .setAssignmentsList([new definition.Assignment().setMessageQueue(this.#messageQueue(resource, topic, -1))])
      }),

      sendMessage: (
        call: grpc.ServerUnaryCall<Protocol.SendMessageRequest, Protocol.SendMessageResponse>,
        callback: grpc.sendUnaryData<Protocol.SendMessageResponse>
      ) => {
        const caller = callerOf(call.metadata)
        const fault = this.faults.takeSendStatus()
        let response: Protocol.SendMessageResponse
        try {
          response = this.#send(call.request, caller, typeof fault === "number" ? fault : undefined)
        } catch (error) {
          callback({ code: grpc.status.INTERNAL, details: String(error) })
          return
        }
        respondLater(this.faults.takeDelay("SendMessage"), () => {
          if (fault === "unavailable") {
            callback({
              code: grpc.status.UNAVAILABLE,
              details: "emulated transport failure after the message was stored"
            })
          } else {
            callback(null, response)
          }
        })
      },

      receiveMessage: (
        call: grpc.ServerWritableStream<Protocol.ReceiveMessageRequest, Protocol.ReceiveMessageResponse>
      ) => this.#receive(call),

      ackMessage: unary("AckMessage", (request: Protocol.AckMessageRequest, caller) => {
        const subscription = this.#subscription(request.getGroup(), request.getTopic(), caller)
        const entries = request.getEntriesList().map((entry) => {
          const handle = entry.getReceiptHandle()
          const result: HandleResult =
            subscription === undefined
              ? { _tag: "invalid", reason: "no message was received under this group and topic" }
              : subscription.ack(handle)
          return new service.AckMessageResultEntry()
            .setMessageId(entry.getMessageId())
            .setReceiptHandle(handle)
            .setStatus(statusOf(result))
        })
        return new service.AckMessageResponse()
          .setStatus(overall(entries.map((e) => e.getStatus())))
          .setEntriesList(entries)
      }),

      forwardMessageToDeadLetterQueue: unary(
        "ForwardMessageToDeadLetterQueue",
        (request: Protocol.ForwardMessageToDeadLetterQueueRequest, caller) => {
          const subscription = this.#subscription(request.getGroup(), request.getTopic(), caller)
          const result: HandleResult =
            subscription === undefined
              ? { _tag: "invalid", reason: "no message was received under this group and topic" }
              : subscription.forwardToDeadLetter(request.getReceiptHandle())
          return new service.ForwardMessageToDeadLetterQueueResponse().setStatus(statusOf(result))
        }
      ),

      changeInvisibleDuration: unary(
        "ChangeInvisibleDuration",
        (request: Protocol.ChangeInvisibleDurationRequest, caller) => {
          const response = new service.ChangeInvisibleDurationResponse()
          const invisibleMs = Protocol.millisOf(request.getInvisibleDuration())
          if (invisibleMs === undefined || invisibleMs < 0 || invisibleMs > MAX_INVISIBLE_MS) {
            return response.setStatus(
              Protocol.status(Code.ILLEGAL_INVISIBLE_TIME, "invisible duration must be between 0 and 12 hours")
            )
          }
          const subscription = this.#subscription(request.getGroup(), request.getTopic(), caller)
          const result: HandleResult =
            subscription === undefined
              ? { _tag: "invalid", reason: "no message was received under this group and topic" }
              : subscription.changeInvisible(request.getReceiptHandle(), invisibleMs, request.getSuspend())
          response.setStatus(statusOf(result))
          if (result._tag === "ok") response.setReceiptHandle(result.handle)
          return response
        }
      ),

      endTransaction: unary("EndTransaction", (request: Protocol.EndTransactionRequest) => {
        const response = new service.EndTransactionResponse()
        const resolution = request.getResolution()
        if (resolution !== TransactionResolution.COMMIT && resolution !== TransactionResolution.ROLLBACK) {
          // An undecided answer leaves the half message to the next check.
          return response.setStatus(Protocol.OK)
        }
        const result = this.transactions.end(
          request.getMessageId(),
          request.getTransactionId(),
          resolution === TransactionResolution.COMMIT ? "commit" : "rollback"
        )
        return response.setStatus(
          result._tag === "ok" ? Protocol.OK : Protocol.status(Code.INVALID_TRANSACTION_ID, result.reason)
        )
      }),

      telemetry: (call: grpc.ServerDuplexStream<Protocol.TelemetryCommand, Protocol.TelemetryCommand>) => {
        const { clientId, namespace } = callerOf(call.metadata)
        if (clientId === undefined) {
          call.write(
            new service.TelemetryCommand().setStatus(
              Protocol.status(Code.CLIENT_ID_REQUIRED, "x-mq-client-id is required")
            )
          )
          call.end()
          return
        }
        this.clients.open(clientId, namespace, call)
      },

      notifyClientTermination: unary(
        "NotifyClientTermination",
        (_request: Protocol.NotifyClientTerminationRequest, { clientId }) => {
          if (clientId !== undefined) {
            this.clients.terminate(clientId)
            this.groups.releaseClient(clientId)
          }
          return new service.NotifyClientTerminationResponse().setStatus(Protocol.OK)
        }
      ),

      pullMessage: (call: grpc.ServerWritableStream<unknown, Protocol.PullMessageResponse>) => {
        call.write(new service.PullMessageResponse().setStatus(unsupported("PullMessage")))
        call.end()
      },
      updateOffset: unary("UpdateOffset", () =>
        new service.UpdateOffsetResponse().setStatus(unsupported("UpdateOffset"))
      ),
      getOffset: unary("GetOffset", () => new service.GetOffsetResponse().setStatus(unsupported("GetOffset"))),
      queryOffset: unary("QueryOffset", () => new service.QueryOffsetResponse().setStatus(unsupported("QueryOffset"))),
      recallMessage: unary("RecallMessage", (request: Protocol.RecallMessageRequest, caller) => {
        const response = new service.RecallMessageResponse()
        const messageId = this.topics.recall(
          Names.ofResource(request.getTopic(), caller.namespace),
          request.getRecallHandle()
        )
        if (messageId === undefined) {
          return response.setStatus(
            Protocol.status(
              Code.MESSAGE_NOT_FOUND,
              "no delayed message to recall: unknown handle, or already delivered"
            )
          )
        }
        return response.setStatus(Protocol.OK).setMessageId(messageId)
      }),
      syncLiteSubscription: unary("SyncLiteSubscription", () =>
        new service.SyncLiteSubscriptionResponse().setStatus(unsupported("SyncLiteSubscription"))
      )
    }
  }

  #send(request: Protocol.SendMessageRequest, caller: Caller, faultCode: number | undefined) {
    const { clientId } = caller
    const response = new service.SendMessageResponse()
    const messages = request.getMessagesList()
    if (messages.length === 0) return response.setStatus(Protocol.status(Code.BAD_REQUEST, "no message to send"))
    const entries = messages.map((message) => {
      const entry = new service.SendResultEntry()
      const topic = this.#topic(message.getTopic(), caller)
      if (!(topic instanceof Topic)) return entry.setStatus(topic)
      const incoming = Codec.decode(message, topic.name)
      entry.setMessageId(incoming.messageId)
      if (incoming.messageId === "")
        return entry.setStatus(Protocol.status(Code.ILLEGAL_MESSAGE_ID, "message id is required"))
      if (incoming.body.length === 0)
        return entry.setStatus(Protocol.status(Code.MESSAGE_BODY_EMPTY, "message body is empty"))
      const due = incoming.deliveryTimestamp
      if (due !== undefined && due - Date.now() > this.config.maxDelayMs) {
        return entry.setStatus(
          Protocol.status(Code.ILLEGAL_DELIVERY_TIME, `delivery time is more than ${this.config.maxDelayMs} ms away`)
        )
      }
      if (incoming.body.length > this.config.maxMessageBytes) {
        return entry.setStatus(
          Protocol.status(
            Code.MESSAGE_BODY_TOO_LARGE,
            `message body of ${incoming.body.length} bytes exceeds the limit of ${this.config.maxMessageBytes} bytes`
          )
        )
      }
      if (!topic.accepts.includes(incoming.messageType)) {
        return entry.setStatus(
          Protocol.status(
            Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
            `topic ${topic.name} does not accept messages of type ${incoming.messageType}`
          )
        )
      }
      if (clientId !== undefined) this.clients.publishes(clientId, topic.name)
      if (incoming.messageType === MessageType.TRANSACTION) {
        entry.setTransactionId(this.transactions.prepare(incoming, clientId, caller.namespace))
      } else {
        const { offset, recallHandle } = this.topics.append(incoming)
        entry.setOffset(offset)
        if (recallHandle !== undefined) entry.setRecallHandle(recallHandle)
      }
      // A fault answers with an error although the message is stored, as a flush timeout does.
      return entry.setStatus(
        faultCode === undefined ? Protocol.OK : Protocol.status(faultCode, "emulated fault: the message was stored")
      )
    })
    return response.setStatus(overall(entries.map((entry) => entry.getStatus()))).setEntriesList(entries)
  }

  #receive(call: grpc.ServerWritableStream<Protocol.ReceiveMessageRequest, Protocol.ReceiveMessageResponse>): void {
    const request = call.request
    const fail = (code: number, message: string) => {
      call.write(new service.ReceiveMessageResponse().setStatus(Protocol.status(code, message)))
      call.end()
    }
    const caller = callerOf(call.metadata)
    const illegalGroup = Names.groupNameProblem(request.getGroup()?.getName() ?? "")
    if (illegalGroup !== undefined) {
      fail(Code.ILLEGAL_CONSUMER_GROUP, illegalGroup)
      return
    }
    const group = Names.ofResource(request.getGroup(), caller.namespace)
    const topic = this.#topic(request.getMessageQueue()?.getTopic(), caller)
    if (!(topic instanceof Topic)) {
      call.write(new service.ReceiveMessageResponse().setStatus(topic))
      call.end()
      return
    }
    const filter = this.#filter(request.getFilterExpression())
    if (filter === undefined) {
      fail(Code.UNSUPPORTED, "SQL92 filters are not supported by the emulator")
      return
    }
    const autoRenew = request.getAutoRenew()
    const requested = Protocol.millisOf(request.getInvisibleDuration())
    const invisibleMs = requested ?? (autoRenew ? this.config.autoRenewInvisibleMs : undefined)
    if (invisibleMs === undefined || invisibleMs <= 0 || invisibleMs > MAX_INVISIBLE_MS) {
      fail(Code.ILLEGAL_INVISIBLE_TIME, "invisible duration is required, more than 0 and at most 12 hours")
      return
    }
    const batchSize = Math.max(1, request.getBatchSize())
    const longPollingMs = Protocol.millisOf(request.getLongPollingTimeout()) ?? 0
    const options = { invisibleMs, autoRenew, clientId: caller.clientId }
    const subscription = this.groups.subscription(group, topic)

    const respond = (deliveries: ReadonlyArray<Delivery>) =>
      respondLater(this.faults.takeDelay("ReceiveMessage"), () => {
        // A receiver gone away leaves its messages invisible; they come back when their time is up.
        if (call.cancelled || call.destroyed) return
        if (deliveries.length === 0) {
          call.write(
            new service.ReceiveMessageResponse().setStatus(Protocol.status(Code.MESSAGE_NOT_FOUND, "no new message"))
          )
          call.end()
          return
        }
        call.write(new service.ReceiveMessageResponse().setStatus(Protocol.OK))
        for (const delivery of deliveries) {
          const info = { receiptHandle: delivery.handle as string, attempt: delivery.attempts, invisibleMs }
          call.write(
            new service.ReceiveMessageResponse().setMessage(
              Codec.encode(delivery.message, info, this.#storeHost, caller.namespace)
            )
          )
        }
        call.write(new service.ReceiveMessageResponse().setDeliveryTimestamp(Protocol.timestamp(Date.now())))
        call.end()
      })

    const now = subscription.take(batchSize, filter, options)
    if (now.length > 0 || longPollingMs <= 0) {
      respond(now)
      return
    }

    const pending: PendingReceive = {
      fail: () => {
        cancel()
        this.#pendingReceives.delete(pending)
        // grpc-js turns an 'error' event on a server stream into the call's final status.
        if (!call.cancelled) call.emit("error", { code: grpc.status.UNAVAILABLE, details: "emulated connection loss" })
      }
    }
    const cancel = subscription.wait(batchSize, filter, options, longPollingMs, (deliveries) => {
      this.#pendingReceives.delete(pending)
      respond(deliveries)
    })
    this.#pendingReceives.add(pending)
    call.on("cancelled", () => {
      cancel()
      this.#pendingReceives.delete(pending)
    })
  }
}

const all: Filter = () => true

/** Who calls: the client id and namespace headers of the call. */
interface Caller {
  readonly clientId: string | undefined
  readonly namespace: string
}

const header = (metadata: grpc.Metadata, key: string): string | undefined => {
  const value = metadata.get(key)[0]
  return value === undefined || value === "" ? undefined : String(value)
}

const callerOf = (metadata: grpc.Metadata): Caller => ({
  clientId: header(metadata, "x-mq-client-id"),
  namespace: header(metadata, "x-mq-namespace") ?? ""
})

const respondLater = (delayMs: number, respond: () => void): void => {
  if (delayMs > 0) setTimeout(respond, delayMs)
  else respond()
}

const unsupported = (method: string): Protocol.Status =>
  Protocol.status(Code.UNSUPPORTED, `${method} is not supported by the emulator`)

const statusOf = (result: HandleResult): Protocol.Status =>
  result._tag === "ok" ? Protocol.OK : Protocol.status(Code.INVALID_RECEIPT_HANDLE, result.reason)

/** The RPC status over per-entry statuses: OK, the one failure, or MULTIPLE_RESULTS. */
const overall = (statuses: ReadonlyArray<Protocol.Status | undefined>): Protocol.Status => {
  const failed = statuses.filter((status) => status !== undefined && status.getCode() !== Code.OK)
  if (failed.length === 0) return Protocol.OK
  if (statuses.length === 1) return failed[0] as Protocol.Status
  return Protocol.status(Code.MULTIPLE_RESULTS, "some entries failed; see each entry's status")
}

const serviceDefinition = (): grpc.ServiceDefinition =>
  Protocol.serviceGrpc.MessagingServiceService as unknown as grpc.ServiceDefinition
