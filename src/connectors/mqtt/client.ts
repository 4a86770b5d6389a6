/**
 * The managed MQTT client of one connector declaration: one connection (one client id, one broker
 * session) shared by every pipeline naming the connector, opened on first use and closed when the
 * last user lets go. Health is kept from MQTT.js's own events.
 *
 * Reconnecting is done here rather than by MQTT.js (whose timer has a fixed period): each attempt
 * waits `wait` plus random `jitter`, tries the next URL of the list, and a connection the broker
 * keeps closing right after accepting it (another client taking our client id) backs off
 * exponentially up to 5 minutes instead of storming. After a reconnect without a session on the
 * broker (restarted without persistence, session expired) every subscription is made again.
 *
 * QoS 1 messages are acknowledged (PUBACK) only when the sources settle them; see `inbound.ts`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createConnection, isIP } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type {
  IClientOptions,
  IClientPublishOptions,
  IConnackPacket,
  IDisconnectPacket,
  IPublishPacket,
  IStream,
  MqttClient,
} from "mqtt";
import type {
  Connector,
  ConnectorHealth,
  ConnectorState,
  HeaderValues,
  InboundMessage,
  Resources,
  SendFailure,
  SendResult,
  Sink,
  Source,
} from "../../engine/types.ts";
import { RuntimeError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import { describeMissing, missingPermission } from "../../permissions.ts";
import { type HeldAck, sharedAck, toMessage, UserProperties } from "./inbound.ts";
import { MqttClient as Client } from "./library.ts";
import type { BrokerUrl, MqttConnectorConfig, MqttSinkConfig, MqttSourceConfig } from "./schema.ts";
import { MqttSink } from "./sink.ts";
import { MqttSource } from "./source.ts";
import { topicMatches } from "./topic.ts";

/** A connection that lasted less than this and was closed by the broker counts as a flap. */
const STABLE_MS = 10_000;
/** Longest back-off between attempts while the broker keeps closing us (a client id clash). */
const MAX_BACKOFF_MS = 300_000;
/** Messages that arrive for no running source (a session subscription of an earlier
 * configuration) are held this long for a source still starting, then acknowledged and dropped. */
const PARK_GRACE_MS = 30_000;
/** How long a graceful stop waits for the will's PUBACK and for pending publishes. */
const STOP_WAIT_MS = 5_000;
/** MQTT 5 reason code of a DISCONNECT: another client connected with our client id. */
const SESSION_TAKEN_OVER = 0x8e;

/** What MQTT.js passes to `handleMessage`'s callback: an error means "do not PUBACK now". */
const HOLD = new Error("PUBACK held until the sinks accepted the message");

/** MQTT.js internals used here; `_sendPacket` is the only way to send a PUBACK later. */
interface ClientInternals {
  _sendPacket(packet: { cmd: "puback"; messageId: number; reasonCode: number }): void;
}

/** PEM contents for TLS connections. */
interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** A registered source with what it subscribes to. */
interface Route {
  readonly source: MqttSource;
  readonly filter: string;
  readonly qos: 0 | 1;
}

interface Parked {
  readonly packet: IPublishPacket;
  readonly held: HeldAck | undefined;
  readonly at: number;
}

/** The shared client behind every source and sink of one `type: mqtt` connector. */
export class MqttConnector implements Connector<MqttSourceConfig, MqttSinkConfig> {
  readonly name: string;
  readonly type = "mqtt";
  readonly clientId: string;
  readonly #config: MqttConnectorConfig;
  readonly #log: Logger;
  readonly #fail: (error: Error) => void;
  #client: MqttClient | undefined;
  #opening: Promise<void> | undefined;
  #users = 0;
  #closing = false;
  #state: ConnectorState = "closed";
  #since = Date.now();
  #reconnects = 0;
  #lastError: { message: string; at: number } | undefined;
  #serverUrl: string | undefined;
  /** Index into the URL list of the next connection attempt (fail-over goes round the list). */
  #nextUrl = 0;
  // Counters for health.
  #messagesIn = 0;
  #messagesOut = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #overflows = 0;
  #overflowing = false;
  /** Bytes handed to MQTT.js by sinks and not yet written (QoS 0) or PUBACKed (QoS 1). */
  #pendingBytes = 0;
  #flushWaiters: (() => void)[] = [];
  /** Increments on every CONNACK: a PUBACK may only go out on the connection of its PUBLISH. */
  #generation = 0;
  #routes: Route[] = [];
  #parked: Parked[] = [];
  #parkTimer: ReturnType<typeof setInterval> | undefined;
  #warnedUnrouted = new Set<string>();
  // Reconnect state.
  #everConnected = false;
  #attempts = 0;
  #flaps = 0;
  #connectedAt: number | undefined;
  #takenOver = false;
  #fatal: RuntimeError | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #firstConnect: PromiseWithResolvers<void> | undefined;

  constructor(name: string, config: MqttConnectorConfig, resources: Resources) {
    this.name = name;
    this.#config = config;
    this.#log = resources.logger;
    this.#fail = resources.fail;
    this.clientId = config.client_id ?? `sluice-${hostname()}-${name}`;
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    this.#users++;
    try {
      this.#opening ??= this.#open(signal);
      await this.#opening;
    } catch (e) {
      this.#users--;
      if (this.#users === 0) this.#opening = undefined;
      throw e;
    }
  }

  async release(): Promise<void> {
    if (this.#users === 0) return;
    this.#users--;
    if (this.#users > 0) return;
    const client = this.#client;
    this.#opening = undefined;
    if (!client) return;
    this.#closing = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#parkTimer);
    this.#parkTimer = undefined;
    // Parked messages stay unacknowledged: the broker delivers them again next session.
    this.#parked = [];
    const will = this.#config.will;
    if (will && client.connected) {
      // The broker sends the will only when a client vanishes; a graceful stop announces it too.
      await withTimeout(
        client.publishAsync(will.topic, will.payload, { qos: will.qos, retain: will.retain }),
        STOP_WAIT_MS,
      ).catch((e) => this.#log.warn("will not published", { error: errorText(e) }));
    }
    await withTimeout(client.endAsync(), STOP_WAIT_MS).catch(() => client.end(true));
    this.#client = undefined;
    this.#setState("closed");
    this.#wakeFlushWaiters();
    this.#log.info("connector closed");
  }

  health(): ConnectorHealth {
    return {
      name: this.name,
      type: this.type,
      state: this.#state,
      since: this.#since,
      reconnects: this.#reconnects,
      lastError: this.#lastError,
      server: this.#state === "connected" && this.#serverUrl !== undefined
        ? {
          id: this.clientId,
          version: this.#config.version === 5 ? "MQTT 5" : "MQTT 3.1.1",
          url: this.#serverUrl,
        }
        : undefined,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      overflows: this.#overflows,
      users: this.#users,
    };
  }

  /** Whether the connection is up now. */
  get connected(): boolean {
    return this.#state === "connected" && this.#client?.connected === true;
  }

  /** The protocol version spoken: 5 or 4 (3.1.1). */
  get protocolVersion(): 4 | 5 {
    return this.#config.version;
  }

  createSource(config: MqttSourceConfig, pipeline: string): Source {
    return new MqttSource(this, config, this.#log.with({ pipeline }));
  }

  createSink(config: MqttSinkConfig, pipeline: string): Sink {
    void pipeline;
    return new MqttSink(this, config);
  }

  // ---- sources ------------------------------------------------------------------------------

  /**
   * Routes messages matching `filter` to `source` from now on (including held ones that arrived
   * before it started, e.g. queued in the session), then subscribes and resolves on the SUBACK.
   */
  async subscribe(source: MqttSource, filter: string, qos: 0 | 1): Promise<void> {
    const client = this.#client;
    if (!client) throw new RuntimeError("not_connected", `Connector "${this.name}" is not open`);
    this.#routes.push({ source, filter, qos });
    const claimed = this.#parked.filter((p) => topicMatches(filter, p.packet.topic));
    if (claimed.length > 0) {
      this.#parked = this.#parked.filter((p) => !claimed.includes(p));
      for (const p of claimed) source.deliver(toMessage(p.packet), p.held);
    }
    const granted = await client.subscribeAsync(filter, { qos });
    const refused = granted.find((g) => g.qos >= 0x80);
    if (refused) {
      throw new RuntimeError(
        "subscribe_refused",
        `Connector "${this.name}": the broker refused the subscription to "${filter}" (reason code 0x${
          refused.qos.toString(16)
        }, e.g. not authorized): check the broker's ACL for user and client id "${this.clientId}"`,
      );
    }
  }

  /**
   * Stops routing to `source`. The subscription stays in the broker session (no UNSUBSCRIBE), so
   * QoS 1 messages published while Sluice is stopped are queued for its next start.
   */
  removeSource(source: MqttSource): void {
    this.#routes = this.#routes.filter((r) => r.source !== source);
  }

  #onPublish(packet: IPublishPacket, callback: (error?: Error) => void): void {
    this.#messagesIn++;
    this.#bytesIn += packet.payload.length;
    const held = packet.qos > 0 && packet.messageId !== undefined
      ? this.#heldAck(packet.messageId)
      : undefined;
    // Routed before the callback: the callback can make MQTT.js parse and hand over the next
    // packet synchronously, which would then overtake this one.
    try {
      this.#route(packet, held);
    } catch (e) {
      this.#log.error("message routing failed", { error: errorText(e) });
    }
    // HOLD tells MQTT.js to read on without sending the PUBACK: the sources settle it later.
    if (held) callback(HOLD);
    else callback();
  }

  #route(packet: IPublishPacket, held: HeldAck | undefined): void {
    const routes = this.#routes;
    let first: MqttSource | undefined;
    let matched: MqttSource[] | undefined;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i] as Route;
      if (!topicMatches(r.filter, packet.topic)) continue;
      if (first === undefined) first = r.source;
      else if (r.source !== first && !(matched ??= [first]).includes(r.source)) {
        matched.push(r.source);
      }
    }
    if (first === undefined) {
      this.#park(packet, held);
      return;
    }
    if (matched === undefined) {
      first.deliver(toMessage(packet), held);
      return;
    }
    // The broker sends one copy for overlapping subscriptions: each source gets it, and the
    // PUBACK waits for all of them.
    const shared = held && sharedAck(held, matched.length);
    for (const s of matched) s.deliver(toMessage(packet), shared);
  }

  #heldAck(messageId: number): HeldAck {
    const generation = this.#generation;
    let done = false;
    return {
      current: () => generation === this.#generation && this.#client?.connected === true,
      settle: () => {
        if (done) return;
        done = true;
        const client = this.#client;
        // A PUBACK for an earlier connection would acknowledge a different message (ids are
        // reused); the broker redelivers the original on this one anyway.
        if (!client || generation !== this.#generation || !client.connected) return;
        (client as unknown as ClientInternals)._sendPacket({
          cmd: "puback",
          messageId,
          reasonCode: 0,
        });
      },
      abandon: () => {
        done = true;
      },
    };
  }

  /** Holds a message no running source subscribes to, for a source that is still starting. */
  #park(packet: IPublishPacket, held: HeldAck | undefined): void {
    if (!held && this.#parked.length >= this.#config.max_in_flight + 1000) return;
    this.#parked.push({ packet, held, at: Date.now() });
    this.#parkTimer ??= setInterval(() => this.#expireParked(), PARK_GRACE_MS / 6);
  }

  #expireParked(): void {
    const limit = Date.now() - PARK_GRACE_MS;
    while (this.#parked.length > 0 && (this.#parked[0] as Parked).at <= limit) {
      const p = this.#parked.shift() as Parked;
      p.held?.settle();
      if (!this.#warnedUnrouted.has(p.packet.topic) && this.#warnedUnrouted.size < 100) {
        this.#warnedUnrouted.add(p.packet.topic);
        this.#log.warn(
          "message matches no pipeline: acknowledged and dropped (a subscription of an earlier " +
            "configuration kept in the broker session; use another client_id or clean_session " +
            "once to drop it)",
          { topic: p.packet.topic },
        );
      }
    }
    if (this.#parked.length === 0) {
      clearInterval(this.#parkTimer);
      this.#parkTimer = undefined;
    }
  }

  // ---- sinks ------------------------------------------------------------------------------

  /**
   * Publishes unless more than `max_pending` bytes are still unconfirmed (a dead or slow broker),
   * so memory stays bounded. QoS 0 returns at once; QoS 1 returns a promise of the PUBACK.
   */
  publish(
    topic: string,
    data: Uint8Array,
    qos: 0 | 1,
    retain: boolean,
    headers: InboundMessage["headers"] | undefined,
    extra: HeaderValues | undefined,
  ): SendResult {
    const client = this.#client;
    if (!client) return { kind: "error", reason: `connector "${this.name}" is not open` };
    // QoS 0 sent while disconnected would be lost silently: refuse it, so an outbox keeps it.
    if (qos === 0 && !client.connected) {
      return { kind: "error", reason: `connector "${this.name}" is not connected` };
    }
    if (this.#pendingBytes >= this.#config.max_pending) {
      this.#overflows++;
      if (!this.#overflowing) {
        this.#overflowing = true;
        this.#log.warn(
          "connector overflowing: broker has not confirmed sent data, refusing events",
          {
            max_pending: this.#config.max_pending,
            state: this.#state,
          },
        );
      }
      return {
        kind: "overflow",
        reason: `more than ${this.#config.max_pending} bytes unconfirmed`,
      };
    }
    const size = data.length + topic.length;
    const options: IClientPublishOptions = { qos, retain };
    if (this.#config.version === 5 && (headers || extra)) {
      options.properties = { userProperties: userProperties(headers, extra) };
    }
    this.#pendingBytes += size;
    this.#messagesOut++;
    this.#bytesOut += data.length;
    const payload = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (qos === 0) {
      client.publish(topic, payload, options, () => this.#confirmed(size));
      return undefined;
    }
    return new Promise<SendFailure | undefined>((resolve) => {
      client.publish(topic, payload, options, (error) => {
        this.#confirmed(size);
        resolve(error ? publishFailure(error) : undefined);
      });
    });
  }

  /** Resolves once every publish so far is confirmed, or the connection is down or closed. */
  flush(): Promise<void> {
    if (this.#pendingBytes === 0 || !this.connected) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#flushWaiters.push(resolve);
    return withTimeout(promise, STOP_WAIT_MS).catch(() => {});
  }

  #confirmed(size: number): void {
    this.#pendingBytes -= size;
    if (this.#overflowing && this.#pendingBytes < this.#config.max_pending) {
      this.#overflowing = false;
      this.#log.info("connector accepting events again", { overflows: this.#overflows });
    }
    if (this.#pendingBytes === 0) this.#wakeFlushWaiters();
  }

  #wakeFlushWaiters(): void {
    for (const w of this.#flushWaiters.splice(0)) w();
  }

  // ---- connection -------------------------------------------------------------------------

  async #open(signal?: AbortSignal): Promise<void> {
    const options = this.#options();
    const files = await this.#tlsFiles();
    this.#closing = false;
    this.#fatal = undefined;
    this.#everConnected = false;
    this.#attempts = 0;
    this.#flaps = 0;
    this.#setState("connecting");
    const first = Promise.withResolvers<void>();
    this.#firstConnect = first;
    // Our own stream builder (not mqtt.connect): it walks the URL list for fail-over and knows
    // which broker a connection goes to, and MQTT.js's reads no proxy settings from the
    // environment (a permission Sluice does not ask for).
    const client = new Client(() => this.#stream(files), options);
    this.#client = client;
    client.handleMessage = (packet, callback) => this.#onPublish(packet, callback);
    client.on("connect", (connack) => this.#onConnect(client, connack));
    client.on("close", () => this.#onClose(client));
    client.on("error", (e) => this.#onError(e));
    client.on("disconnect", (packet) => this.#onDisconnect(packet));
    const onAbort = () => {
      first.reject(signal?.reason);
      this.#shutDown(client);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    client.connect();
    try {
      await first.promise;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#firstConnect = undefined;
    }
  }

  #onConnect(client: MqttClient, connack: IConnackPacket): void {
    this.#generation++;
    this.#connectedAt = Date.now();
    this.#attempts = 0;
    this.#takenOver = false;
    this.#setState("connected");
    const sessionPresent = connack.sessionPresent;
    if (!this.#everConnected) {
      this.#everConnected = true;
      this.#log.info("connector connected", {
        server: this.#serverUrl,
        client_id: this.clientId,
        session_present: sessionPresent,
      });
      this.#firstConnect?.resolve();
    } else {
      this.#reconnects++;
      this.#log.info("connector reconnected", {
        server: this.#serverUrl,
        reconnects: this.#reconnects,
        session_present: sessionPresent,
      });
      if (!sessionPresent) this.#resubscribe(client);
    }
    const birth = this.#config.birth;
    if (birth) {
      client.publish(birth.topic, birth.payload, { qos: birth.qos, retain: birth.retain }, (e) => {
        if (e) this.#log.warn("birth message not published", { error: errorText(e) });
      });
    }
  }

  /** The broker has no session for us (restarted without persistence, expired): subscribe again. */
  #resubscribe(client: MqttClient): void {
    const byFilter = new Map<string, 0 | 1>();
    for (const r of this.#routes) {
      byFilter.set(r.filter, Math.max(byFilter.get(r.filter) ?? 0, r.qos) as 0 | 1);
    }
    if (byFilter.size === 0) return;
    const filters = [...byFilter.keys()];
    this.#log.warn("broker has no session for this client: subscribing again", {
      topics: filters.join(","),
    });
    client.subscribeAsync(Object.fromEntries([...byFilter].map(([f, qos]) => [f, { qos }])))
      .then((granted) => {
        const refused = granted.filter((g) => g.qos >= 0x80).map((g) => g.topic);
        if (refused.length > 0) {
          this.#recordError(`the broker refused the subscription to ${refused.join(", ")}`);
          this.#log.error("subscription refused after reconnect", { topics: refused.join(",") });
        }
      })
      .catch((e) => this.#log.warn("subscribing again failed", { error: errorText(e) }));
  }

  #onDisconnect(packet: IDisconnectPacket): void {
    const code = packet.reasonCode ?? 0;
    if (code === SESSION_TAKEN_OVER) {
      this.#takenOver = true;
      const message =
        `another client connected with client id "${this.clientId}" and took over the session: ` +
        "give each gateway its own client_id";
      this.#recordError(message);
      this.#log.error("connector thrown out by the broker", { reason: message });
      return;
    }
    const reason = packet.properties?.reasonString;
    this.#recordError(
      `the broker disconnected us (reason code 0x${code.toString(16)}${
        reason ? `: ${reason}` : ""
      })`,
    );
  }

  #onError(e: Error): void {
    this.#recordError(errorText(e));
    const fatal = this.#classify(e);
    if (fatal) {
      this.#fatal = fatal;
      return;
    }
    this.#log.debug("connector error", { error: errorText(e) });
  }

  #onClose(client: MqttClient): void {
    if (this.#client !== client) return;
    const lasted = this.#connectedAt === undefined ? undefined : Date.now() - this.#connectedAt;
    this.#connectedAt = undefined;
    if (this.#closing) {
      this.#setState("closed");
      return;
    }
    const fatal = this.#fatal;
    if (fatal) {
      // Retrying cannot fix refused credentials, a certificate or a missing permission.
      this.#giveUp(client, fatal);
      return;
    }
    if (lasted !== undefined) {
      this.#attempts = 0;
      // The broker accepted us and closed the connection soon after, repeatedly: most likely
      // another client with our id. Back off instead of throwing each other out in a loop.
      if (lasted < STABLE_MS) this.#flaps++;
      else this.#flaps = 0;
      if (!this.#lastError || Date.now() - this.#lastError.at > 1000) {
        this.#recordError("the connection was closed");
      }
      this.#log.warn("connector disconnected", {
        server: this.#serverUrl,
        error: this.#lastError?.message,
      });
    }
    this.#attempts++;
    const { wait, jitter, max_attempts: maxAttempts } = this.#config.reconnect;
    if (maxAttempts >= 0 && this.#attempts > maxAttempts) {
      this.#giveUp(
        client,
        new RuntimeError(
          "unreachable",
          `Connector "${this.name}": no broker reachable after ${this.#attempts} attempts: ${
            this.#lastError?.message ?? "connection closed"
          }`,
        ),
      );
      return;
    }
    let delay = wait + Math.random() * jitter;
    if (this.#takenOver || this.#flaps >= 2) {
      const steps = Math.max(this.#flaps, this.#takenOver ? 3 : 1);
      delay = Math.min(Math.max(wait, 1000) * 2 ** steps, MAX_BACKOFF_MS) + Math.random() * jitter;
      if (!this.#takenOver) {
        this.#recordError(
          `the broker keeps closing the connection right after accepting it: another client may ` +
            `be using client id "${this.clientId}"`,
        );
      }
      this.#log.error(
        "the broker keeps closing the connection right after accepting it: is another client " +
          "using the same client id? backing off",
        { client_id: this.clientId, retry_in_ms: Math.round(delay), flaps: this.#flaps },
      );
    } else if (!this.#everConnected || this.#attempts > 1) {
      this.#log.warn("connector unreachable, retrying", {
        servers: this.#config.url.map((u) => u.text).join(","),
        error: this.#lastError?.message,
        attempt: this.#attempts,
        retry_in_ms: Math.round(delay),
      });
    }
    this.#setState(this.#everConnected ? "reconnecting" : "connecting");
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#closing || this.#client !== client) return;
      // Passing the stores keeps QoS 1 publishes awaiting their PUBACK: MQTT.js resends them.
      client.reconnect({
        incomingStore: client.incomingStore,
        outgoingStore: client.outgoingStore,
      });
    }, delay);
  }

  #giveUp(client: MqttClient, error: RuntimeError): void {
    this.#recordError(error.message);
    this.#shutDown(client);
    if (this.#firstConnect) {
      this.#firstConnect.reject(error);
      return;
    }
    this.#log.error("connector gave up", { error: error.message });
    this.#fail(error);
  }

  #shutDown(client: MqttClient): void {
    this.#closing = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#parkTimer);
    this.#parkTimer = undefined;
    client.end(true);
    if (this.#client === client) this.#client = undefined;
    this.#opening = undefined;
    this.#setState("closed");
    this.#wakeFlushWaiters();
  }

  /** A RuntimeError for failures that retrying cannot fix, else undefined. */
  #classify(e: unknown): RuntimeError | undefined {
    const missing = missingPermission(e);
    if (missing) {
      return new RuntimeError(
        "permission",
        `Connector "${this.name}": ${describeMissing(missing)}`,
        {
          cause: e,
        },
      );
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code === "number") {
      const refusal = connackRefusal(this.#config.version, code);
      if (refusal) {
        return new RuntimeError(
          refusal.code,
          `Connector "${this.name}": the broker refused the connection: ${refusal.text}`,
          { cause: e },
        );
      }
    }
    if (!this.#everConnected && isTlsVerificationError(e)) {
      return new RuntimeError(
        "tls",
        `Connector "${this.name}": the broker's certificate was not accepted (${
          errorText(e)
        }): check tls.ca_file and that the URL's host name is in the certificate`,
        { cause: e },
      );
    }
    return undefined;
  }

  /** Opens the socket of the next connection attempt, to the next URL of the list. */
  #stream(files: TlsFiles): IStream {
    const urls = this.#config.url;
    const url = urls[this.#nextUrl++ % urls.length] as BrokerUrl;
    this.#serverUrl = url.text;
    if (url.protocol === "mqtt") return createConnection({ host: url.host, port: url.port });
    return tlsConnect({
      host: url.host,
      port: url.port,
      ...(isIP(url.host) === 0 ? { servername: url.host } : {}),
      rejectUnauthorized: true,
      ...files,
    });
  }

  async #tlsFiles(): Promise<TlsFiles> {
    const t = this.#config.tls;
    const files: TlsFiles = {};
    if (t?.ca_file) files.ca = await readFile(t.ca_file, this.name, "tls.ca_file");
    if (t?.cert_file) files.cert = await readFile(t.cert_file, this.name, "tls.cert_file");
    if (t?.key_file) files.key = await readFile(t.key_file, this.name, "tls.key_file");
    return files;
  }

  #options(): IClientOptions {
    const c = this.#config;
    const options: IClientOptions = {
      manualConnect: true,
      clientId: this.clientId,
      clean: c.clean_session,
      protocolVersion: c.version,
      keepalive: Math.ceil(c.keepalive / 1000),
      connectTimeout: c.connect_timeout,
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
    };
    if (c.version === 5) {
      options.properties = { receiveMaximum: c.max_in_flight };
      if (!c.clean_session) {
        options.properties.sessionExpiryInterval = Math.floor(c.session_expiry / 1000);
      }
    }
    if (c.auth) {
      options.username = c.auth.username;
      if (c.auth.password !== undefined) options.password = c.auth.password;
    }
    if (c.will) {
      options.will = {
        topic: c.will.topic,
        payload: Buffer.from(c.will.payload),
        qos: c.will.qos,
        retain: c.will.retain,
      };
    }
    return options;
  }

  #setState(state: ConnectorState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#since = Date.now();
    if (state !== "connected") this.#wakeFlushWaiters();
  }

  #recordError(message: string): void {
    this.#lastError = { message, at: Date.now() };
  }
}

/** Why the broker refused a CONNECT, for reason/return codes that retrying cannot fix. */
function connackRefusal(version: 4 | 5, code: number): { code: string; text: string } | undefined {
  const auth = "check auth: (username, password) in the connector declaration";
  if (version === 4) {
    switch (code) {
      case 1:
        return { code: "protocol", text: "it does not speak MQTT 3.1.1" };
      case 2:
        return { code: "client_id", text: "client id rejected: set another client_id" };
      case 4:
        return { code: "auth", text: `bad user name or password: ${auth}` };
      case 5:
        return { code: "auth", text: `not authorized: ${auth}` };
    }
    return undefined;
  }
  switch (code) {
    case 0x84:
      return { code: "protocol", text: 'it does not speak MQTT 5: set version: "3.1.1"' };
    case 0x85:
      return { code: "client_id", text: "client id not valid: set another client_id" };
    case 0x86:
      return { code: "auth", text: `bad user name or password: ${auth}` };
    case 0x87:
      return { code: "auth", text: `not authorized: ${auth}` };
    case 0x8a:
      return { code: "auth", text: "this client is banned by the broker" };
    case 0x8c:
      return { code: "auth", text: "bad authentication method" };
  }
  return undefined;
}

const TLS_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function isTlsVerificationError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && TLS_CODES.has(code)) return true;
  const text = errorText(e).toLowerCase();
  return text.includes("tls not authorized") || text.includes("certificate") ||
    text.includes("unknownissuer") || text.includes("invalid peer certificate");
}

/** A failed QoS 1 publish: PUBACK reason codes that mean "never for this event" are final. */
function publishFailure(error: Error): SendFailure {
  const code = (error as { code?: unknown }).code;
  // Not authorized, topic name invalid, packet too large, payload format invalid.
  if (code === 0x87 || code === 0x90 || code === 0x95 || code === 0x99) {
    return { kind: "rejected", reason: errorText(error) };
  }
  return { kind: "error", reason: errorText(error) };
}

/** MQTT 5 user properties from passed headers and dead-letter annotations. */
function userProperties(
  headers: InboundMessage["headers"] | undefined,
  extra: HeaderValues | undefined,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (headers) {
    const all = (headers as { values?: (k: string) => string[] }).values;
    for (const k of headers.keys()) {
      const vs = typeof all === "function" ? all.call(headers, k) : [headers.get(k)];
      out[k] = vs.length === 1 ? vs[0] as string : vs;
    }
  }
  if (extra) { for (const [k, v] of Object.entries(extra)) out[k] = v; }
  return out;
}

async function readFile(path: string, connector: string, key: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    const missing = missingPermission(e);
    throw new RuntimeError(
      missing ? "permission" : "tls_file",
      `Connector "${connector}": cannot read ${key} "${path}": ${
        missing ? describeMissing(missing) : errorText(e)
      }`,
      { cause: e },
    );
  }
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

/** A one-line error text for logs. */
export function errorText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s*\n\s*/g, " ").slice(0, 300);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export { UserProperties };
