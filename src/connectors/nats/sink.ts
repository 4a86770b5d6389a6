/**
 * A NATS subject as a pipeline sink. The original payload bytes are published unchanged; only the
 * subject may be rendered from the event.
 *
 * @module
 */
import type { MsgHdrs } from "@nats-io/nats-core";
import type {
  HeaderValues,
  InboundMessage,
  SendFailure,
  SendResult,
  Sink,
} from "../../engine/types.ts";
import type { NatsSinkConfig } from "./schema.ts";
import { compileTemplate, isRenderFailure, type SubjectTemplate } from "./template.ts";
import { buildHeaders, type NatsConnector } from "./client.ts";
import { loadMsgIdHash, type MsgIdFn, msgIdFunction } from "./msg_id.ts";

/**
 * Publishes events to a (possibly templated) subject on a shared connection. `send` answers
 * synchronously: the client buffers what it publishes, and the connector confirms it in bulk.
 */
export class NatsSink implements Sink {
  protected readonly connector: NatsConnector;
  readonly #template: SubjectTemplate;
  readonly #passHeaders: boolean;
  readonly #msgId: MsgIdFn | undefined;

  constructor(connector: NatsConnector, config: NatsSinkConfig) {
    this.connector = connector;
    this.#template = compileTemplate(config.subject);
    this.#passHeaders = config.pass_headers;
    this.#msgId = config.msg_id === undefined ? undefined : msgIdFunction(config.msg_id);
  }

  async open(): Promise<void> {
    if (this.#msgId) await loadMsgIdHash();
  }

  /**
   * While the connection is down an event is refused (a sink error: counted, dead-lettered) rather
   * than handed to the client: nats.js discards what it buffered when it dials again, so such an
   * event would be lost while counted as passed.
   */
  send(event: unknown, msg: InboundMessage, extra?: HeaderValues): SendResult {
    if (!this.connector.connected) return this.connector.unavailable();
    return this.publish(event, msg, extra);
  }

  /** Renders the subject and hands the event to the client; synchronous. */
  protected publish(
    event: unknown,
    msg: InboundMessage,
    extra: HeaderValues | undefined,
  ): SendFailure | undefined {
    const subject = this.#template.isStatic ? this.#template.source : this.#template.render(
      event,
      this.#template.usesAddress ? msg.subject : "",
      msg.tokenSeparator,
    );
    if (isRenderFailure(subject)) return { kind: "template", reason: subject.failure };
    const source = this.#passHeaders ? msg.headers as MsgHdrs | undefined : undefined;
    if (this.#msgId) {
      // A stream capturing this subject deduplicates replays by it, even without a PubAck.
      const h = buildHeaders(source, extra);
      h.set("Nats-Msg-Id", this.#msgId(event, subject, msg.data));
      return this.connector.publish(subject, msg.data, h);
    }
    const headers = source || extra ? buildHeaders(source, extra) : undefined;
    return this.connector.publish(subject, msg.data, headers);
  }

  ready(): boolean {
    return this.connector.connected;
  }

  flush(): Promise<void> {
    return this.connector.flush();
  }
}

/**
 * The sink of a pipeline whose source acknowledges (JetStream): an event counts as sent only once
 * a flush covering its publish has come back from the server, so the source never acks an event
 * that was still in the client's buffer when the connection dropped (nats.js discards that buffer
 * when it dials again). While the connection is down it refuses events at once (kind `error`: the
 * source redelivers them after its backoff) instead of buffering them in the client.
 */
export class ConfirmingNatsSink extends NatsSink {
  override send(event: unknown, msg: InboundMessage, extra?: HeaderValues): SendResult {
    if (!this.connector.connected) return this.connector.unavailable();
    const failure = this.publish(event, msg, extra);
    return failure ?? this.connector.confirmation();
  }
}
