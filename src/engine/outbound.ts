/**
 * The message a sink sends for an event a processor changed: its new bytes, and the subject,
 * headers and token separator of the message it came from, read from that message only when a sink asks. A NATS
 * message decodes its subject from bytes on first read (~0.3 µs); most sinks publish to a fixed
 * subject and never ask.
 *
 * @module
 */
import type { HeaderSource } from "../filter/filter.ts";
import type { InboundMessage } from "./types.ts";

/** An event's encoded bytes with the subject and headers of the message it came from. */
export class OutboundMessage implements InboundMessage {
  readonly data: Uint8Array;
  readonly #from: InboundMessage;

  /**
   * @param from The message the event came from.
   * @param data The event, encoded.
   */
  constructor(from: InboundMessage, data: Uint8Array) {
    this.#from = from;
    this.data = data;
  }

  /** The message the event came from. */
  get from(): InboundMessage {
    return this.#from;
  }

  get subject(): string {
    return this.#from.subject;
  }

  get headers(): HeaderSource | undefined {
    return this.#from.headers;
  }

  get tokenSeparator(): string | undefined {
    return this.#from.tokenSeparator;
  }
}

/**
 * The message an event came from: `msg` itself, or what an {@link OutboundMessage} was made
 * from. A failure reported for what a sink was given dead-letters the original.
 */
export function origin(msg: InboundMessage): InboundMessage {
  return msg instanceof OutboundMessage ? msg.from : msg;
}
