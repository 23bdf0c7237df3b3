/**
 * The wire protocol as the emulator answers it, checked with a bare gRPC
 * client built from the same generated code the RocketMQ client uses.
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it, onTestFinished } from "vitest"
import { Code, start } from "../../src/rocketmq/index.ts"
import * as Protocol from "../../src/rocketmq/Protocol.ts"

const { definition, service, serviceGrpc } = Protocol

const connect = async (options: Parameters<typeof start>[0] = {}) => {
  const emulator = await start(options)
  const client = new serviceGrpc.MessagingServiceClient(emulator.endpoint, grpc.credentials.createInsecure())
  const metadata = new grpc.Metadata()
  metadata.set("x-mq-client-id", "protocol-test")
  onTestFinished(async () => {
    client.close()
    await emulator.close()
  })
  const call = <Res>(invoke: (callback: (error: grpc.ServiceError | null, response: Res) => void) => unknown) =>
    new Promise<Res>((resolve, reject) => {
      invoke((error, response) => (error ? reject(error) : resolve(response)))
    })
  const receive = async (request: Protocol.ReceiveMessageRequest) => {
    const responses: Array<Protocol.ReceiveMessageResponse> = []
    for await (const response of client.receiveMessage(request, metadata)) responses.push(response)
    return responses
  }
  return { emulator, client, metadata, call, receive }
}

const resource = (name: string) => new definition.Resource().setName(name)

const message = (topic: string, id: string, body: Uint8Array, type = definition.MessageType.NORMAL) =>
  new definition.Message()
    .setTopic(resource(topic))
    .setBody(body)
    .setSystemProperties(
      new definition.SystemProperties()
        .setMessageId(id)
        .setMessageType(type)
        .setBodyEncoding(definition.Encoding.IDENTITY)
        .setBornHost("test")
    )

const receiveRequest = (group: string, topic: string) =>
  new service.ReceiveMessageRequest()
    .setGroup(resource(group))
    .setMessageQueue(new definition.MessageQueue().setTopic(resource(topic)).setId(0))
    .setFilterExpression(new definition.FilterExpression().setType(definition.FilterType.TAG).setExpression("*"))
    .setBatchSize(10)
    .setInvisibleDuration(Protocol.duration(10_000))
    .setLongPollingTimeout(Protocol.duration(0))

describe("protocol", () => {
  it("routes a topic to queues on the emulator's own endpoint, accepting every supported message type", async () => {
    const { client, call, metadata, emulator } = await connect({ queuesPerTopic: 2 })
    const response = await call<Protocol.QueryRouteResponse>((cb) =>
      client.queryRoute(new service.QueryRouteRequest().setTopic(resource("t")), metadata, cb)
    )
    expect(response.getStatus()?.getCode()).toBe(Code.OK)
    const queues = response.getMessageQueuesList()
    expect(queues.map((q) => q.getId())).toEqual([0, 1])
    const address = queues[0]?.getBroker()?.getEndpoints()?.getAddressesList()[0]
    expect(`${address?.getHost()}:${address?.getPort()}`).toBe(emulator.endpoint)
    expect(queues[0]?.getPermission()).toBe(definition.Permission.READ_WRITE)
    expect(queues[0]?.getAcceptMessageTypesList()).toEqual([1, 2, 3, 4])
  })

  it("answers TOPIC_NOT_FOUND for an unknown topic when topics are not auto-created", async () => {
    const { client, call, metadata } = await connect({ autoCreateTopics: false })
    const response = await call<Protocol.QueryRouteResponse>((cb) =>
      client.queryRoute(new service.QueryRouteRequest().setTopic(resource("nope")), metadata, cb)
    )
    expect(response.getStatus()?.getCode()).toBe(Code.TOPIC_NOT_FOUND)
  })

  it("refuses an oversized body with MESSAGE_BODY_TOO_LARGE and an empty one with MESSAGE_BODY_EMPTY", async () => {
    const { client, call, metadata, emulator } = await connect({ maxMessageBytes: 16 })
    const send = (request: Protocol.SendMessageRequest) =>
      call<Protocol.SendMessageResponse>((cb) => client.sendMessage(request, metadata, cb))
    const big = await send(new service.SendMessageRequest().setMessagesList([message("t", "A1", new Uint8Array(17))]))
    expect(big.getStatus()?.getCode()).toBe(Code.MESSAGE_BODY_TOO_LARGE)
    expect(big.getEntriesList()[0]?.getStatus()?.getCode()).toBe(Code.MESSAGE_BODY_TOO_LARGE)
    const empty = await send(new service.SendMessageRequest().setMessagesList([message("t", "A2", new Uint8Array(0))]))
    expect(empty.getStatus()?.getCode()).toBe(Code.MESSAGE_BODY_EMPTY)
    expect(emulator.messages("t")).toEqual([])
  })

  it("refuses topic and group names the broker would not accept", async () => {
    const { client, call, metadata, receive, emulator } = await connect()
    const route = await call<Protocol.QueryRouteResponse>((cb) =>
      client.queryRoute(new service.QueryRouteRequest().setTopic(resource("orders.created")), metadata, cb)
    )
    expect(route.getStatus()?.getCode()).toBe(Code.ILLEGAL_TOPIC)
    const long = await call<Protocol.QueryRouteResponse>((cb) =>
      client.queryRoute(new service.QueryRouteRequest().setTopic(resource("t".repeat(128))), metadata, cb)
    )
    expect(long.getStatus()?.getCode()).toBe(Code.ILLEGAL_TOPIC)
    expect((await receive(receiveRequest("billing.workers", "t")))[0]?.getStatus()?.getCode()).toBe(
      Code.ILLEGAL_CONSUMER_GROUP
    )
    expect(() => emulator.createTopic("a/b")).toThrow(TypeError)
  })

  it("refuses a message whose type the topic does not accept", async () => {
    const { client, call, metadata, emulator } = await connect()
    emulator.createTopic("fifo-only", { messageType: "FIFO" })
    const request = new service.SendMessageRequest().setMessagesList([message("fifo-only", "N1", new Uint8Array([1]))])
    const response = await call<Protocol.SendMessageResponse>((cb) => client.sendMessage(request, metadata, cb))
    expect(response.getStatus()?.getCode()).toBe(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE)
    expect(emulator.messages("fifo-only")).toEqual([])
  })

  it("answers a send with the message id and increasing queue offsets", async () => {
    const { client, call, metadata } = await connect()
    const send = (request: Protocol.SendMessageRequest) =>
      call<Protocol.SendMessageResponse>((cb) => client.sendMessage(request, metadata, cb))
    const offsets = []
    for (const id of ["M1", "M2", "M3"]) {
      const response = await send(
        new service.SendMessageRequest().setMessagesList([message("t", id, new Uint8Array([1]))])
      )
      expect(response.getEntriesList()[0]?.getMessageId()).toBe(id)
      offsets.push(response.getEntriesList()[0]?.getOffset())
    }
    expect(offsets).toEqual([0, 1, 2])
  })

  it("streams the status first, then the messages, then the delivery timestamp; MESSAGE_NOT_FOUND when empty", async () => {
    const { client, call, metadata, receive } = await connect()
    const empty = await receive(receiveRequest("g", "t"))
    expect(empty.map((r) => r.getContentCase())).toEqual([service.ReceiveMessageResponse.ContentCase.STATUS])
    expect(empty[0]?.getStatus()?.getCode()).toBe(Code.MESSAGE_NOT_FOUND)
    const request = new service.SendMessageRequest().setMessagesList([
      message("t", "X1", new Uint8Array([1])),
      message("t", "X2", new Uint8Array([2]))
    ])
    await call<Protocol.SendMessageResponse>((cb) => client.sendMessage(request, metadata, cb))
    const full = await receive(receiveRequest("g", "t"))
    const { STATUS, MESSAGE, DELIVERY_TIMESTAMP } = service.ReceiveMessageResponse.ContentCase
    expect(full.map((r) => r.getContentCase())).toEqual([STATUS, MESSAGE, MESSAGE, DELIVERY_TIMESTAMP])
    const system = full[1]?.getMessage()?.getSystemProperties()
    expect(system?.getReceiptHandle()).not.toBe("")
    expect(system?.getDeliveryAttempt()).toBe(1)
    expect(system?.getBodyDigest()?.getType()).toBe(definition.DigestType.CRC32)
  })

  it("requires an invisible duration unless the receive asks for auto renewal", async () => {
    const { receive } = await connect()
    const request = receiveRequest("g", "t")
    request.clearInvisibleDuration()
    const response = await receive(request)
    expect(response[0]?.getStatus()?.getCode()).toBe(Code.ILLEGAL_INVISIBLE_TIME)
  })

  it("keeps an auto-renewed delivery invisible until its client terminates, then redelivers it", async () => {
    const { client, call, metadata, receive } = await connect({ autoRenewInvisibleMs: 100 })
    const send = new service.SendMessageRequest().setMessagesList([message("t", "R1", new Uint8Array([1]))])
    await call<Protocol.SendMessageResponse>((cb) => client.sendMessage(send, metadata, cb))
    const pushReceive = () => {
      const request = receiveRequest("g", "t").setAutoRenew(true)
      request.clearInvisibleDuration()
      return receive(request)
    }
    const messagesOf = (responses: ReadonlyArray<Protocol.ReceiveMessageResponse>) =>
      responses.flatMap((r) => (r.hasMessage() ? [r.getMessage()?.getSystemProperties()?.getMessageId()] : []))
    expect(messagesOf(await pushReceive())).toEqual(["R1"])
    // Renewed past several invisible periods while the client is alive.
    await new Promise((resolve) => setTimeout(resolve, 350))
    expect(messagesOf(await pushReceive())).toEqual([])
    await call<Protocol.NotifyClientTerminationResponse>((cb) =>
      client.notifyClientTermination(new service.NotifyClientTerminationRequest(), metadata, cb)
    )
    expect(messagesOf(await pushReceive())).toEqual(["R1"])
  })

  it("a suspended change of invisible duration does not count another delivery attempt", async () => {
    const { client, call, metadata, receive } = await connect()
    const send = new service.SendMessageRequest().setMessagesList([message("t", "S1", new Uint8Array([1]))])
    await call<Protocol.SendMessageResponse>((cb) => client.sendMessage(send, metadata, cb))
    const attemptOf = (responses: ReadonlyArray<Protocol.ReceiveMessageResponse>) =>
      responses
        .find((r) => r.hasMessage())
        ?.getMessage()
        ?.getSystemProperties()
    const first = attemptOf(await receive(receiveRequest("g", "t")))
    expect(first?.getDeliveryAttempt()).toBe(1)
    const change = (suspend: boolean, handle: string) =>
      call<Protocol.ChangeInvisibleDurationResponse>((cb) =>
        client.changeInvisibleDuration(
          new service.ChangeInvisibleDurationRequest()
            .setGroup(resource("g"))
            .setTopic(resource("t"))
            .setReceiptHandle(handle)
            .setInvisibleDuration(Protocol.duration(0))
            .setSuspend(suspend),
          metadata,
          cb
        )
      )
    expect((await change(true, first?.getReceiptHandle() ?? "")).getStatus()?.getCode()).toBe(Code.OK)
    await new Promise((resolve) => setTimeout(resolve, 20))
    const second = attemptOf(await receive(receiveRequest("g", "t")))
    expect(second?.getDeliveryAttempt()).toBe(1)
    await change(false, second?.getReceiptHandle() ?? "")
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(attemptOf(await receive(receiveRequest("g", "t")))?.getDeliveryAttempt()).toBe(2)
  })

  it("refuses SQL92 filters", async () => {
    const { receive } = await connect()
    const request = receiveRequest("g", "t").setFilterExpression(
      new definition.FilterExpression().setType(definition.FilterType.SQL).setExpression("a > 1")
    )
    expect((await receive(request))[0]?.getStatus()?.getCode()).toBe(Code.UNSUPPORTED)
  })

  it("answers INVALID_RECEIPT_HANDLE for a handle it never issued", async () => {
    const { client, call, metadata } = await connect()
    const send = new service.SendMessageRequest().setMessagesList([message("t", "Y", new Uint8Array([1]))])
    await call<Protocol.SendMessageResponse>((cb) => client.sendMessage(send, metadata, cb))
    const request = new service.AckMessageRequest().setGroup(resource("g")).setTopic(resource("t"))
    request.addEntries().setMessageId("Y").setReceiptHandle("bogus")
    const response = await call<Protocol.AckMessageResponse>((cb) => client.ackMessage(request, metadata, cb))
    expect(response.getStatus()?.getCode()).toBe(Code.INVALID_RECEIPT_HANDLE)
    expect(response.getEntriesList()[0]?.getStatus()?.getCode()).toBe(Code.INVALID_RECEIPT_HANDLE)
  })

  it("answers a consumer's settings with the group's retry policy, FIFO flag, batch size and long-polling timeout", async () => {
    const { client, metadata } = await connect({
      maxDeliveryAttempts: 7,
      fifoGroups: ["ordered"],
      longPollingTimeoutMs: 1500
    })
    const stream = client.telemetry(metadata)
    const answer = new Promise<Protocol.TelemetryCommand>((resolve) => stream.once("data", resolve))
    stream.write(
      new service.TelemetryCommand().setSettings(
        new definition.Settings()
          .setClientType(definition.ClientType.PUSH_CONSUMER)
          .setSubscription(new definition.Subscription().setGroup(resource("ordered")))
      )
    )
    const settings = (await answer).getSettings()
    stream.end()
    expect(settings?.getBackoffPolicy()?.getMaxAttempts()).toBe(7)
    expect(settings?.getBackoffPolicy()?.hasExponentialBackoff()).toBe(true)
    expect(settings?.getSubscription()?.getFifo()).toBe(true)
    expect(settings?.getSubscription()?.getReceiveBatchSize()).toBe(32)
    expect(Protocol.millisOf(settings?.getSubscription()?.getLongPollingTimeout())).toBe(1500)
  })

  it("answers a producer's settings with the body size limit", async () => {
    const { client, metadata } = await connect({ maxMessageBytes: 1234 })
    const stream = client.telemetry(metadata)
    const answer = new Promise<Protocol.TelemetryCommand>((resolve) => stream.once("data", resolve))
    stream.write(
      new service.TelemetryCommand().setSettings(
        new definition.Settings()
          .setClientType(definition.ClientType.PRODUCER)
          .setPublishing(new definition.Publishing().setValidateMessageType(true))
      )
    )
    const settings = (await answer).getSettings()
    stream.end()
    expect(settings?.getPublishing()?.getMaxBodySize()).toBe(1234)
    expect(settings?.getBackoffPolicy()?.hasExponentialBackoff()).toBe(true)
  })
})
