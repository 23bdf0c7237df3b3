/**
 * The part of rascal's API the peer target uses. The package ships no types;
 * these follow its README (promise API: `BrokerAsPromised`).
 */
declare module "rascal" {
  import type { EventEmitter } from "node:events"

  interface Message {
    readonly properties: { readonly headers?: Record<string, unknown> | undefined }
  }

  type AckOrNack = (error?: Error, recovery?: unknown) => void

  interface SubscriberSession extends EventEmitter {
    on(event: "message", listener: (message: Message, content: unknown, ackOrNack: AckOrNack) => void): this
    on(
      event: "error" | "invalid_content" | "redeliveries_exceeded" | "cancelled",
      listener: (...args: Array<unknown>) => void
    ): this
    cancel(): Promise<void>
  }

  interface PublicationSession extends EventEmitter {
    on(event: "success", listener: (messageId: string) => void): this
    on(event: "error", listener: (error: Error, messageId: string) => void): this
    on(event: "return", listener: (message: Message) => void): this
  }

  interface BrokerAsPromised extends EventEmitter {
    publish(name: string, content: Buffer, overrides?: Record<string, unknown>): Promise<PublicationSession>
    subscribe(name: string, overrides?: Record<string, unknown>): Promise<SubscriberSession>
    shutdown(): Promise<void>
  }

  const rascal: {
    readonly BrokerAsPromised: { create(config: Record<string, unknown>): Promise<BrokerAsPromised> }
    withDefaultConfig(config: Record<string, unknown>): Record<string, unknown>
  }
  export default rascal
  export type { AckOrNack, BrokerAsPromised, Message, PublicationSession, SubscriberSession }
}
