/**
 * What the shared MQTT client hands to its sources: a received PUBLISH as an engine message, and
 * for QoS 1 the held acknowledgement that the source settles once the engine is done with it.
 *
 * @module
 */
import type { IPublishPacket } from "mqtt";
import type { InboundMessage } from "../../engine/types.ts";
import type { HeaderSource } from "../../filter/filter.ts";

/** MQTT 5 user properties seen as headers (`_headers` in filters, `pass_headers` on sinks). */
export class UserProperties implements HeaderSource {
  readonly #props: Readonly<Record<string, string | string[]>>;

  constructor(props: Readonly<Record<string, string | string[]>>) {
    this.#props = props;
  }

  keys(): string[] {
    return Object.keys(this.#props);
  }

  get(name: string): string {
    const v = this.#props[name];
    return Array.isArray(v) ? (v[0] ?? "") : (v ?? "");
  }

  /** Every value of `name`: a user property may repeat. */
  values(name: string): string[] {
    const v = this.#props[name];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  }
}

/** A received message as the engine sees it: `_subject` is the topic, `_tokens` its levels. */
export function toMessage(packet: IPublishPacket): InboundMessage {
  const props = packet.properties?.userProperties;
  return {
    subject: packet.topic,
    // MQTT.js hands over a Buffer, which is a Uint8Array: no copy.
    data: packet.payload as Uint8Array,
    headers: props ? new UserProperties(props) : undefined,
    tokenSeparator: "/",
  };
}

/**
 * The PUBACK of one QoS 1 message, held until every source it went to has settled it. Settling
 * sends the PUBACK (the broker forgets the message); abandoning never sends it, so the broker
 * delivers the message again on the next connection of this session.
 */
export interface HeldAck {
  /** Whether the PUBACK can still be sent: the connection it arrived on is still up. */
  current(): boolean;
  settle(): void;
  abandon(): void;
}

/** A held PUBACK shared by `count` sources: sent when all settled, dropped if any abandoned. */
export function sharedAck(inner: HeldAck, count: number): HeldAck {
  let left = count;
  let abandoned = false;
  const done = () => {
    if (--left > 0) return;
    if (abandoned) inner.abandon();
    else inner.settle();
  };
  return {
    current: () => inner.current(),
    settle: done,
    abandon: () => {
      abandoned = true;
      done();
    },
  };
}
