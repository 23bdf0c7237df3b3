/**
 * Shared setup of the RabbitMQ suites: the broker's URL, transport options
 * suited to tests, a wrapper that deletes what a suite declared, and
 * `rabbitmqctl` for fault injection.
 */
import { execFile } from "node:child_process"
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { Transport } from "@lossless/core"
import { type RabbitConfig, RabbitTopology } from "@lossless/rabbitmq"
import { Services } from "@lossless/testkit"
import * as amqp from "amqplib"
import { Effect, Layer, Redacted, Schedule } from "effect"

/** The broker the suites run against (`LOSSLESS_RABBITMQ_URL`, default the local one). */
export const url = Services.url("rabbitmq")

/** Options for a test transport: fast reconnects, short-lived retry queues. */
export const options = (extra: Partial<RabbitConfig.RabbitOptions> = {}): RabbitConfig.RabbitOptions => ({
  url: Redacted.make(url),
  connectionName: "lossless-test",
  retryQueueIdle: "1 minute",
  reconnectSchedule: Schedule.spaced("200 millis"),
  reconnectWait: "10 seconds",
  ...extra
})

/** Runs `use` on a channel of a connection of its own (to inspect or sabotage the broker's state). */
export const admin = <A>(use: (channel: amqp.Channel) => Promise<A>): Effect.Effect<A> =>
  Effect.promise(async () => {
    const connection = await amqp.connect(url)
    try {
      const channel = await connection.createChannel()
      channel.on("error", () => {})
      return await use(channel)
    } finally {
      await connection.close().catch(() => {})
    }
  })

/** Deletes the queues and exchanges of `topology` with a connection of its own. */
export const deleteTopology = (
  topics: Iterable<string>,
  groups: Iterable<{ readonly topic: string; readonly group: string }>,
  prefix = ""
) =>
  Effect.promise(async () => {
    const connection = await amqp.connect(url)
    try {
      const channel = await connection.createChannel()
      channel.on("error", () => {})
      for (const { topic, group } of groups) {
        await channel.deleteQueue(RabbitTopology.workQueue(prefix, topic, group))
        await channel.deleteQueue(RabbitTopology.deadLetterQueue(prefix, topic, group))
      }
      for (const topic of topics) await channel.deleteExchange(RabbitTopology.exchange(prefix, topic))
      await channel.close()
    } finally {
      await connection.close().catch(() => {})
    }
  }).pipe(Effect.ignore)

/**
 * The transport below, recording what is declared through it and deleting
 * all of it when the layer is released, so suites leave the broker as they
 * found it. Retry queues expire on their own.
 */
export const tidy = <E>(inner: Layer.Layer<Transport.Transport, E>, prefix = ""): Layer.Layer<Transport.Transport, E> =>
  Layer.effect(
    Transport.Transport,
    Effect.gen(function* () {
      const transport = yield* Transport.Transport
      const topics = new Set<string>()
      const groups = new Map<string, { readonly topic: string; readonly group: string }>()
      yield* Effect.addFinalizer(() => deleteTopology(topics, groups.values(), prefix))
      return Transport.Transport.of({
        ...transport,
        ensureTopology: (topology) =>
          Effect.tap(transport.ensureTopology(topology), () =>
            Effect.sync(() => {
              for (const topic of topology.topics) topics.add(topic)
              for (const g of topology.groups) {
                topics.add(g.topic)
                groups.set(`${g.topic}/${g.group}`, g)
              }
            })
          )
      })
    })
  ).pipe(Layer.provide(inner))

const run = promisify(execFile)
const sbin = { ...process.env, PATH: `${process.env.PATH}:/usr/local/sbin:/usr/sbin:/sbin` }
const composeFile = fileURLToPath(new URL("../../../docker-compose.yml", import.meta.url))

/** How to run `rabbitmqctl` against the broker under test: on this machine, or in its Compose container. */
type Controller = (args: ReadonlyArray<string>) => Promise<string>

const local: Controller = (args) => run("rabbitmqctl", [...args], { env: sbin, timeout: 60_000 }).then((r) => r.stdout)
const compose: Controller = (args) =>
  run("docker", ["compose", "-f", composeFile, "exec", "-T", "rabbitmq", "rabbitmqctl", ...args], {
    timeout: 60_000
  }).then((r) => r.stdout)

let controller: Controller | undefined

/**
 * Whether `rabbitmqctl` can control the broker under test: the local
 * installation (as root, like the services script's), or the Compose
 * container `pnpm services:up` started.
 */
export const canControlBroker = async (): Promise<boolean> => {
  for (const candidate of [local, compose]) {
    try {
      await candidate(["status"])
      controller = candidate
      return true
    } catch {
      // try the next way
    }
  }
  return false
}

/** Runs `rabbitmqctl` (after `canControlBroker` found how); resolves to its output. */
export const rabbitmqctl = (...args: Array<string>) =>
  Effect.promise(() => {
    if (controller === undefined) throw new Error("rabbitmqctl is not available for the broker under test")
    return controller(args)
  })

const lockFile = join(tmpdir(), "lossless-rabbitmq-suites.lock")

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Takes the broker for this test file alone and returns the release.
 *
 * Test files run in parallel, and some of these suites close every
 * connection or restart the broker: the RabbitMQ suites take turns instead,
 * through a lock file naming the holder's process (a lock whose process is
 * gone is taken over).
 */
export const exclusiveBroker = async (): Promise<() => void> => {
  for (;;) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: "wx" })
      const release = () => rmSync(lockFile, { force: true })
      process.once("exit", release)
      return release
    } catch {
      let holder = Number.NaN
      try {
        holder = Number(readFileSync(lockFile, "utf8"))
      } catch {
        continue
      }
      // A holder that died, or that held it far longer than any suite runs, has left it behind.
      const age = Date.now() - (statSync(lockFile, { throwIfNoEntry: false })?.mtimeMs ?? Date.now())
      if ((Number.isInteger(holder) && holder > 0 && !alive(holder)) || age > 10 * 60_000) {
        rmSync(lockFile, { force: true })
        continue
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}
