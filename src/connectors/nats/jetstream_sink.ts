/**
 * A JetStream subject as a pipeline sink (`jetstream: true`): every event is published with
 * `js.publish` and counts as accepted only once its PubAck arrived, so an acknowledging source
 * acks it only when the stream has stored it. Failed attempts are retried with exponential
 * backoff; a `msg_id:` setting gives each message a stable `Nats-Msg-Id` so that the stream stores
 * a retried or replayed message once.
 *
 * @module
 */
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/nats-core";
import type {
  HeaderValues,
  InboundMessage,
  SendFailure,
  SendResult,
  Sink,
} from "../../engine/types.ts";
import type { Logger } from "../../log.ts";
import { buildHeaders, errorText, isMaxPayloadError, type NatsConnector } from "./client.ts";
import { type MsgIdFn, msgIdFunction } from "./msg_id.ts";
import type { JetStreamSinkConfig, NatsSinkConfig } from "./schema.ts";
import { compileTemplate, isRenderFailure, type SubjectTemplate } from "./template.ts";

/** Longest pause between two retries of one publish. */
const MAX_RETRY_WAIT_MS = 10_000;

/** Counts of one JetStream sink, for logs and health. */
export interface JetStreamSinkStats {
  /** Messages stored by the stream (PubAck received). */
  acked: number;
  /** Of those, messages the stream had already (dropped by Nats-Msg-Id). */
  duplicates: number;
  /** Attempts that failed and were retried. */
  retries: number;
  /** Sends that failed after every retry. */
  failures: number;
  /** Sends refused because `max_in_flight` publishes were awaiting their PubAck. */
  overflows: number;
}

/** Publishes events to a (possibly templated) subject of a JetStream stream. */
export class JetStreamSink implements Sink {
  /** What happened so far. */
  readonly stats: JetStreamSinkStats = {
    acked: 0,
    duplicates: 0,
    retries: 0,
    failures: 0,
    overflows: 0,
  };
  readonly #connector: NatsConnector;
  readonly #template: SubjectTemplate;
  readonly #passHeaders: boolean;
  readonly #msgId: MsgIdFn | undefined;
  readonly #config: JetStreamSinkConfig;
  readonly #log: Logger;
  #js: JetStreamClient | undefined;
  #inFlight = 0;
  #idle: PromiseWithResolvers<void> | undefined;
  #warnedAt = 0;

  /**
   * @param connector The shared client; open while the sink is used.
   * @param config The sink settings; `config.jetstream` must be set.
   * @param log Logger labelled with the pipeline.
   */
  constructor(connector: NatsConnector, config: NatsSinkConfig, log: Logger) {
    if (!config.jetstream) throw new TypeError("Cannot create a JetStream sink without jetstream");
    this.#connector = connector;
    this.#template = compileTemplate(config.subject);
    this.#passHeaders = config.pass_headers;
    this.#msgId = config.msg_id === undefined ? undefined : msgIdFunction(config.msg_id);
    this.#config = config.jetstream;
    this.#log = log;
  }

  send(event: unknown, msg: InboundMessage, extra?: HeaderValues): SendResult {
    const subject = this.#template.isStatic ? this.#template.source : this.#template.render(
      event,
      this.#template.usesAddress ? msg.subject : "",
      msg.tokenSeparator,
    );
    if (isRenderFailure(subject)) return { kind: "template", reason: subject.failure };
    if (this.#inFlight >= this.#config.max_in_flight) {
      this.stats.overflows++;
      return {
        kind: "overflow",
        reason: `${this.#config.max_in_flight} publishes are awaiting their PubAck`,
      };
    }
    const source = this.#passHeaders ? msg.headers as MsgHdrs | undefined : undefined;
    const headers = source || extra ? buildHeaders(source, extra) : undefined;
    const id = this.#msgId?.(event, subject, msg.data);
    this.#inFlight++;
    return this.#publish(subject, msg.data, headers, id).finally(() => {
      this.#inFlight--;
      if (this.#inFlight === 0) this.#idle?.resolve();
    });
  }

  /** Resolves once every publish in flight has its PubAck or has failed. */
  async flush(): Promise<void> {
    if (this.#inFlight > 0) {
      this.#idle ??= Promise.withResolvers<void>();
      await this.#idle.promise;
      this.#idle = undefined;
    }
  }

  ready(): boolean {
    return this.#connector.connected;
  }

  async #publish(
    subject: string,
    data: Uint8Array,
    headers: MsgHdrs | undefined,
    msgID: string | undefined,
  ): Promise<SendFailure | undefined> {
    const { retries, retry_wait: retryWait, timeout } = this.#config;
    for (let attempt = 0;; attempt++) {
      try {
        this.#js ??= jetstream(this.#connector.connection, { timeout });
        const ack = await this.#js.publish(subject, data, {
          timeout,
          ...(headers ? { headers } : {}),
          ...(msgID === undefined ? {} : { msgID }),
        });
        this.stats.acked++;
        if (ack.duplicate) this.stats.duplicates++;
        return undefined;
      } catch (e) {
        if (isMaxPayloadError(e)) {
          this.stats.failures++;
          return { kind: "rejected", reason: errorText(e) };
        }
        if (attempt >= retries || !this.#connector.connected && attempt > 0) {
          this.stats.failures++;
          this.#warn(subject, e, attempt + 1);
          return {
            kind: "error",
            reason: `no PubAck after ${attempt + 1} attempts: ${publishErrorText(e, subject)}`,
          };
        }
        this.stats.retries++;
        await delay(Math.min(retryWait * 2 ** attempt, MAX_RETRY_WAIT_MS));
      }
    }
  }

  #warn(subject: string, e: unknown, attempts: number): void {
    const now = Date.now();
    if (now - this.#warnedAt < 30_000) return;
    this.#warnedAt = now;
    this.#log.warn("jetstream publish failed", {
      subject,
      attempts,
      error: publishErrorText(e, subject),
      failures: this.stats.failures,
    });
  }
}

/**
 * nats.js reports a publish nothing answered as "jetstream is not enabled"; on a server with
 * JetStream the usual cause is that no stream's subjects include the subject, so say that.
 */
export function publishErrorText(e: unknown, subject: string): string {
  // The class is not exported by @nats-io/jetstream; its name is stable.
  if (e instanceof Error && e.name === "JetStreamNotEnabled") {
    return `no stream captures subject "${subject}" (no JetStream answered the publish): ` +
      `add the subject to a stream's subjects, or enable JetStream on the server`;
  }
  return errorText(e);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
