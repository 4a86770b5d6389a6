/**
 * A NATS subject as a pipeline sink. The original payload bytes are published unchanged; only the
 * subject may be rendered from the event.
 *
 * @module
 */
import type { MsgHdrs } from "@nats-io/nats-core";
import type { HeaderValues, InboundMessage, SendFailure, Sink } from "../../engine/types.ts";
import type { NatsSinkConfig } from "./schema.ts";
import { compileTemplate, isRenderFailure, type SubjectTemplate } from "./template.ts";
import { buildHeaders, type NatsConnector } from "./client.ts";
import { type MsgIdFn, msgIdFunction } from "./msg_id.ts";

/** Publishes events to a (possibly templated) subject on a shared connection. */
export class NatsSink implements Sink {
  readonly #connector: NatsConnector;
  readonly #template: SubjectTemplate;
  readonly #passHeaders: boolean;
  readonly #msgId: MsgIdFn | undefined;

  constructor(connector: NatsConnector, config: NatsSinkConfig) {
    this.#connector = connector;
    this.#template = compileTemplate(config.subject);
    this.#passHeaders = config.pass_headers;
    this.#msgId = config.msg_id === undefined ? undefined : msgIdFunction(config.msg_id);
  }

  send(event: unknown, msg: InboundMessage, extra?: HeaderValues): SendFailure | undefined {
    const subject = this.#template.isStatic
      ? this.#template.source
      : this.#template.render(event, msg.subject, msg.tokenSeparator);
    if (isRenderFailure(subject)) return { kind: "template", reason: subject.failure };
    const source = this.#passHeaders ? msg.headers as MsgHdrs | undefined : undefined;
    if (this.#msgId) {
      // A stream capturing this subject deduplicates replays by it, even without a PubAck.
      const h = buildHeaders(source, extra);
      h.set("Nats-Msg-Id", this.#msgId(event, subject, msg.data));
      return this.#connector.publish(subject, msg.data, h);
    }
    const headers = source || extra ? buildHeaders(source, extra) : undefined;
    return this.#connector.publish(subject, msg.data, headers);
  }

  ready(): boolean {
    return this.#connector.connected;
  }

  flush(): Promise<void> {
    return this.#connector.flush();
  }
}
