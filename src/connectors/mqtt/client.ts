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
import { Overflow } from "../../engine/overflow.ts";
import { SharedUse } from "../../engine/shared_use.ts";
import type {
  IClientPublishOptions,
  IConnackPacket,
  IDisconnectPacket,
  IPublishPacket,
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
import { clientOptions, readTlsFiles } from "./connection.ts";
import {
  connackRefusal,
  errorText,
  isTlsVerificationError,
  publishFailure,
  withTimeout,
} from "./failures.ts";
import type { HeldAck } from "./inbound.ts";
import { Router } from "./router.ts";
import type { MqttConnectorConfig, MqttSinkConfig, MqttSourceConfig } from "./schema.ts";
import { MqttSink } from "./sink.ts";
import { MqttSource } from "./source.ts";

/**
 * Node's Buffer, which MQTT.js takes payloads as; imported with MQTT.js on the first connect (a
 * static import of `node:buffer` would load it with every Sluice, bundled or not).
 */
let NodeBuffer: typeof import("node:buffer").Buffer | undefined;

/** A connection that lasted less than this and was closed by the broker counts as a flap. */
const STABLE_MS = 10_000;
/** Longest back-off between attempts while the broker keeps closing us (a client id clash). */
const MAX_BACKOFF_MS = 300_000;
/** How long a graceful stop waits for the will's PUBACK and for pending publishes. */
const STOP_WAIT_MS = 5_000;
/** MQTT 5 reason code of a DISCONNECT: another client connected with our client id. */
const SESSION_TAKEN_OVER = 0x8e;

/** Publish options without properties, by QoS and retain. */
const PLAIN_OPTIONS: readonly [
  readonly [IClientPublishOptions, IClientPublishOptions],
  readonly [IClientPublishOptions, IClientPublishOptions],
] = [
  [{ qos: 0, retain: false }, { qos: 0, retain: true }],
  [{ qos: 1, retain: false }, { qos: 1, retain: true }],
];

/** What MQTT.js passes to `handleMessage`'s callback: an error means "do not PUBACK now". */
const HOLD = new Error("PUBACK held until the sinks accepted the message");

/** MQTT.js internals used here; `_sendPacket` is the only way to send a PUBACK later. */
interface ClientInternals {
  _sendPacket(packet: { cmd: "puback"; messageId: number; reasonCode: number }): void;
}

/** The shared client behind every source and sink of one `type: mqtt` connector. */
export class MqttConnector implements Connector<MqttSourceConfig, MqttSinkConfig> {
  readonly name: string;
  readonly type = "mqtt";
  #clientId: string | undefined;
  readonly #config: MqttConnectorConfig;
  readonly #log: Logger;
  /** Events refused while more than `max_pending` sent bytes are unconfirmed. */
  readonly #overflow: Overflow;
  readonly #fail: (error: Error) => void;
  #client: MqttClient | undefined;
  /** Who holds the connection: the first acquire opens it, the last release closes it. */
  readonly #use = new SharedUse((signal) => this.#open(signal), () => this.#close());
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
  /** Bytes handed to MQTT.js by sinks and not yet written (QoS 0) or PUBACKed (QoS 1). */
  #pendingBytes = 0;
  #flushWaiters: (() => void)[] = [];
  /** Increments on every CONNACK: a PUBACK may only go out on the connection of its PUBLISH. */
  #generation = 0;
  readonly #router: Router;
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
    this.#overflow = new Overflow(this.#log, "broker");
    this.#fail = resources.fail;
    this.#clientId = config.client_id;
    this.#router = new Router(this.#log);
  }

  acquire(signal?: AbortSignal): Promise<void> {
    return this.#use.acquire(signal);
  }

  release(): Promise<void> {
    return this.#use.release();
  }

  /** Closes the connection once its last user let go. */
  async #close(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    this.#closing = true;
    clearTimeout(this.#retryTimer);
    // Parked messages stay unacknowledged: the broker delivers them again next session.
    this.#router.clear();
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

  /**
   * The client id: `client_id`, else `sluice-<hostname>-<connector>`. The hostname is read when
   * the connection opens; a missing permission is an error rather than a silent fallback, since
   * another id would mean another broker session (and the queued messages left behind).
   */
  get clientId(): string {
    this.#clientId ??= `sluice-${hostname(this.name)}-${this.name}`;
    return this.#clientId;
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
          id: this.#clientId ?? "",
          version: this.#config.version === 5 ? "MQTT 5" : "MQTT 3.1.1",
          url: this.#serverUrl,
        }
        : undefined,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      overflows: this.#overflow.count,
      users: this.#use.users,
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
    this.#router.add(source, filter, qos);
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
    this.#router.remove(source);
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
      this.#router.route(packet, held);
    } catch (e) {
      this.#log.error("message routing failed", { error: errorText(e) });
    }
    // HOLD tells MQTT.js to read on without sending the PUBACK: the sources settle it later.
    if (held) callback(HOLD);
    else callback();
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
      return this.#overflow.refuse(this.#config.max_pending, this.#state);
    }
    const size = data.length + topic.length;
    // MQTT.js copies the options, so the plain ones are shared rather than made per event.
    const options: IClientPublishOptions = this.#config.version === 5 && (headers || extra)
      ? { qos, retain, properties: { userProperties: userProperties(headers, extra) } }
      : PLAIN_OPTIONS[qos][retain ? 1 : 0];
    this.#pendingBytes += size;
    this.#messagesOut++;
    this.#bytesOut += data.length;
    // A payload from an MQTT source is a Buffer already; others are wrapped without a copy.
    const payload = NodeBuffer!.isBuffer(data)
      ? data
      : NodeBuffer!.from(data.buffer, data.byteOffset, data.byteLength);
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
    if (this.#pendingBytes < this.#config.max_pending) this.#overflow.recovered();
    if (this.#pendingBytes === 0) this.#wakeFlushWaiters();
  }

  #wakeFlushWaiters(): void {
    for (const w of this.#flushWaiters.splice(0)) w();
  }

  // ---- connection -------------------------------------------------------------------------

  async #open(signal?: AbortSignal): Promise<void> {
    const options = clientOptions(this.#config, this.clientId); // may throw: no host name
    const files = await readTlsFiles(this.#config, this.name);
    this.#closing = false;
    this.#fatal = undefined;
    this.#everConnected = false;
    this.#attempts = 0;
    this.#flaps = 0;
    this.#setState("connecting");
    const first = Promise.withResolvers<void>();
    this.#firstConnect = first;
    // MQTT.js and the sockets are loaded on the first connect, not with Sluice: a configuration
    // without an MQTT connector never loads them (docs/performance.md, "Memory").
    const [{ MqttClient: Client, socketOpener }, { Buffer }] = await Promise.all([
      import("./library.ts"),
      import("node:buffer"),
    ]);
    NodeBuffer = Buffer;
    const openSocket = await socketOpener();
    // Our own stream builder (see socket.ts): each attempt goes to the next URL of the list.
    const client = new Client(() => {
      const urls = this.#config.url;
      const url = urls[this.#nextUrl++ % urls.length]!;
      this.#serverUrl = url.text;
      return openSocket(url, files);
    }, options);
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
    const byFilter = this.#router.subscriptions();
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
    this.#router.clear();
    client.end(true);
    if (this.#client === client) this.#client = undefined;
    this.#use.reset();
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

function hostname(connector: string): string {
  try {
    return Deno.hostname();
  } catch (e) {
    const missing = missingPermission(e);
    throw new RuntimeError(
      missing ? "permission" : "hostname",
      `Connector "${connector}": the default client id needs the host name: ${
        missing ? describeMissing(missing) : errorText(e)
      }, or set client_id`,
      { cause: e },
    );
  }
}
