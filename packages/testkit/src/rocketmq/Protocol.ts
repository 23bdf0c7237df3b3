/**
 * The RocketMQ 5 gRPC protocol as shipped by rocketmq-client-nodejs: its
 * generated message classes and the `MessagingService` definition, plus the
 * small conversions the emulator needs (status, durations, timestamps).
 *
 * The generated code is CommonJS and its serializers check `instanceof`
 * against their own module instances, so everything is loaded through the
 * client package's own `require`: the emulator and the client then share one
 * copy of every class.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import type * as DefinitionModule from "rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb.js"
import type * as ServiceGrpcModule from "rocketmq-client-nodejs/proto/apache/rocketmq/v2/service_grpc_pb.js"
import type * as ServiceModule from "rocketmq-client-nodejs/proto/apache/rocketmq/v2/service_pb.js"

const requireHere = createRequire(import.meta.url)
const requireFromClient = createRequire(requireHere.resolve("rocketmq-client-nodejs/package.json"))
const proto = "rocketmq-client-nodejs/proto/apache/rocketmq/v2"

/** Generated classes of `definition.proto`. */
export const definition: typeof DefinitionModule = requireFromClient(`${proto}/definition_pb.js`)
/** Generated classes of `service.proto`. */
export const service: typeof ServiceModule = requireFromClient(`${proto}/service_pb.js`)
/** The `MessagingService` definition for a grpc-js `Server`. */
export const serviceGrpc: typeof ServiceGrpcModule = requireFromClient(`${proto}/service_grpc_pb.js`)

/** `google.protobuf.Timestamp` as google-protobuf generates it. */
export interface Timestamp {
  getSeconds(): number
  getNanos(): number
  setSeconds(value: number): Timestamp
  setNanos(value: number): Timestamp
}

/** `google.protobuf.Duration` as google-protobuf generates it. */
export interface Duration {
  getSeconds(): number
  getNanos(): number
  setSeconds(value: number): Duration
  setNanos(value: number): Duration
}

const TimestampClass: new () => Timestamp = requireFromClient(
  "google-protobuf/google/protobuf/timestamp_pb.js"
).Timestamp
const DurationClass: new () => Duration = requireFromClient("google-protobuf/google/protobuf/duration_pb.js").Duration

/** The response codes of the protocol (`apache.rocketmq.v2.Code`). */
export const Code = definition.Code

/** A protocol status with the given code and an explanation. */
export const status = (code: number, message = ""): DefinitionModule.Status =>
  new definition.Status().setCode(code as DefinitionModule.Code).setMessage(message)

/** The OK status, shared: the emulator never mutates a status after building it. */
export const OK: DefinitionModule.Status = status(Code.OK, "OK")

/** Milliseconds of a protobuf duration (`undefined` when absent). */
export const millisOf = (duration: Duration | undefined): number | undefined =>
  duration === undefined ? undefined : duration.getSeconds() * 1000 + Math.floor(duration.getNanos() / 1_000_000)

/** Milliseconds since the epoch of a protobuf timestamp (`undefined` when absent). */
export const epochMillisOf = (timestamp: Timestamp | undefined): number | undefined =>
  timestamp === undefined ? undefined : timestamp.getSeconds() * 1000 + Math.floor(timestamp.getNanos() / 1_000_000)

/** A protobuf duration of `ms` milliseconds. */
export const duration = (ms: number): Duration =>
  new DurationClass().setSeconds(Math.floor(ms / 1000)).setNanos(Math.floor(ms % 1000) * 1_000_000)

/** A protobuf timestamp at `epochMs`. */
export const timestamp = (epochMs: number): Timestamp =>
  new TimestampClass().setSeconds(Math.floor(epochMs / 1000)).setNanos(Math.floor(epochMs % 1000) * 1_000_000)

export type Message = DefinitionModule.Message
export type Resource = DefinitionModule.Resource
export type Status = DefinitionModule.Status
export type MessageQueue = DefinitionModule.MessageQueue
export type Settings = DefinitionModule.Settings
export type TelemetryCommand = ServiceModule.TelemetryCommand
export type Endpoints = DefinitionModule.Endpoints
export type Broker = DefinitionModule.Broker
export type FilterExpression = DefinitionModule.FilterExpression
export type QueryRouteRequest = ServiceModule.QueryRouteRequest
export type QueryRouteResponse = ServiceModule.QueryRouteResponse
export type AckMessageResponse = ServiceModule.AckMessageResponse
export type ChangeInvisibleDurationResponse = ServiceModule.ChangeInvisibleDurationResponse
export type NotifyClientTerminationResponse = ServiceModule.NotifyClientTerminationResponse
export type HeartbeatRequest = ServiceModule.HeartbeatRequest
export type QueryAssignmentRequest = ServiceModule.QueryAssignmentRequest
export type SendMessageRequest = ServiceModule.SendMessageRequest
export type SendMessageResponse = ServiceModule.SendMessageResponse
export type ReceiveMessageRequest = ServiceModule.ReceiveMessageRequest
export type ReceiveMessageResponse = ServiceModule.ReceiveMessageResponse
export type AckMessageRequest = ServiceModule.AckMessageRequest
export type ForwardMessageToDeadLetterQueueRequest = ServiceModule.ForwardMessageToDeadLetterQueueRequest
export type ChangeInvisibleDurationRequest = ServiceModule.ChangeInvisibleDurationRequest
export type EndTransactionRequest = ServiceModule.EndTransactionRequest
export type NotifyClientTerminationRequest = ServiceModule.NotifyClientTerminationRequest
export type PullMessageResponse = ServiceModule.PullMessageResponse
export type RecallMessageRequest = ServiceModule.RecallMessageRequest
export type Encoding = DefinitionModule.Encoding
export type MessageType = DefinitionModule.MessageType
