/**
 * One AMQP connection, kept open: connects on the configured schedule,
 * notices a loss at once (socket close, heartbeat timeout, broker close),
 * reconnects on the reconnect schedule, runs the recovery hooks (topology
 * re-declaration) and only then lets waiting operations continue.
 *
 * Channels belong to one connection. Whoever holds a `ChannelHandle` can
 * tell whether it is still open, so a delivery never settles on a channel
 * other than the one it came from.
 */

import type { ConnectionLost, TransportUnavailable } from "@lossless/core"
import * as amqp from "amqplib"
import { Deferred, Duration, Effect, Latch, Redacted, type Scope } from "effect"
import type { RabbitConfig } from "../RabbitConfig.ts"
import * as RabbitConfigModule from "../RabbitConfig.ts"
import * as RabbitError from "../RabbitError.ts"

export interface Connection {
  /** Counts connections made by this manager, from 1. */
  readonly generation: number
  readonly model: amqp.ChannelModel
  /** False once the connection closed, for whatever reason. */
  open: boolean
  /** Why it closed, for error messages. */
  closeReason: string
  /** Done when the connection has closed. */
  readonly closed: Deferred.Deferred<void>
  /** Open unless the broker blocked publishers (memory or disk alarm). */
  readonly unblocked: Latch.Latch
  /** Every channel opened on it and not yet closed. */
  readonly channels: Set<ChannelHandle>
}

export interface ChannelHandle<C extends amqp.Channel = amqp.Channel> {
  readonly channel: C
  readonly connection: Connection
  /** False once the channel closed (by the broker, the connection, or us). */
  open: boolean
  /** The broker's error that closed the channel, when it did. */
  error: unknown
  /** Done when the channel has closed. */
  readonly closed: Deferred.Deferred<void>
}

export interface ConnectionManager {
  readonly config: RabbitConfig
  /** The open connection; while reconnecting, waits up to `reconnectWait`, then fails with `ConnectionLost`. */
  readonly connection: Effect.Effect<Connection, ConnectionLost | TransportUnavailable>
  /** The open connection, waiting as long as reconnecting goes on (subscriptions). */
  readonly awaitConnection: Effect.Effect<Connection, TransportUnavailable>
  /** Opens a channel on `connection`. */
  readonly openChannel: <K extends "plain" | "confirm">(
    connection: Connection,
    kind: K
  ) => Effect.Effect<ChannelHandle<K extends "confirm" ? amqp.ConfirmChannel : amqp.Channel>, ConnectionLost>
  /** Closes a channel if it is still open (gracefully, bounded in time). */
  readonly closeChannel: (handle: ChannelHandle) => Effect.Effect<void>
  /** Registers work to run on every new connection before operations may use it. */
  readonly onReconnect: (hook: (connection: Connection) => Effect.Effect<void, unknown>) => void
  /** Text with the URL's password removed. */
  readonly scrub: (text: string) => string
}

const noop = (): void => {}

/** The parts of amqplib's connection `coalesceWrites` relies on (not in its published types). */
interface Muxed {
  readonly muxer?: { _readIncoming?: () => void; readonly out?: { cork?: () => void; uncork?: () => void } }
}

/**
 * Makes amqplib write what its channels queued in one system call instead of
 * one per frame. amqplib moves the frames of every channel to the socket in
 * one pass (its muxer's `_readIncoming`), one `socket.write` each: a published
 * message costs a `write(2)`, which is much of the CPU a publish costs on a
 * local broker. Corking the socket for the pass turns them into one `writev`
 * of the same bytes in the same order; backpressure is unchanged (a corked
 * write still returns false once the socket's buffer is over its high-water
 * mark, and the muxer then waits for 'drain' as before). Left alone when
 * amqplib's internals are not as expected.
 */
const coalesceWrites = (model: amqp.ChannelModel): void => {
  const muxer = (model.connection as Muxed).muxer
  const read = muxer?._readIncoming
  const cork = muxer?.out?.cork
  const uncork = muxer?.out?.uncork
  if (muxer === undefined || typeof read !== "function" || typeof cork !== "function" || typeof uncork !== "function")
    return
  const out = muxer.out
  muxer._readIncoming = function (this: unknown) {
    cork.call(out)
    try {
      read.call(this)
    } finally {
      uncork.call(out)
    }
  }
}

/** amqplib's connection options from the resolved settings (the password stays out of every log). */
const connectOptions = (config: RabbitConfig): amqp.Options.Connect => {
  const url = Redacted.value(config.url)
  const tuning = config.tuning
  const int = (key: string): number | undefined => (tuning[key] === undefined ? undefined : Number(tuning[key]))
  const options: amqp.Options.Connect = {
    protocol: url.protocol.replace(/:$/, ""),
    hostname: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port === "" ? (url.protocol === "amqps:" ? 5671 : 5672) : Number(url.port),
    username: url.username === "" && url.password === "" ? "guest" : decodeURIComponent(url.username),
    password: url.username === "" && url.password === "" ? "guest" : decodeURIComponent(url.password),
    // amqplib unescapes the vhost itself; "/" (an empty path) is the default vhost.
    vhost: url.pathname.length > 1 ? url.pathname.slice(1) : "/",
    heartbeat: Math.round(Duration.toMillis(config.heartbeat) / 1000)
  }
  const frameMax = int("frameMax")
  if (frameMax !== undefined) options.frameMax = frameMax
  const channelMax = int("channelMax")
  if (channelMax !== undefined) options.channelMax = channelMax
  const maxFrameSize = int("maxFrameSize")
  if (maxFrameSize !== undefined) options.maxFrameSize = maxFrameSize
  if (tuning.locale !== undefined) options.locale = tuning.locale
  return options
}

/** Starts the manager in the current scope: the first connection is made before this succeeds. */
export const make = (config: RabbitConfig): Effect.Effect<ConnectionManager, TransportUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const secret = RabbitConfigModule.password(config)
    const where = RabbitConfigModule.display(config)
    const scrub = (text: string) => RabbitError.scrub(text, secret)
    const options = connectOptions(config)
    const socketOptions: amqp.SocketOptions = {
      // Nagle's algorithm holds small frames (a publish, an ack) back until the previous segment is
      // acknowledged, which meets the peer's delayed ACK: tens of milliseconds per message at low rates.
      noDelay: true,
      ...config.socket,
      timeout: Math.max(1, Math.round(Duration.toMillis(config.connectTimeout))),
      clientProperties: { ...config.socket.clientProperties, connection_name: config.connectionName }
    }
    const refused = new WeakSet<TransportUnavailable>()
    const hooks: Array<(connection: Connection) => Effect.Effect<void, unknown>> = []
    let generation = 0
    let shuttingDown = false
    let ready = Deferred.makeUnsafe<Connection, TransportUnavailable>()
    let current: Connection | undefined

    const wrap = (model: amqp.ChannelModel): Connection => {
      const connection: Connection = {
        generation: ++generation,
        model,
        open: true,
        closeReason: "",
        closed: Deferred.makeUnsafe<void>(),
        unblocked: Latch.makeUnsafe(true),
        channels: new Set()
      }
      // Without an 'error' listener an emitted error would be thrown; the reason also arrives with 'close'.
      model.on("error", (error: unknown) => {
        connection.closeReason = scrub(RabbitError.describe(error))
      })
      model.on("close", (error?: unknown) => {
        connection.open = false
        if (error !== undefined) connection.closeReason = scrub(RabbitError.describe(error))
        else if (connection.closeReason === "") connection.closeReason = "closed"
        // From now on callers wait for the next connection instead of getting this one.
        if (current === connection) {
          current = undefined
          if (Deferred.isDoneUnsafe(ready) && !shuttingDown) ready = Deferred.makeUnsafe()
        }
        // Publishers waiting for 'unblocked' must wake to see the connection gone.
        connection.unblocked.openUnsafe()
        Deferred.doneUnsafe(connection.closed, Effect.void)
      })
      model.on("blocked", () => {
        connection.unblocked.closeUnsafe()
      })
      model.on("unblocked", () => {
        connection.unblocked.openUnsafe()
      })
      coalesceWrites(model)
      return connection
    }

    // A connection that completes after its attempt was abandoned is closed, not leaked.
    const connectOnce: Effect.Effect<Connection, TransportUnavailable> = Effect.callback<
      amqp.ChannelModel,
      TransportUnavailable
    >((resume, signal) => {
      amqp.connect(options, socketOptions).then(
        (model) => {
          if (signal.aborted) model.close().catch(noop)
          else resume(Effect.succeed(model))
        },
        (error: unknown) => {
          const failure = RabbitError.unavailable(`cannot connect to ${where}: ${scrub(RabbitError.describe(error))}`)
          if (RabbitError.isRefusedLogin(error)) refused.add(failure)
          resume(Effect.fail(failure))
        }
      )
    }).pipe(Effect.map(wrap))

    const runHooks = (connection: Connection) =>
      Effect.gen(function* () {
        for (const hook of hooks) {
          yield* hook(connection).pipe(
            Effect.catchCause((cause) =>
              Effect.logWarning(`lossless: rabbitmq recovery step failed on ${where}`, cause)
            )
          )
        }
        if (!connection.open) {
          return yield* RabbitError.unavailable(
            `connection to ${where} closed during recovery: ${connection.closeReason}`
          )
        }
      })

    const openChannel = <K extends "plain" | "confirm">(connection: Connection, kind: K) =>
      Effect.tryPromise({
        try: () => (kind === "confirm" ? connection.model.createConfirmChannel() : connection.model.createChannel()),
        catch: (error) => RabbitError.connectionLost(`cannot open a channel: ${scrub(RabbitError.describe(error))}`)
      }).pipe(
        Effect.map((channel) => {
          const handle: ChannelHandle = {
            channel,
            connection,
            open: true,
            error: undefined,
            closed: Deferred.makeUnsafe<void>()
          }
          connection.channels.add(handle)
          // A broker close is emitted as 'error' first; keep it to say why later failures happened.
          channel.prependListener("error", (error: unknown) => {
            handle.error = error
          })
          // Prepended: amqplib's own 'close' listener fails unconfirmed publishes, and whoever they wake
          // must already see the channel closed.
          channel.prependListener("close", () => {
            handle.open = false
            connection.channels.delete(handle)
            Deferred.doneUnsafe(handle.closed, Effect.void)
          })
          return handle as ChannelHandle<K extends "confirm" ? amqp.ConfirmChannel : amqp.Channel>
        })
      )

    const closeChannel = (handle: ChannelHandle): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (!handle.open) return Effect.void
        // Settlements on this channel fail from here on, even before the broker answers the close.
        handle.open = false
        return Effect.promise(() => handle.channel.close().catch(noop)).pipe(
          Effect.timeoutOption("2 seconds"),
          Effect.asVoid
        )
      })

    // At startup a refused login fails at once: it is a configuration error, not an outage.
    const first = yield* connectOnce.pipe(
      Effect.retry({ schedule: config.connectSchedule, while: (error) => !refused.has(error) }),
      Effect.tapError((e) => Effect.logWarning(`lossless: ${e.message}`))
    )
    current = first
    Deferred.doneUnsafe(ready, Effect.succeed(first))

    // Each turn waits for the current connection to close, then makes the next one.
    let watched = first
    const supervise = Effect.gen(function* () {
      yield* Deferred.await(watched.closed)
      if (shuttingDown) return yield* Effect.interrupt
      yield* Effect.logWarning(`lossless: rabbitmq connection to ${where} lost (${watched.closeReason}); reconnecting`)
      const next = yield* connectOnce.pipe(
        Effect.tap(runHooks),
        Effect.tapError((error) => Effect.logDebug(`lossless: ${error.message}`)),
        Effect.retry(config.reconnectSchedule),
        Effect.result
      )
      if (next._tag === "Failure") {
        const gaveUp = RabbitError.unavailable(`gave up reconnecting to ${where}: ${next.failure.reason}`)
        yield* Effect.logError(`lossless: ${gaveUp.message}`)
        Deferred.doneUnsafe(ready, Effect.fail(gaveUp))
        return yield* Effect.interrupt
      }
      watched = next.success
      if (shuttingDown) {
        // Made while the transport was closing: close it rather than leave it open.
        yield* Effect.promise(() => next.success.model.close().catch(noop)).pipe(Effect.timeoutOption("2 seconds"))
        return yield* Effect.interrupt
      }
      if (next.success.open) {
        current = next.success
        if (Deferred.isDoneUnsafe(ready)) ready = Deferred.makeUnsafe()
        Deferred.doneUnsafe(ready, Effect.succeed(next.success))
        yield* Effect.logInfo(`lossless: rabbitmq connection to ${where} restored`)
      }
    })
    yield* Effect.forkScoped(Effect.forever(supervise))

    // Closing: channels first (publish confirms drain in their owners' finalizers), then the connection.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        shuttingDown = true
        // Whoever waits for a connection from now on is told the transport is gone.
        if (Deferred.isDoneUnsafe(ready)) ready = Deferred.makeUnsafe()
        Deferred.doneUnsafe(ready, Effect.fail(RabbitError.unavailable("the transport was shut down")))
        const connection = current
        current = undefined
        if (connection === undefined || !connection.open) return
        yield* Effect.forEach([...connection.channels], closeChannel, { concurrency: "unbounded", discard: true })
        yield* Effect.promise(() => connection.model.close().catch(noop)).pipe(Effect.timeoutOption("2 seconds"))
      })
    )

    const awaitConnection = Effect.suspend(() => Deferred.await(ready))
    const waitMillis = Duration.toMillis(config.reconnectWait)
    const connection: ConnectionManager["connection"] = Effect.suspend(() => {
      if (current?.open) return Effect.succeed(current)
      return awaitConnection.pipe(
        Effect.timeoutOrElse({
          duration: config.reconnectWait,
          orElse: () =>
            Effect.fail(
              RabbitError.connectionLost(`not connected to ${where}; still reconnecting after ${waitMillis} ms`)
            )
        })
      )
    })

    return {
      config,
      connection,
      awaitConnection,
      openChannel,
      closeChannel,
      onReconnect: (hook) => {
        hooks.push(hook)
      },
      scrub
    }
  })
