/**
 * Messages between the wire and the store: what a producer sent becomes an
 * {@link IncomingMessage}; a stored message goes out to a consumer with the
 * system properties of its delivery (receipt handle, attempt, offsets, body
 * digest).
 *
 * @since 0.1.0
 */
import * as Names from "./Names.ts"
import * as Protocol from "./Protocol.ts"
import type { IncomingMessage, StoredMessage } from "./Topics.ts"

const { definition } = Protocol

/** The parts of a sent message the store keeps. */
export const decode = (message: Protocol.Message, topic: string): IncomingMessage => {
  const system = message.getSystemProperties() ?? new definition.SystemProperties()
  const properties: Record<string, string> = {}
  for (const [key, value] of message.getUserPropertiesMap().entries()) properties[key] = value
  const u8 = message.getBody_asU8()
  return {
    topic,
    messageId: system.getMessageId(),
    body: Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength),
    properties,
    keys: system.getKeysList(),
    tag: system.hasTag() ? system.getTag() : undefined,
    messageGroup: system.hasMessageGroup() ? system.getMessageGroup() : undefined,
    deliveryTimestamp: Protocol.epochMillisOf(system.getDeliveryTimestamp()),
    messageType: system.getMessageType(),
    bodyEncoding: system.getBodyEncoding(),
    bornTimestamp: Protocol.epochMillisOf(system.getBornTimestamp()) ?? Date.now(),
    bornHost: system.getBornHost(),
    traceContext: system.hasTraceContext() ? system.getTraceContext() : undefined,
    deadLetterOf: undefined,
    queueId: system.getQueueId()
  }
}

/** The delivery-specific system properties of a received message. */
export interface DeliveryInfo {
  readonly receiptHandle: string
  readonly attempt: number
  readonly invisibleMs: number
}

/** A stored message as a consumer receives it. */
export const encode = (
  message: StoredMessage,
  delivery: DeliveryInfo | undefined,
  storeHost: string,
  namespace: string
): Protocol.Message => {
  const system = new definition.SystemProperties()
    .setKeysList(message.keys as Array<string>)
    .setMessageId(message.messageId)
    .setBodyDigest(new definition.Digest().setType(definition.DigestType.CRC32).setChecksum(message.bodyCrc32))
    .setBodyEncoding(message.bodyEncoding as Protocol.Encoding)
    .setMessageType(message.messageType as Protocol.MessageType)
    .setBornTimestamp(Protocol.timestamp(message.bornTimestamp))
    .setBornHost(message.bornHost)
    .setStoreTimestamp(Protocol.timestamp(message.storeTimestamp))
    .setStoreHost(storeHost)
    .setQueueId(message.queueId)
    .setQueueOffset(message.queueOffset)
  if (message.tag !== undefined) system.setTag(message.tag)
  if (message.messageGroup !== undefined) system.setMessageGroup(message.messageGroup)
  if (message.deliveryTimestamp !== undefined)
    system.setDeliveryTimestamp(Protocol.timestamp(message.deliveryTimestamp))
  if (message.traceContext !== undefined) system.setTraceContext(message.traceContext)
  if (message.deadLetterOf !== undefined) {
    system.setDeadLetterQueue(
      new definition.DeadLetterQueue()
        .setTopic(Names.unqualify(message.deadLetterOf.topic, namespace))
        .setMessageId(message.deadLetterOf.messageId)
    )
  }
  if (delivery !== undefined) {
    system
      .setReceiptHandle(delivery.receiptHandle)
      .setDeliveryAttempt(delivery.attempt)
      .setInvisibleDuration(Protocol.duration(delivery.invisibleMs))
  }
  const encoded = new definition.Message()
    .setTopic(
      new definition.Resource().setName(Names.unqualify(message.topic, namespace)).setResourceNamespace(namespace)
    )
    .setSystemProperties(system)
    .setBody(message.body)
  const userProperties = encoded.getUserPropertiesMap()
  for (const key in message.properties) userProperties.set(key, message.properties[key] as string)
  return encoded
}
