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
import { answerable, hasReply } from "./request.ts";
import { ServiceAnnouncement } from "./service.ts";
import { VERSION } from "../../version.ts";

/** Delivers the messages of one subscription to the engine, synchronously on the read loop. */
export class NatsSource implements Source {
  readonly #connector: NatsConnector;
  readonly #config: NatsSourceConfig;
  readonly #log: Logger;
  /** The pipeline's name when it answers requests: it is then announced as a NATS service. */
  readonly #service: string | undefined;
  #announcement: ServiceAnnouncement | undefined;
  #sub: Subscription | undefined;

  constructor(
    connector: NatsConnector,
    config: NatsSourceConfig,
    log: Logger,
    service?: string,
  ) {
    this.#connector = connector;
    this.#config = config;
    this.#log = log;
    this.#service = service;
  }

  async start(handler: MessageHandler): Promise<void> {
    const nc = this.#connector.connection;
    const connector = this.#connector;
    const publish = connector.publish.bind(connector);
    const announcement = this.#service === undefined ? undefined : new ServiceAnnouncement(nc, {
      name: this.#service,
      version: VERSION,
      description: `Sluice pipeline "${this.#service}"`,
      endpoint: {
        name: this.#service,
        subject: this.#config.subject,
        queue: this.#config.queue ?? "",
      },
    }, this.#log);
    const observe = announcement && announcement.record.bind(announcement);
    this.#sub = nc.subscribe(this.#config.subject, {
      ...(this.#config.queue ? { queue: this.#config.queue } : {}),
      callback: (err, msg) => {
        // An exception escaping this callback would close the whole connection (nats.js reader).
        try {
          if (err) this.#log.warn("subscription error", { error: err.message });
          // A request (it has a reply subject) carries `answer`, for `reply: true` pipelines.
          else handler(hasReply(msg) ? answerable(msg, publish, observe) : msg);
        } catch (e) {
          this.#log.error("event handler failed", { error: String(e) });
        }
      },
    });
    announcement?.start();
    this.#announcement = announcement;
    await nc.flush();
  }

  async drain(): Promise<void> {
    await this.#announcement?.stop();
    this.#announcement = undefined;
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
