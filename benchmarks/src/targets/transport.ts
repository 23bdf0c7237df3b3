/**
 * A `BenchClient` over any Lossless `Transport`: how every `lossless` target
 * is driven, so what is measured is the contract adapters implement.
 */
import { Envelope, MessageId, Transport } from "@lossless/core"
import { Context, Effect, Layer, Result, type Scope, Stream } from "effect"
import { type BenchClient, BenchError } from "./Target.ts"

/** The user header carrying the harness's message number. */
export const seqHeader = "bench-seq"

export const fromTransport = (transport: Transport.TransportShape): BenchClient => ({
  prepare: (topic, group) =>
    transport
      .ensureTopology({ topics: [topic], groups: [{ topic, group }] })
      .pipe(Effect.mapError((cause) => new BenchError({ message: `${transport.name}: ensureTopology failed`, cause }))),

  prepareBatch: (topic, firstSeq, count, payload) => {
    const now = Date.now()
    const envelopes: Array<Envelope.Envelope> = []
    for (let i = 0; i < count; i++) {
      envelopes.push(
        Envelope.make({
          id: MessageId.fromMillis(now),
          topic,
          payload,
          timestamp: now,
          headers: { [seqHeader]: String(firstSeq + i) }
        })
      )
    }
    return Effect.flatMap(transport.publish(envelopes), (results) => {
      for (const result of results) {
        if (Result.isFailure(result)) {
          return Effect.fail(
            new BenchError({ message: `${transport.name}: publish not confirmed`, cause: result.failure })
          )
        }
      }
      return results.length === envelopes.length
        ? Effect.void
        : Effect.fail(new BenchError({ message: `${transport.name}: publish returned ${results.length} results` }))
    })
  },

  consume: (topic, group, prefetch, sink) => {
    const settled = () => sink.onSettled()
    return transport.subscribe(topic, group, { prefetch }).pipe(
      Stream.runForEachWhile((delivery) => {
        sink.onReceive(Number(delivery.envelope.headers[seqHeader]))
        return Effect.map(delivery.ack, settled)
      }),
      Effect.mapError((cause) => new BenchError({ message: `${transport.name}: consume failed`, cause }))
    )
  }
})

/** Opens a client over the transport a layer provides, for the current scope. */
/** Builds a transport layer for the scope. */
export const buildTransport = <E>(
  layer: Layer.Layer<Transport.Transport, E>
): Effect.Effect<Transport.TransportShape, BenchError, Scope.Scope> =>
  Layer.build(layer).pipe(
    Effect.map((context) => Context.get(context, Transport.Transport)),
    Effect.mapError((cause) => new BenchError({ message: "could not build the transport layer", cause }))
  )

export const fromLayer = <E>(
  layer: Layer.Layer<Transport.Transport, E>
): Effect.Effect<BenchClient, BenchError, Scope.Scope> =>
  Layer.build(layer).pipe(
    Effect.map((context) => fromTransport(Context.get(context, Transport.Transport))),
    Effect.mapError((cause) => new BenchError({ message: "could not build the transport layer", cause }))
  )
