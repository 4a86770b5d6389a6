/**
 * The managed NATS client of one connector declaration: one connection shared by every pipeline
 * that names the connector, opened on first use and drained when the last user lets go. It keeps a
 * health record from the client's own status events rather than from a flag set once.
 *
 * @module
 */
import { Overflow } from "../../engine/overflow.ts";
import { SharedUse } from "../../engine/shared_use.ts";
import {
  AuthorizationError,
  credsAuthenticator,
  headers as createHeaders,
  type MsgHdrs,
  type NatsConnection,
  nkeyAuthenticator,
} from "@nats-io/nats-core";
import type {
  Connector,
  ConnectorHealth,
  ConnectorState,
  ControlPlane,
  ControlPlaneConnector,
  Reply,
  RequestOptions,
  Resources,
  SendFailure,
  ServingConnector,
  Sink,
  SinkOptions,
  Source,
  SourceOptions,
} from "../../engine/types.ts";
import { RuntimeError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import { describeMissing, missingPermission } from "../../permissions.ts";
import type { NatsConnectorConfig, NatsSinkConfig, NatsSourceConfig } from "./schema.ts";
import { JetStreamSink } from "./jetstream_sink.ts";
import { JetStreamSource } from "./jetstream_source.ts";
import { NatsControlPlane } from "./control_plane.ts";
import { connect, type DialOptions } from "./deno_transport.ts";
import { ConfirmingNatsSink, NatsSink } from "./sink.ts";
import { NatsSource } from "./source.ts";
import { natsRequest } from "./request.ts";
import { publishData } from "./publish.ts";

/** Bytes published between two confirmations (flushes) of what the server has received. */
const CONFIRM_EVERY_BYTES = 64 * 1024;
/** How long a flush may wait for the server's PONG before what it covers counts as unconfirmed. */
const CONFIRM_TIMEOUT_MS = 10_000;

/** The shared client behind every source and sink of one `type: nats` connector. */
export class NatsConnector
  implements Connector<NatsSourceConfig, NatsSinkConfig>, ServingConnector, ControlPlaneConnector {
  readonly name: string;
  readonly type = "nats";
  readonly #config: NatsConnectorConfig;
  readonly #log: Logger;
  /** Events refused while more than `max_pending` sent bytes are unconfirmed. */
  readonly #overflow: Overflow;
  readonly #fail: (error: Error) => void;
  #nc: NatsConnection | undefined;
  /** Who holds the connection: the first acquire opens it, the last release closes it. */
  readonly #use = new SharedUse((signal) => this.#open(signal), () => this.#close());
  #closing = false;
  #state: ConnectorState = "closed";
  #since = Date.now();
  #reconnects = 0;
  #lastError: { message: string; at: number } | undefined;
  #server: { id: string; version: string; url: string } | undefined;
  // In-flight accounting: bytes handed to the client vs bytes the server has confirmed (by PONG).
  #publishedBytes = 0;
  #confirmedBytes = 0;
  #confirming = false;
  // Confirmation for sinks that confirm (acknowledging pipelines): publishes made while a flush is
  // in flight wait for the next one, so one PING covers everything published meanwhile.
  #confirmWaiting: PromiseWithResolvers<SendFailure | undefined> | undefined;
  #confirmRunning = false;

  constructor(name: string, config: NatsConnectorConfig, resources: Resources) {
    this.name = name;
    this.#config = config;
    this.#log = resources.logger;
    this.#overflow = new Overflow(this.#log, "server");
    this.#fail = resources.fail;
  }

  /** The live connection; only valid between a resolved `acquire()` and the matching `release()`. */
  get connection(): NatsConnection {
    if (!this.#nc) throw new RuntimeError("not_connected", `Connector "${this.name}" is not open`);
    return this.#nc;
  }

  acquire(signal?: AbortSignal): Promise<void> {
    return this.#use.acquire(signal);
  }

  release(): Promise<void> {
    return this.#use.release();
  }

  /** Closes the connection once its last user let go. */
  async #close(): Promise<void> {
    const nc = this.#nc;
    if (!nc) return;
    this.#closing = true;
    try {
      await nc.drain();
    } catch (e) {
      // Draining a connection that is already closed (e.g. the server is gone) is not a failure.
      this.#log.debug("drain failed", { error: errorText(e) });
      await nc.close().catch(() => {});
    }
    this.#nc = undefined;
    this.#setState("closed");
    this.#log.info("connector closed");
  }

  health(): ConnectorHealth {
    const stats = this.#nc?.stats();
    return {
      name: this.name,
      type: this.type,
      state: this.#state,
      since: this.#since,
      reconnects: this.#reconnects,
      lastError: this.#lastError,
      server: this.#state === "connected" ? this.#server : undefined,
      messagesIn: stats?.inMsgs ?? 0,
      messagesOut: stats?.outMsgs ?? 0,
      bytesIn: stats?.inBytes ?? 0,
      bytesOut: stats?.outBytes ?? 0,
      overflows: this.#overflow.count,
      users: this.#use.users,
    };
  }

  /** Round-trip time to the server, when connected. */
  async rtt(): Promise<number | undefined> {
    if (this.#state !== "connected" || !this.#nc) return undefined;
    return await this.#nc.rtt().catch(() => undefined);
  }

  /** The connector's `inbox_prefix`, for subscriptions that take replies (PubAcks). */
  get inboxPrefix(): string | undefined {
    return this.#config.inbox_prefix;
  }

  /** Whether the connection is up now (not connecting, reconnecting or closed). */
  get connected(): boolean {
    return this.#state === "connected" && this.#nc !== undefined;
  }

  createSource(config: NatsSourceConfig, pipeline: string, options?: SourceOptions): Source {
    const log = this.#log.with({ pipeline });
    if (config.jetstream) {
      return new JetStreamSource(this, config.subject, config.jetstream, log);
    }
    return new NatsSource(this, config, log, options?.answers ? pipeline : undefined);
  }

  createSink(config: NatsSinkConfig, pipeline: string, options?: SinkOptions): Sink {
    // A JetStream sink confirms every event by its PubAck anyway.
    if (config.jetstream) return new JetStreamSink(this, config, this.#log.with({ pipeline }));
    return options?.confirm ? new ConfirmingNatsSink(this, config) : new NatsSink(this, config);
  }

  /**
   * Resolves once the server has everything published on this connection so far (one flush shared
   * by every publish since the previous one started), or to a failure of kind `error` when the
   * connection drops first or no confirmation comes within 10 s. Never rejects.
   */
  confirmation(): Promise<SendFailure | undefined> {
    let waiting = this.#confirmWaiting;
    if (!waiting) {
      waiting = this.#confirmWaiting = Promise.withResolvers<SendFailure | undefined>();
      if (!this.#confirmRunning) this.#runConfirmation();
    }
    return waiting.promise;
  }

  /** Why a confirming sink refuses events while the connection is down, with the last error. */
  unavailable(): SendFailure {
    const last = this.#lastError ? `: ${this.#lastError.message}` : "";
    return { kind: "error", reason: `connector "${this.name}" is ${this.#state}${last}` };
  }

  #runConfirmation(): void {
    this.#confirmRunning = true;
    // A microtask later, so that every publish of the batch of messages being handled shares it.
    queueMicrotask(() => {
      const waiting = this.#confirmWaiting;
      this.#confirmWaiting = undefined;
      if (!waiting) {
        this.#confirmRunning = false;
        return;
      }
      this.flush().then(
        () => waiting.resolve(undefined),
        (e: unknown) =>
          waiting.resolve({
            kind: "error",
            reason: `connector "${this.name}": the server did not confirm: ${errorText(e)}`,
          }),
      ).finally(() => {
        this.#confirmRunning = false;
        if (this.#confirmWaiting) this.#runConfirmation();
      });
    });
  }

  /** Sends a request on the shared connection (the `request` processor); see `request.ts`. */
  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Reply> {
    return natsRequest(this.#nc, subject, data, options);
  }

  /**
   * Publishes unless more than `max_pending` bytes are still unconfirmed by the server (a dead or
   * slow uplink), so memory stays bounded; what is refused is counted by the caller.
   */
  publish(
    subject: string,
    data: Uint8Array,
    headers: MsgHdrs | undefined,
  ): SendFailure | undefined {
    const nc = this.#nc;
    if (!nc) return { kind: "error", reason: `connector "${this.name}" is not open` };
    if (
      this.#publishedBytes - this.#confirmedBytes >= this.#config.max_pending &&
      // A late confirmation alone is no proof: the server's reply queues behind everything it
      // sends us, so a flood arriving on this connection delays it while the data went out.
      (heldBytes(nc) ?? Infinity) >= this.#config.max_pending
    ) {
      return this.#overflow.refuse(this.#config.max_pending, this.#state);
    }
    this.#overflow.recovered();
    try {
      if (headers) nc.publish(subject, data, { headers });
      else publishData(nc, subject, data);
    } catch (e) {
      return { kind: isMaxPayloadError(e) ? "rejected" : "error", reason: errorText(e) };
    }
    this.#publishedBytes += data.length + subject.length;
    if (!this.#confirming && this.#publishedBytes - this.#confirmedBytes >= CONFIRM_EVERY_BYTES) {
      this.#confirm();
    }
    return undefined;
  }

  /** Publishes bytes outside any pipeline (health heartbeats), bounded like a sink's sends. */
  publishBytes(subject: string, data: Uint8Array): SendFailure | undefined {
    return this.publish(subject, data, undefined);
  }

  /** Answers requests on `subject` (health over NATS); see {@link ServingConnector.serve}. */
  async serve(
    subject: string,
    respond: () => Promise<Uint8Array>,
    onError: (error: unknown) => void,
  ): Promise<{ stop(): void }> {
    const nc = this.connection;
    const sub = nc.subscribe(subject, {
      callback: (err, msg) => {
        // An exception escaping this callback would close the connection (nats.js reader).
        if (err) return onError(err);
        if (!msg.reply) return;
        respond().then((data) => msg.respond(data)).catch(onError);
      },
    });
    await nc.flush().catch(() => {/* disconnected meanwhile: nats.js subscribes on reconnect */});
    return {
      stop: () => {
        try {
          sub.unsubscribe();
        } catch {
          // The connection is already closed: there is no subscription left.
        }
      },
    };
  }

  /** The fleet control plane (JetStream KV, NATS services) over the live connection. */
  controlPlane(): ControlPlane {
    return new NatsControlPlane(this.connection);
  }

  /**
   * Resolves once the server has everything published so far. Rejects when it cannot say so: the
   * connection is closed, drops before the server answers (nats.js then discards what it had not
   * written), or no answer comes within 10 s.
   */
  async flush(): Promise<void> {
    const nc = this.#nc;
    if (!nc || nc.isClosed()) {
      throw new RuntimeError("not_connected", `Connector "${this.name}" is not connected`);
    }
    const mark = this.#publishedBytes;
    await withTimeout(nc.flush(), CONFIRM_TIMEOUT_MS);
    if (mark > this.#confirmedBytes && this.#nc === nc) this.#confirmedBytes = mark;
  }

  #confirm(): void {
    const nc = this.#nc;
    if (!nc) return;
    this.#confirming = true;
    const mark = this.#publishedBytes;
    nc.flush().then(
      () => {
        if (mark > this.#confirmedBytes) this.#confirmedBytes = mark;
        if (this.#publishedBytes - this.#confirmedBytes < this.#config.max_pending) {
          this.#overflow.recovered();
        }
      },
      () => {/* the connection closed; its status events tell the story */},
    ).finally(() => {
      this.#confirming = false;
      if (this.#publishedBytes - this.#confirmedBytes >= CONFIRM_EVERY_BYTES && this.#nc === nc) {
        this.#confirm();
      }
    });
  }

  async #open(signal?: AbortSignal): Promise<void> {
    const options = await this.#options();
    const { wait, jitter, max_attempts: maxAttempts } = this.#config.reconnect;
    this.#closing = false;
    this.#setState("connecting");
    for (let attempt = 1;; attempt++) {
      signal?.throwIfAborted();
      try {
        const nc = await connect(options);
        this.#nc = nc;
        this.#publishedBytes = this.#confirmedBytes = 0;
        this.#server = {
          id: nc.info?.server_id ?? "",
          version: nc.info?.version ?? "",
          url: nc.getServer(),
        };
        this.#setState("connected");
        this.#log.info("connector connected", { server: nc.getServer(), attempts: attempt });
        this.#watch(nc);
        return;
      } catch (e) {
        if (isAuthError(e)) {
          const error = new RuntimeError(
            "auth",
            `Connector "${this.name}": the server refused the credentials (${
              errorText(e)
            }): check auth: in its declaration`,
            { cause: e },
          );
          this.#recordError(error.message);
          this.#setState("closed");
          throw error;
        }
        // Retrying cannot grant a permission: stop at once and name the flag to add.
        const missing = missingPermission(e);
        if (missing) {
          const error = new RuntimeError(
            "permission",
            `Connector "${this.name}": ${describeMissing(missing)}`,
            { cause: e },
          );
          this.#recordError(error.message);
          this.#setState("closed");
          throw error;
        }
        this.#recordError(errorText(e));
        if (maxAttempts >= 0 && attempt > maxAttempts) {
          this.#setState("closed");
          throw new RuntimeError(
            "unreachable",
            `Connector "${this.name}": no server reachable after ${attempt} attempts: ${
              errorText(e)
            }`,
            { cause: e },
          );
        }
        const delay = wait + Math.random() * jitter;
        this.#log.warn("connector unreachable, retrying", {
          servers: this.#config.servers.join(","),
          error: errorText(e),
          attempt,
          retry_in_ms: Math.round(delay),
        });
        await abortableDelay(delay, signal);
      }
    }
  }

  async #options(): Promise<DialOptions> {
    const c = this.#config;
    const options: DialOptions = {
      // While reconnecting, health names why the last attempt failed, not only "disconnected".
      onDialError: (e) => this.#recordError(errorText(e)),
      servers: c.servers,
      maxReconnectAttempts: c.reconnect.max_attempts,
      reconnectTimeWait: c.reconnect.wait,
      reconnectJitter: c.reconnect.jitter,
      reconnectJitterTLS: c.reconnect.jitter,
      pingInterval: c.ping_interval,
      timeout: c.connect_timeout,
      ignoreClusterUpdates: false,
      // nats.js otherwise captures a stack trace per request (every JetStream publish and ack
      // with a timeout) to report where a timed-out request was made; Sluice reports only the
      // error's text. Measured on the jetstream-sink bench: see docs/performance.md, "Memory".
      noAsyncTraces: true,
    };
    if (c.name) options.name = c.name;
    if (c.inbox_prefix) options.inboxPrefix = c.inbox_prefix;
    const a = c.auth;
    if (a?.token !== undefined) options.token = a.token;
    if (a?.user !== undefined) {
      options.user = a.user;
      options.pass = a.password ?? "";
    }
    if (a?.nkey_seed_file !== undefined) {
      const seed = (await readSecret(a.nkey_seed_file, this.name)).trim();
      options.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
    }
    if (a?.creds_file !== undefined) {
      options.authenticator = credsAuthenticator(
        new TextEncoder().encode(await readSecret(a.creds_file, this.name)),
      );
    }
    const tlsUrl = c.servers.some((s) => s.startsWith("tls://"));
    if (c.tls || tlsUrl) {
      const t = c.tls;
      options.tls = {};
      // Read here rather than by the transport, which reports a file it may not read as missing.
      if (t?.ca_file) options.tls.ca = await readSecret(t.ca_file, this.name);
      if (t?.cert_file) options.tls.cert = await readSecret(t.cert_file, this.name);
      if (t?.key_file) options.tls.key = await readSecret(t.key_file, this.name);
      if (t?.handshake_first) options.tls.handshakeFirst = true;
    }
    return options;
  }

  #watch(nc: NatsConnection): void {
    (async () => {
      for await (const s of nc.status()) {
        switch (s.type) {
          case "disconnect":
            this.#setState("disconnected");
            this.#recordError(`disconnected from ${s.server}`);
            this.#log.warn("connector disconnected", { server: s.server });
            break;
          case "reconnecting":
            if (this.#state !== "reconnecting") this.#log.info("connector reconnecting");
            this.#setState("reconnecting");
            break;
          case "reconnect":
            this.#reconnects++;
            this.#server = {
              id: nc.info?.server_id ?? "",
              version: nc.info?.version ?? "",
              url: s.server,
            };
            // nats.js discarded what it buffered before its last dial; what was published since has
            // been written now: confirm it afresh.
            this.#setState("connected");
            this.#log.info("connector reconnected", {
              server: s.server,
              reconnects: this.#reconnects,
            });
            this.#confirm();
            break;
          case "error":
            this.#recordError(errorText(s.error));
            this.#log.warn("connector error", { error: errorText(s.error) });
            break;
          case "staleConnection":
            this.#recordError("stale connection: no PONG from the server");
            break;
          case "slowConsumer":
            this.#recordError(`slow consumer: ${s.pending} messages pending in the client`);
            break;
          case "close":
            break;
        }
      }
    })().catch(() => {});
    nc.closed().then((err) => {
      this.#setState("closed");
      if (this.#closing || this.#nc !== nc) return;
      // Closed without release(): reconnect attempts ran out or the server rejected us for good.
      const reason = err ? errorText(err) : "the connection was closed";
      this.#recordError(reason);
      this.#nc = undefined;
      this.#use.reset();
      this.#fail(new RuntimeError("closed", `Connector "${this.name}" closed: ${reason}`));
    });
  }

  #setState(state: ConnectorState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#since = Date.now();
  }

  #recordError(message: string): void {
    this.#lastError = { message, at: Date.now() };
  }
}

/** The parts of nats.js 3.4 (pinned) that hold published data not yet handed to the system. */
interface ClientInternals {
  protocol?: {
    outbound?: { size?: () => number };
    transport?: {
      /** The Deno transport (`deno_transport.ts`): bytes the socket has not accepted yet. */
      queuedBytes?: unknown;
      /** `@nats-io/transport-node`, should it be the transport of a connection. */
      socket?: { writableLength?: unknown };
    };
  };
}

/**
 * Bytes published on `nc` that the client still holds in memory: its outbound buffer (which keeps
 * everything published while disconnected) and the transport's write queue (a slow uplink).
 * Undefined when the client does not look as expected; then only the server's confirmation counts.
 */
function heldBytes(nc: NatsConnection): number | undefined {
  const protocol = (nc as ClientInternals).protocol;
  const outbound = protocol?.outbound?.size?.();
  if (typeof outbound !== "number") return undefined;
  const transport = protocol?.transport;
  const queued = transport?.queuedBytes ?? transport?.socket?.writableLength;
  return outbound + (typeof queued === "number" ? queued : 0);
}

/** Headers for an outgoing message: source headers when passed through, plus annotations. */
export function buildHeaders(
  source: MsgHdrs | undefined,
  extra: Readonly<Record<string, string>> | undefined,
): MsgHdrs {
  const h = createHeaders();
  if (source) {
    for (const k of source.keys()) for (const v of source.values(k)) h.append(k, v);
  }
  if (extra) {
    for (const [k, v] of Object.entries(extra)) h.set(k, headerValue(v));
  }
  return h;
}

/** Longest annotation header value; longer ones are cut, so a header can never outgrow a message. */
export const MAX_HEADER_VALUE = 1024;

/**
 * A header value nats.js accepts: no CR or LF (it throws on them, and a throw would escape the
 * synchronous send path) and no other control characters, at most {@link MAX_HEADER_VALUE} chars.
 */
export function headerValue(v: string): string {
  // deno-lint-ignore no-control-regex -- control characters are exactly what is removed
  const clean = v.replace(/[\x00-\x1f\x7f]+/g, " ");
  return clean.length <= MAX_HEADER_VALUE ? clean : `${clean.slice(0, MAX_HEADER_VALUE - 1)}…`;
}

async function readSecret(path: string, connector: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    const missing = missingPermission(e);
    const why = missing
      ? describeMissing(missing)
      : e instanceof Deno.errors.PermissionDenied
      ? `${errorText(e)} (the file's owner or mode keeps this user out)`
      : errorText(e);
    throw new RuntimeError(
      missing ? "permission" : "credentials",
      `Connector "${connector}": cannot read credentials file "${path}": ${why}`,
      { cause: e },
    );
  }
}

/** nats.js refuses a message larger than the server's max_payload: sending again cannot help. */
export function isMaxPayloadError(e: unknown): boolean {
  return errorText(e).includes("max_payload");
}

function isAuthError(e: unknown): boolean {
  if (e instanceof AuthorizationError) return true;
  const text = errorText(e).toLowerCase();
  return text.includes("authorization violation") || text.includes("authentication");
}

/** A one-line error text for logs and headers. */
export function errorText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s*\n\s*/g, " ").slice(0, 300);
}

/** Rejects when `promise` has not settled within `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from the server within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function abortableDelay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
