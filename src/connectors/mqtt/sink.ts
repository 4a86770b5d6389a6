/**
 * An MQTT topic as a pipeline sink. The original payload bytes are published unchanged; only the
 * topic may be rendered from the event. A QoS 1 publish counts as sent once the broker PUBACKed it.
 *
 * @module
 */
import type { HeaderValues, InboundMessage, SendResult, Sink } from "../../engine/types.ts";
import type { MqttConnector } from "./client.ts";
import type { MqttSinkConfig } from "./schema.ts";
import { compileTemplate, isRenderFailure, type TopicTemplate } from "./template.ts";

/** Publishes events to a (possibly templated) topic on a shared connection. */
export class MqttSink implements Sink {
  readonly #connector: MqttConnector;
  readonly #template: TopicTemplate;
  readonly #qos: 0 | 1;
  readonly #retain: boolean;
  readonly #passHeaders: boolean;

  constructor(connector: MqttConnector, config: MqttSinkConfig) {
    this.#connector = connector;
    this.#template = compileTemplate(config.topic);
    this.#qos = config.qos;
    this.#retain = config.retain;
    this.#passHeaders = config.pass_headers;
  }

  send(event: unknown, msg: InboundMessage, extra?: HeaderValues): SendResult {
    const topic = this.#template.isStatic
      ? this.#template.source
      : this.#template.render(event, msg.subject, msg.tokenSeparator ?? ".");
    if (isRenderFailure(topic)) return { kind: "template", reason: topic.failure };
    return this.#connector.publish(
      topic,
      msg.data,
      this.#qos,
      this.#retain,
      this.#passHeaders ? msg.headers : undefined,
      extra,
    );
  }

  ready(): boolean {
    return this.#connector.connected;
  }

  flush(): Promise<void> {
    return this.#connector.flush();
  }
}
