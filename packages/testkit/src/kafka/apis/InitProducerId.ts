/**
 * InitProducerId (key 22), v0–v1: a new producer id at epoch 0 for every idempotent producer.
 * Requests with a transactional id are refused with INVALID_REQUEST: transactions are not implemented.
 *
 * @since 0.1.0
 */
import { ApiKey } from "../protocol/ApiKey.ts"
import { ErrorCode } from "../protocol/ErrorCode.ts"
import { defineApi } from "./Api.ts"

interface InitProducerIdResponse {
  readonly errorCode: number
  readonly producerId: number
  readonly producerEpoch: number
}

export const InitProducerId = defineApi<{ readonly transactionalId: string | null }, InitProducerIdResponse>({
  key: ApiKey.InitProducerId,
  name: "InitProducerId",
  minVersion: 0,
  maxVersion: 1,
  decode: (r) => {
    const transactionalId = r.nullableString()
    r.int32() // transaction_timeout_ms
    return { transactionalId }
  },
  handle: ({ broker }, request) =>
    request.transactionalId !== null
      ? { errorCode: ErrorCode.INVALID_REQUEST, producerId: -1, producerEpoch: -1 }
      : { errorCode: ErrorCode.NONE, ...broker.producers.allocate() },
  fail: (_, errorCode) => ({ errorCode, producerId: -1, producerEpoch: -1 }),
  encode: (w, response) => {
    w.int32(0).int16(response.errorCode).int64(response.producerId).int16(response.producerEpoch)
  }
})
