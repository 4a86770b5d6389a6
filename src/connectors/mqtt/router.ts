/**
 * Which source gets a received message. One MQTT connection carries every subscription of its
 * connector, and the broker sends one copy of a message however many of them match, so the
 * connector routes by topic filter itself.
 *
 * Messages that match no running source are parked: right after a (re)connect the broker sends
 * what it queued in the session before the sources have started, and those belong to them. A
 * parked message nobody claims within {@link PARK_GRACE_MS} (a subscription left in the session
 * by an earlier configuration) is acknowledged, dropped and logged once per topic.
 *
 * @module
 */
import type { IPublishPacket } from "mqtt";
import type { Logger } from "../../log.ts";
import { type HeldAck, sharedAck, toMessage } from "./inbound.ts";
import type { MqttSource } from "./source.ts";
import { compileTopicFilter, topicMatches } from "./topic.ts";

const PARK_GRACE_MS = 30_000;
/** Parked QoS 0 messages beyond this many are dropped (QoS 1 ones are bounded by the broker). */
const MAX_PARKED_QOS0 = 1000;
const MAX_WARNED_TOPICS = 100;

interface Route {
  readonly source: MqttSource;
  readonly filter: string;
  readonly matches: (topic: string) => boolean;
  readonly qos: 0 | 1;
}

interface Parked {
  readonly packet: IPublishPacket;
  readonly held: HeldAck | undefined;
  readonly at: number;
}

/** Routes messages of one connection to the sources whose filters match. */
export class Router {
  readonly #log: Logger;
  #routes: Route[] = [];
  #parked: Parked[] = [];
  #parkedQos0 = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #warned = new Set<string>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Routes `filter` to `source` from now on, after handing it the parked messages it matches. */
  add(source: MqttSource, filter: string, qos: 0 | 1): void {
    this.#routes.push({ source, filter, matches: compileTopicFilter(filter), qos });
    const claimed = this.#parked.filter((p) => topicMatches(filter, p.packet.topic));
    if (claimed.length === 0) return;
    this.#parked = this.#parked.filter((p) => !claimed.includes(p));
    this.#parkedQos0 = this.#parked.filter((p) => !p.held).length;
    for (const p of claimed) source.deliver(toMessage(p.packet), p.held);
  }

  /** Stops routing to `source`. */
  remove(source: MqttSource): void {
    this.#routes = this.#routes.filter((r) => r.source !== source);
  }

  /** Every routed filter with the highest QoS asked for it, to subscribe again. */
  subscriptions(): Map<string, 0 | 1> {
    const out = new Map<string, 0 | 1>();
    for (const r of this.#routes) {
      out.set(r.filter, Math.max(out.get(r.filter) ?? 0, r.qos) as 0 | 1);
    }
    return out;
  }

  /** Hands a message to every matching source (the PUBACK waits for all), or parks it. */
  route(packet: IPublishPacket, held: HeldAck | undefined): void {
    const routes = this.#routes;
    let first: MqttSource | undefined;
    let matched: MqttSource[] | undefined;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i] as Route;
      if (!r.matches(packet.topic)) continue;
      if (first === undefined) first = r.source;
      else if (r.source !== first && !(matched ??= [first]).includes(r.source)) {
        matched.push(r.source);
      }
    }
    if (first === undefined) this.#park(packet, held);
    else if (matched === undefined) first.deliver(toMessage(packet), held);
    else {
      const shared = held && sharedAck(held, matched.length);
      for (const s of matched) s.deliver(toMessage(packet), shared);
    }
  }

  /** Forgets parked messages without acknowledging them: the broker sends them again. */
  clear(): void {
    for (const p of this.#parked) p.held?.abandon();
    this.#parked = [];
    this.#parkedQos0 = 0;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #park(packet: IPublishPacket, held: HeldAck | undefined): void {
    if (!held) {
      if (this.#parkedQos0 >= MAX_PARKED_QOS0) return;
      this.#parkedQos0++;
    }
    this.#parked.push({ packet, held, at: Date.now() });
    this.#timer ??= setInterval(() => this.#expire(), PARK_GRACE_MS / 6);
  }

  #expire(): void {
    const limit = Date.now() - PARK_GRACE_MS;
    while (this.#parked.length > 0 && (this.#parked[0] as Parked).at <= limit) {
      const p = this.#parked.shift() as Parked;
      if (p.held) p.held.settle();
      else this.#parkedQos0--;
      const topic = p.packet.topic;
      if (!this.#warned.has(topic) && this.#warned.size < MAX_WARNED_TOPICS) {
        this.#warned.add(topic);
        this.#log.warn(
          "message matches no pipeline: acknowledged and dropped (a subscription of an earlier " +
            "configuration kept in the broker session; use another client_id or clean_session " +
            "once to drop it)",
          { topic },
        );
      }
    }
    if (this.#parked.length === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
