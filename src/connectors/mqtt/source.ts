/**
 * An MQTT subscription as a pipeline source. QoS 0 messages are handed over as they arrive, like
 * a core NATS subscription. A QoS 1 message comes with an {@link Acknowledger}: its PUBACK goes to
 * the broker only once the engine acks or terms it (every sink accepted it, or it was filtered out
 * or dead-lettered). A nak (a sink failed) keeps the PUBACK held and hands the message over again
 * after a back-off, as the broker would only redeliver it on the next connection. The number held
 * is bounded by the connector's `max_in_flight` (MQTT 5 Receive Maximum).
 *
 * @module
 */
import type { Acknowledger, InboundMessage, MessageHandler, Source } from "../../engine/types.ts";
import type { Logger } from "../../log.ts";
import type { MqttConnector } from "./client.ts";
import type { HeldAck } from "./inbound.ts";
import type { MqttSourceConfig } from "./schema.ts";

/** First redelivery delay after a nak; doubles per attempt up to {@link MAX_RETRY_MS}. */
const RETRY_MS = 1_000;
const MAX_RETRY_MS = 60_000;
/** How long a stop waits for held messages to be settled before it leaves them to the broker. */
const DRAIN_WAIT_MS = 10_000;

/** Delivers the messages of one topic filter to the engine. */
export class MqttSource implements Source {
  readonly #connector: MqttConnector;
  readonly #config: MqttSourceConfig;
  readonly #log: Logger;
  #handler: MessageHandler | undefined;
  #draining = false;
  /** QoS 1 messages handed over (or waiting to be handed over again) and not settled yet. */
  #pending = 0;
  #retries = new Set<ReturnType<typeof setTimeout>>();
  #drained: (() => void) | undefined;

  constructor(connector: MqttConnector, config: MqttSourceConfig, log: Logger) {
    this.#connector = connector;
    this.#config = config;
    this.#log = log;
  }

  async start(handler: MessageHandler): Promise<void> {
    this.#handler = handler;
    await this.#connector.subscribe(this, this.#config.topic, this.#config.qos);
  }

  /** Called by the connector for each message matching this source's filter. */
  deliver(msg: InboundMessage, held: HeldAck | undefined): void {
    const handler = this.#handler;
    if (this.#draining || handler === undefined) {
      // Not PUBACKed: the broker delivers it again on the next connection of this session.
      held?.abandon();
      return;
    }
    if (held === undefined) {
      try {
        handler(msg);
      } catch (e) {
        this.#log.error("event handler failed", { error: String(e) });
      }
      return;
    }
    this.#pending++;
    this.#handOver(handler, msg, held, 0);
  }

  #handOver(handler: MessageHandler, msg: InboundMessage, held: HeldAck, naks: number): void {
    let settled = false;
    const finish = (settle: boolean) => {
      if (settled) return false;
      settled = true;
      if (settle) held.settle();
      return true;
    };
    const acker: Acknowledger = {
      ack: () => {
        if (finish(true)) this.#done();
      },
      term: () => {
        if (finish(true)) this.#done();
      },
      nak: () => {
        if (!finish(false)) return;
        if (this.#draining || !held.current()) {
          // Stopping, or the connection it came on is gone: the broker redelivers it.
          held.abandon();
          this.#done();
          return;
        }
        const delay = Math.min(RETRY_MS * 2 ** naks, MAX_RETRY_MS);
        const timer = setTimeout(() => {
          this.#retries.delete(timer);
          if (this.#draining || !held.current()) {
            held.abandon();
            this.#done();
            return;
          }
          this.#handOver(handler, msg, held, naks + 1);
        }, delay);
        this.#retries.add(timer);
      },
    };
    try {
      handler(msg, acker);
    } catch (e) {
      this.#log.error("event handler failed", { error: String(e) });
      acker.nak();
    }
  }

  #done(): void {
    this.#pending--;
    if (this.#pending === 0) this.#drained?.();
  }

  async drain(): Promise<void> {
    this.#draining = true;
    // No UNSUBSCRIBE: the broker session keeps the subscription and queues QoS 1 messages
    // published while Sluice is stopped.
    this.#connector.removeSource(this);
    for (const timer of this.#retries) {
      clearTimeout(timer);
      this.#done();
    }
    this.#retries.clear();
    if (this.#pending === 0) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#drained = resolve;
    const timer = setTimeout(() => {
      // A sink that cannot confirm (its broker is down) must not keep Sluice from stopping.
      this.#log.warn(
        "stopping with messages not yet acknowledged; the broker delivers them again",
        { in_flight: this.#pending },
      );
      resolve();
    }, DRAIN_WAIT_MS);
    await promise;
    clearTimeout(timer);
  }

  pending(): number {
    return this.#pending;
  }
}
