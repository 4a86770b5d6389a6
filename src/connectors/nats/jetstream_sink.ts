/**
 * A JetStream subject as a pipeline sink (`jetstream: true`): every event is published with a
 * reply subject of the sink's {@link PubAckTracker} and counts as accepted only once its PubAck
 * arrived, so an acknowledging source acks it only when the stream has stored it. Failed attempts
 * are retried with exponential backoff; a `msg_id:` setting gives each message a stable
 * `Nats-Msg-Id` so that the stream stores a retried or replayed message once.
 *
 * @module
 */
import { headers as createHeaders, type MsgHdrs } from "@nats-io/nats-core";
import type {
  HeaderValues,
  InboundMessage,
  SendFailure,
  SendReport,
  SendResult,
  Sink,
} from "../../engine/types.ts";
import type { Logger } from "../../log.ts";
import { buildHeaders, errorText, isMaxPayloadError, type NatsConnector } from "./client.ts";
import { loadMsgIdHash, type MsgIdFn, msgIdFunction } from "./msg_id.ts";
import { type PubAckError, PubAckTracker, PubAckWaiter } from "./puback.ts";
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
  readonly selfConfirming = true;
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
  #pubAcks: PubAckTracker | undefined;
  #inFlight = 0;
  #idle: PromiseWithResolvers<void> | undefined;
  #warnedAt = 0;
  #closed = false;
  /** What every {@link Publication} of this sink reports to: created once, not per event. */
  readonly #events: PublicationEvents = {
    acked: (p, duplicate) => this.#acked(p, duplicate),
    failed: (p, e) => this.#failed(p, e),
  };

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

  async open(): Promise<void> {
    if (this.#msgId) await loadMsgIdHash();
  }

  send(
    event: unknown,
    msg: InboundMessage,
    extra?: HeaderValues,
    report?: SendReport,
  ): SendResult {
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
    const publication = new Publication(this.#events, subject, msg.data, withMsgId(headers, id));
    this.#attempt(publication);
    return publication.result(msg, report);
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

  /** Publishes once more; a failure to publish at all is handled as a failed attempt. */
  #attempt(p: Publication): void {
    try {
      if (this.#closed) throw new Error("the sink is closed");
      this.#tracker().publish(p.subject, p.data, p.headers, p);
    } catch (e) {
      this.#failed(p, e);
    }
  }

  #acked(p: Publication, duplicate: boolean): void {
    this.stats.acked++;
    if (duplicate) this.stats.duplicates++;
    this.#finish(p, undefined);
  }

  #failed(p: Publication, e: unknown): void {
    if (isMaxPayloadError(e)) {
      this.stats.failures++;
      this.#finish(p, { kind: "rejected", reason: errorText(e) });
      return;
    }
    const attempts = p.attempt + 1;
    if (
      this.#closed || p.attempt >= this.#config.retries ||
      !this.#connector.connected && p.attempt > 0
    ) {
      this.stats.failures++;
      this.#warn(p.subject, e, attempts);
      this.#finish(p, {
        kind: "error",
        reason: `no PubAck after ${attempts} attempts: ${errorText(e)}`,
      });
      return;
    }
    this.stats.retries++;
    const wait = Math.min(this.#config.retry_wait * 2 ** p.attempt, MAX_RETRY_WAIT_MS);
    p.attempt = attempts;
    setTimeout(() => this.#attempt(p), wait);
  }

  #finish(p: Publication, failure: SendFailure | undefined): void {
    // The outcome first, so that what it starts (an outbox append) precedes what a flush resumes.
    p.settle(failure);
    this.#inFlight--;
    if (this.#inFlight === 0) this.#idle?.resolve();
  }

  /** Stops listening for PubAcks; called once the pipeline has flushed the sink. */
  close(): Promise<void> {
    // Publishes still waiting fail now, for good: a closed sink neither retries nor subscribes.
    this.#closed = true;
    this.#pubAcks?.close();
    this.#pubAcks = undefined;
    return Promise.resolve();
  }

  /** The tracker on the connector's current connection (a new one after the connection closed). */
  #tracker(): PubAckTracker {
    const nc = this.#connector.connection;
    if (this.#pubAcks?.nc !== nc || !this.#pubAcks.usable) {
      this.#pubAcks?.close();
      this.#pubAcks = new PubAckTracker(
        nc,
        this.#config.timeout,
        this.#connector.inboxPrefix,
        this.#log,
      );
    }
    return this.#pubAcks;
  }

  #warn(subject: string, e: unknown, attempts: number): void {
    const now = Date.now();
    if (now - this.#warnedAt < 30_000) return;
    this.#warnedAt = now;
    this.#log.warn("jetstream publish failed", {
      subject,
      attempts,
      error: errorText(e),
      failures: this.stats.failures,
    });
  }
}

/** Where a publication reports its PubAck or its failure. */
interface PublicationEvents {
  acked(p: Publication, duplicate: boolean): void;
  failed(p: Publication, e: PubAckError): void;
}

/**
 * One event on its way into the stream, across its attempts: the tracker's waiter, the retry
 * state and where its outcome goes, in one object. The outcome goes to the pipeline's
 * {@link SendReport} when it passed one (no promise per event), else to the promise `send`
 * returned; an outcome known before `send` returns is returned by it.
 */
class Publication extends PubAckWaiter {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: MsgHdrs | undefined;
  /** Attempts made before the current one. */
  attempt = 0;
  #done = false;
  #failure: SendFailure | undefined;
  #report: SendReport | undefined;
  #msg: InboundMessage | undefined;
  #resolve: ((failure: SendFailure | undefined) => void) | undefined;
  readonly #events: PublicationEvents;

  constructor(
    events: PublicationEvents,
    subject: string,
    data: Uint8Array,
    headers: MsgHdrs | undefined,
  ) {
    super();
    this.#events = events;
    this.subject = subject;
    this.data = data;
    this.headers = headers;
  }

  /** What `send` returns, once the first attempt was made. */
  result(msg: InboundMessage, report: SendReport | undefined): SendResult {
    if (this.#done) return this.#failure;
    if (report) {
      this.#report = report;
      this.#msg = msg;
      return undefined;
    }
    return new Promise((resolve) => this.#resolve = resolve);
  }

  /** Delivers the outcome, once. */
  settle(failure: SendFailure | undefined): void {
    this.#done = true;
    this.#failure = failure;
    if (this.#report) {
      if (failure) this.#report.failed(this.#msg!, failure);
      else this.#report.confirmed?.(this.#msg!);
    } else this.#resolve?.(failure);
  }

  acked(duplicate: boolean): void {
    this.#events.acked(this, duplicate);
  }

  failed(e: PubAckError): void {
    this.#events.failed(this, e);
  }
}

/** `headers` with `Nats-Msg-Id` set when the sink names one. */
function withMsgId(headers: MsgHdrs | undefined, msgID: string | undefined): MsgHdrs | undefined {
  if (msgID === undefined) return headers;
  const h = headers ?? createHeaders();
  h.set("Nats-Msg-Id", msgID);
  return h;
}
