/**
 * The shape every API module has: decode a request body, handle it against the broker, build an
 * error response (for fault injection), and encode the response body.
 *
 * @since 0.1.0
 */
import type { Broker } from "../Broker.ts"
import type { Reader } from "../protocol/Reader.ts"
import type { Writer } from "../protocol/Writer.ts"

export interface RequestContext {
  readonly broker: Broker
  readonly version: number
  readonly clientId: string
}

export interface Api<Req, Res> {
  readonly key: number
  readonly name: string
  readonly minVersion: number
  readonly maxVersion: number
  readonly decode: (reader: Reader, version: number) => Req
  readonly handle: (context: RequestContext, request: Req) => Res | Promise<Res>
  /** The response with `errorCode` in every error field, without applying the request. */
  readonly fail: (request: Req, errorCode: number, version: number) => Res
  readonly encode: (writer: Writer, response: Res, version: number) => void
  /**
   * What to do instead of answering when the client expects no response (Produce with acks=0):
   * "silent" sends nothing, "close" closes the connection, which is how a broker tells such a
   * client that the request failed. Undefined means answer as usual.
   */
  readonly withoutResponse?: (request: Req, response: Res) => "silent" | "close" | undefined
}

/** Erases the request and response types so APIs can sit in one table. */
// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous registry
export type AnyApi = Api<any, any>

export const defineApi = <Req, Res>(api: Api<Req, Res>): Api<Req, Res> => api
