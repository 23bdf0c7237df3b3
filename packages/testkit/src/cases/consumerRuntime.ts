import { expect } from "@effect/vitest"
import { Consumer, DeadLetter, PermanentFailure, Publisher, Topic } from "@lossless/core"
import { Effect, Exit, Latch, Schedule, Schema, Scope } from "effect"
import type { Suite } from "../Conformance.ts"
import { assertExactlyOnce, declare, envelope, eventually, publishAll, subscribe, uniqueName } from "../Harness.ts"

const Job = Schema.Struct({ n: Schema.Int })
const fast = { immediate: 0, delayed: Schedule.spaced("50 millis").pipe(Schedule.upTo({ times: 2 })) }
const sendAll = (topic: Topic.Topic<typeof Job.Type>, n: number, key?: (i: number) => string) =>
  Publisher.sendBatch(
    topic,
    Array.from({ length: n }, (_, i) => ({ payload: { n: i }, key: key?.(i) }))
  ).pipe(Effect.provide(Publisher.layer()))

export const consumerRuntimeCases = ({ it, receiveTimeout, quietPeriod }: Suite) => {
  it.effect("the consumer acks only after the handler succeeded; a crash before then redelivers", () =>
    Effect.gen(function* () {
      const topic = Topic.make(uniqueName("ack-after"), Job)
      const group = uniqueName("g")
      yield* declare([topic.name], [[topic.name, group]])
      const started = yield* Latch.make()
      const scope = yield* Scope.make()
      yield* Consumer.start({
        topic,
        group,
        shutdownTimeout: "10 millis",
        handler: () => Effect.andThen(started.open, Effect.never)
      }).pipe(Scope.provide(scope))
      yield* sendAll(topic, 1)
      yield* started.await
      // The handler never finished: stopping must not have acked it.
      yield* Scope.close(scope, Exit.void)
      const handled: Array<number> = []
      yield* Consumer.start({ topic, group, handler: (m) => Effect.sync(() => handled.push(m.payload.n)) })
      yield* eventually("the redelivered message to be handled", () => handled.length === 1, receiveTimeout)
      expect(handled).toEqual([0])
    })
  )

  it.effect("a failing message is retried with its attempt count, then dead-lettered with the reason", () =>
    Effect.gen(function* () {
      const topic = Topic.make(uniqueName("retry-dlq"), Job)
      const group = uniqueName("g")
      yield* declare([topic.name], [[topic.name, group]])
      const attempts: Array<number> = []
      yield* Consumer.start({
        topic,
        group,
        retry: fast,
        handler: (_, context) =>
          Effect.suspend(() => {
            attempts.push(context.attempt)
            return Effect.fail(new Error("inventory service returned 503"))
          })
      })
      yield* sendAll(topic, 1)
      const dead = yield* subscribe(topic.name, group, { source: "dead-letters", receiveTimeout })
      const letter = yield* dead.next()
      expect(attempts).toEqual([1, 2, 3])
      const reason = DeadLetter.reason(letter.envelope)
      expect(reason).toMatchObject({ originalTopic: topic.name, group, attempt: 3 })
      expect(reason?.error).toContain("inventory service returned 503")
      yield* letter.ack
    })
  )

  it.effect("a poison message does not block the messages behind it", () =>
    Effect.gen(function* () {
      const topic = Topic.make(uniqueName("poison"), Job)
      const group = uniqueName("g")
      yield* declare([topic.name], [[topic.name, group]])
      const handled: Array<number> = []
      yield* Consumer.start({
        topic,
        group,
        concurrency: 1,
        retry: fast,
        handler: (message) =>
          message.payload.n === 0
            ? Effect.fail(new PermanentFailure({ reason: "cannot be parsed by the ledger" }))
            : Effect.sync(() => handled.push(message.payload.n))
      })
      // All on one key: the poison message is first in line for the same worker.
      yield* sendAll(topic, 20, () => "same-key")
      yield* eventually("the 19 good messages", () => handled.length === 19, receiveTimeout)
      expect(handled).toEqual(Array.from({ length: 19 }, (_, i) => i + 1))
      const dead = yield* subscribe(topic.name, group, { source: "dead-letters", receiveTimeout })
      expect(DeadLetter.reason((yield* dead.next()).envelope)?.error).toContain("cannot be parsed by the ledger")
    })
  )

  it.effect("an undecodable payload is dead-lettered without reaching the handler", () =>
    Effect.gen(function* () {
      const topic = Topic.make(uniqueName("undecodable"), Job)
      const group = uniqueName("g")
      yield* declare([topic.name], [[topic.name, group]])
      let calls = 0
      yield* Consumer.start({ topic, group, handler: () => Effect.sync(() => calls++) })
      yield* publishAll([envelope(topic.name, { payload: "not json" })])
      const dead = yield* subscribe(topic.name, group, { source: "dead-letters", receiveTimeout })
      expect(DeadLetter.reason((yield* dead.next()).envelope)?.error).toContain("DecodeFailed")
      expect(calls).toBe(0)
    })
  )

  it.effect("graceful shutdown finishes running handlers; nothing is lost or handled twice across a restart", () =>
    Effect.gen(function* () {
      const topic = Topic.make(uniqueName("shutdown"), Job)
      const group = uniqueName("g")
      yield* declare([topic.name], [[topic.name, group]])
      const handled: Array<string> = []
      const handler = (message: { id: string }) =>
        Effect.sleep("20 millis").pipe(Effect.andThen(Effect.sync(() => handled.push(message.id))))
      const sent = yield* sendAll(topic, 60)
      const first = yield* Scope.make()
      yield* Consumer.start({ topic, group, concurrency: 4, ordering: "none", handler }).pipe(Scope.provide(first))
      yield* eventually("some messages handled", () => handled.length >= 10, receiveTimeout)
      yield* Scope.close(first, Exit.void)
      const atStop = handled.length
      yield* Consumer.start({ topic, group, concurrency: 4, ordering: "none", handler })
      yield* eventually("all messages handled", () => handled.length >= sent.length, receiveTimeout)
      const sub = yield* subscribe(topic.name, group, { receiveTimeout })
      yield* sub.nothingWithin(quietPeriod)
      expect(atStop).toBeLessThan(sent.length)
      assertExactlyOnce(
        sent.map((s) => s.id),
        handled
      )
    })
  )
}
