/**
 * A `reply: true` pipeline announced as a NATS service: it answers the discovery requests of the
 * NATS services protocol (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`, each also `.<name>` and
 * `.<name>.<id>`), so `nats micro ls` and the services clients of nats.js find it, and reports
 * request statistics counted where the answers are sent.
 *
 * Written against the protocol rather than with `@nats-io/services`: that package (3.0.0-25)
 * pulls in a second, pre-release nats-core, and counts errors and processing time only for
 * handlers that answer before they return, while a pipeline may answer later (a request
 * processor waits for its own reply).
 *
 * @module
 */
import { type Msg, type NatsConnection, nuid, type Subscription } from "@nats-io/nats-core";
import type { Logger } from "../../log.ts";

/** What a service says about itself. */
export interface ServiceIdentity {
  /** Service name: the pipeline's name (letters, digits, `-`, `_`). */
  readonly name: string;
  /** Semantic version: Sluice's. */
  readonly version: string;
  readonly description: string;
  /** Its one endpoint: the pipeline's source subscription. */
  readonly endpoint: { readonly name: string; readonly subject: string; readonly queue: string };
}

const PREFIX = "$SRV";
const VERBS = ["PING", "INFO", "STATS"] as const;
const METADATA = { "sluice.kind": "pipeline" };

/** The discovery side of one service and the statistics of its endpoint. */
export class ServiceAnnouncement {
  /** This instance's id, distinct per process and pipeline start. */
  readonly id: string = nuid.next();
  readonly #nc: NatsConnection;
  readonly #identity: ServiceIdentity;
  readonly #log: Logger;
  readonly #started = new Date().toISOString();
  readonly #subs: Subscription[] = [];
  #requests = 0;
  #errors = 0;
  #lastError = "";
  /** Total time from receiving a request to sending its answer, in nanoseconds. */
  #processingNs = 0;

  constructor(nc: NatsConnection, identity: ServiceIdentity, log: Logger) {
    this.#nc = nc;
    this.#identity = identity;
    this.#log = log;
  }

  /** Subscribes to the discovery subjects (without a queue group: every instance answers). */
  start(): void {
    const { name } = this.#identity;
    for (const verb of VERBS) {
      for (const subject of [`${PREFIX}.${verb}`, `${PREFIX}.${verb}.${name}`]) {
        this.#subs.push(
          this.#nc.subscribe(subject, { callback: (e, m) => this.#answer(verb, e, m) }),
        );
      }
      this.#subs.push(
        this.#nc.subscribe(`${PREFIX}.${verb}.${name}.${this.id}`, {
          callback: (e, m) => this.#answer(verb, e, m),
        }),
      );
    }
  }

  /** Counts one answered request; `error` is the error text of an error answer. */
  record(elapsedMs: number, error: string | undefined): void {
    this.#requests++;
    this.#processingNs += Math.round(elapsedMs * 1e6);
    if (error !== undefined) {
      this.#errors++;
      this.#lastError = error;
    }
  }

  /** Stops answering discovery requests. */
  async stop(): Promise<void> {
    const subs = this.#subs.splice(0);
    await Promise.all(subs.map((s) => s.isClosed() ? undefined : s.drain().catch(() => {})));
  }

  #answer(verb: (typeof VERBS)[number], err: Error | null, msg: Msg): void {
    // An exception escaping a subscription callback would close the connection.
    try {
      if (err) return;
      msg.respond(JSON.stringify(this.#body(verb)));
    } catch (e) {
      this.#log.warn("service discovery answer failed", {
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }

  #body(verb: (typeof VERBS)[number]): Record<string, unknown> {
    const { name, version, description, endpoint } = this.#identity;
    const base = { name, id: this.id, version, metadata: METADATA };
    switch (verb) {
      case "PING":
        return { type: "io.nats.micro.v1.ping_response", ...base };
      case "INFO":
        return {
          type: "io.nats.micro.v1.info_response",
          ...base,
          description,
          endpoints: [{
            name: endpoint.name,
            subject: endpoint.subject,
            queue_group: endpoint.queue,
            metadata: null,
          }],
        };
      case "STATS":
        return {
          type: "io.nats.micro.v1.stats_response",
          ...base,
          started: this.#started,
          endpoints: [{
            name: endpoint.name,
            subject: endpoint.subject,
            queue_group: endpoint.queue,
            num_requests: this.#requests,
            num_errors: this.#errors,
            last_error: this.#lastError,
            processing_time: this.#processingNs,
            average_processing_time: this.#requests > 0
              ? Math.round(this.#processingNs / this.#requests)
              : 0,
          }],
        };
    }
  }
}
