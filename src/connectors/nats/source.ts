/**
 * A NATS subscription as a pipeline source: subject with wildcards, optional queue group.
 *
 * @module
 */
import type { Subscription } from "@nats-io/nats-core";
import type { MessageHandler, Source } from "../../engine/types.ts";
import type { Logger } from "../../log.ts";
import type { NatsConnector } from "./client.ts";
import type { NatsSourceConfig } from "./schema.ts";
import { answerable } from "./request.ts";

/** Delivers the messages of one subscription to the engine, synchronously on the read loop. */
export class NatsSource implements Source {
  readonly #connector: NatsConnector;
  readonly #config: NatsSourceConfig;
  readonly #log: Logger;
  #sub: Subscription | undefined;

  constructor(connector: NatsConnector, config: NatsSourceConfig, log: Logger) {
    this.#connector = connector;
    this.#config = config;
    this.#log = log;
  }

  async start(handler: MessageHandler): Promise<void> {
    const nc = this.#connector.connection;
    const connector = this.#connector;
    const publish = connector.publish.bind(connector);
    this.#sub = nc.subscribe(this.#config.subject, {
      ...(this.#config.queue ? { queue: this.#config.queue } : {}),
      callback: (err, msg) => {
        // An exception escaping this callback would close the whole connection (nats.js reader).
        try {
          if (err) this.#log.warn("subscription error", { error: err.message });
          // A request (it has a reply subject) carries `answer`, for `reply: true` pipelines.
          else handler(msg.reply ? answerable(msg, publish) : msg);
        } catch (e) {
          this.#log.error("event handler failed", { error: String(e) });
        }
      },
    });
    await nc.flush();
  }

  async drain(): Promise<void> {
    const sub = this.#sub;
    this.#sub = undefined;
    if (!sub || sub.isClosed()) return;
    try {
      await sub.drain();
    } catch {
      // The connection is already closed: there is nothing left to deliver.
    }
  }
}
