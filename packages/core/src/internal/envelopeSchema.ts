// Kept apart from Envelope.ts so Errors.ts can use it without an import cycle.
import { Schema } from "effect"

export const envelopeSchema = Schema.Struct({
  id: Schema.String,
  topic: Schema.String,
  key: Schema.UndefinedOr(Schema.String),
  payload: Schema.Uint8Array,
  headers: Schema.Record(Schema.String, Schema.String),
  timestamp: Schema.Number,
  deliverAt: Schema.UndefinedOr(Schema.Number)
})
