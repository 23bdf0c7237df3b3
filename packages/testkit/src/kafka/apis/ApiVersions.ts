/**
 * ApiVersions (key 18), v0–v2: the version range of every API the emulator implements.
 *
 * @since 0.1.0
 */
import { ApiKey } from "../protocol/ApiKey.ts"
import { ErrorCode } from "../protocol/ErrorCode.ts"
import type { Writer } from "../protocol/Writer.ts"
import { type AnyApi, defineApi } from "./Api.ts"

export interface ApiVersionsResponse {
  readonly errorCode: number
  readonly apis: ReadonlyArray<{ readonly key: number; readonly minVersion: number; readonly maxVersion: number }>
}

/** Encodes the response; also used in the v0 layout to answer an unsupported ApiVersions version. */
export const encodeApiVersions = (w: Writer, response: ApiVersionsResponse, version: number): void => {
  w.int16(response.errorCode).array(response.apis, (w, api) =>
    w.int16(api.key).int16(api.minVersion).int16(api.maxVersion)
  )
  if (version >= 1) w.int32(0)
}

export const makeApiVersions = (registry: () => ReadonlyArray<AnyApi>) =>
  defineApi<null, ApiVersionsResponse>({
    key: ApiKey.ApiVersions,
    name: "ApiVersions",
    minVersion: 0,
    maxVersion: 2,
    decode: () => null,
    handle: () => ({
      errorCode: ErrorCode.NONE,
      apis: registry().map((api) => ({ key: api.key, minVersion: api.minVersion, maxVersion: api.maxVersion }))
    }),
    fail: (_, errorCode) => ({ errorCode, apis: [] }),
    encode: encodeApiVersions
  })
