/**
 * The narrow contracts between the engine and connector implementations. A connector type provides
 * a shared client (the {@link Connector}), sources that deliver messages, and sinks that send them.
 *
 * @module
 */
import type { HeaderSource } from "../filter/filter.ts";
import type { Logger } from "../log.ts";

/** A message as a source delivers it. nats.js `Msg` satisfies this without copying. */
export interface InboundMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers?: HeaderSource | undefined;
  /**
   * Separator of the subject's tokens for `_tokens` (filters, sink templates): "." when absent
   * (NATS), "/" for MQTT topics. (Interim, until the registry's `tokenSeparator` reaches the engine.)
   */
  readonly tokenSeparator?: string | undefined;
  /**
   * Answers the message (a request): present only on messages that carry a reply address and come
   * from a source that can answer them (core NATS), so plain events cost nothing. Used by
   * `reply: true` pipelines; returns why the answer could not be sent, if it could not.
   */
  readonly answer?: (data: Uint8Array, headers?: HeaderValues) => SendFailure | undefined;
}

/** Health of one connector, as tracked from its client's status events. */
export type ConnectorState =
  | "connecting"
  | "connected"
  | "reconnecting"
  | "disconnected"
  | "closed";

/** What a connector reports about itself; never carries credentials. */
export interface ConnectorHealth {
  name: string;
  type: string;
  state: ConnectorState;
  /** When the state last changed (ms since epoch). */
  since: number;
  reconnects: number;
  lastError: { message: string; at: number } | undefined;
  server: { id: string; version: string; url: string } | undefined;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Events refused because too much sent data was still unconfirmed by the server. */
  overflows: number;
  /** Pipelines currently using this connector. */
  users: number;
}

/** Resources handed to factories: a logger already labelled with the component. */
export interface Resources {
  logger: Logger;
  /** Reports a failure the component cannot recover from; the process then stops with exit 1. */
  fail(error: Error): void;
}

/**
 * Settles one message of an acknowledging source (a JetStream consumer). The engine calls exactly
 * one of the three, once, after every sink has accepted the event, refused it, or found it poison.
 */
export interface Acknowledger {
  /** Every sink accepted the event (or the filter rejected it): do not deliver it again. */
  ack(): void;
  /** A sink failed: deliver it again later; the source chooses the backoff delay. */
  nak(): void;
  /** The message can never be handled (malformed, evaluation error): never deliver it again. */
  term(reason: string): void;
}

/**
 * Called for every message a source receives. Must not throw; runs on the client's read loop.
 * Sources with acknowledgements pass an {@link Acknowledger}; core NATS sources pass none, and
 * then nothing is awaited per event.
 */
export type MessageHandler = (msg: InboundMessage, acker?: Acknowledger) => void;

/** Delivers messages from one subscription (or stream consumer) to the engine. */
export interface Source {
  /** Subscribes; resolves once the server has the subscription. */
  start(handler: MessageHandler): Promise<void>;
  /** Stops taking new messages and resolves once every accepted message has been handled. */
  drain(): Promise<void>;
  /**
   * Messages received but not yet handed to the engine, for the health snapshot's `in_flight`.
   * Absent when the source hands every message over synchronously as it arrives (core NATS).
   */
  pending?(): number;
  /**
   * True when the source settles each message through an {@link Acknowledger} (a JetStream
   * consumer). Its pipeline then creates sinks with {@link SinkOptions.confirm}, so that an ack
   * never covers an event still sitting in a client buffer. Absent means false.
   */
  readonly acknowledges?: boolean;
}

/** Header values a sink adds to what it sends (dead-letter annotations). */
export type HeaderValues = Readonly<Record<string, string>>;

/**
 * Why a sink did not send an event. `kind` tells the engine what to count and whether trying
 * again can help: `template` (no subject can be rendered from the event) and `rejected` (the
 * destination refuses this event for good, e.g. it exceeds the server's max payload) never will;
 * `overflow` and `error` may.
 */
export interface SendFailure {
  readonly kind: "template" | "rejected" | "overflow" | "error";
  readonly reason: string;
}

/**
 * What {@link Sink.send} returns: `undefined` when the event was accepted, a failure, or, for a
 * sink that must wait for a confirmation (a JetStream PubAck, a durable outbox append), a promise
 * of either. The promise never rejects.
 */
export type SendResult = SendFailure | undefined | Promise<SendFailure | undefined>;

/**
 * Sends events to one destination. Core NATS sinks answer synchronously (publishing is buffered by
 * the client); the engine awaits only results that are promises.
 */
/**
 * Where a sink may report a failure that it learns only later, instead of returning a promise:
 * the engine passes one per pipeline, created once, on the path where nobody awaits the result (a
 * source without acknowledgements). A sink that waits for confirmations (a JetStream PubAck) then
 * holds no promise, reaction and closure per event in flight, which under a flood all outlive a
 * young-generation collection and fill the old one (docs/performance.md, "What bounds the
 * JetStream sink").
 */
export interface SendReport {
  /** `msg` is the message `send` was given; called at most once per send, never during it. */
  failed(msg: InboundMessage, failure: SendFailure): void;
  /**
   * When present, called instead for every event the sink confirmed (once, never during `send`),
   * so that an acknowledging source's pipeline can ack it without a promise.
   */
  confirmed?(msg: InboundMessage): void;
}

export interface Sink {
  /**
   * Sends `msg.data` unchanged; `event` is the decoded payload for subject templates. With
   * `report`, a {@link Sink.selfConfirming} sink returns `undefined` for an event it is still
   * confirming and reports a failure through `report` later; other sinks ignore it.
   */
  send(
    event: unknown,
    msg: InboundMessage,
    extraHeaders?: HeaderValues,
    report?: SendReport,
  ): SendResult;
  /** Resolves once everything sent so far has been confirmed by the server. */
  flush(): Promise<void>;
  /**
   * True for a sink that confirms each event itself (a JetStream sink awaits its PubAck): its
   * `flush` waits for those confirmations, and its `send`, given a {@link SendReport}, returns
   * `undefined` for an event still being confirmed and reports a failure later. Absent means
   * false: `undefined` from `send` means accepted.
   */
  readonly selfConfirming?: boolean;
  /**
   * Whether the sink's connection is up, so a store-and-forward buffer can hold events instead of
   * handing them to a client that cannot deliver them. Absent means always ready.
   */
  ready?(): boolean;
  /**
   * Loads what the sink needs before its first `send` (e.g. the hash of `msg_id:`); called once,
   * right after the sink is created. Absent means nothing to load.
   */
  open?(): Promise<void>;
  /** Lets go of what the sink holds (e.g. an outbox file); called once, after the last `flush`. */
  close?(): Promise<void>;
}

/** How a pipeline uses a sink, decided when the sink is created. */
export interface SinkOptions {
  /**
   * The pipeline's source acknowledges events: `send` must resolve only once the destination's
   * server has the event (a flush, a PubAck) and fail (kind `error`, so the source redelivers)
   * when it cannot tell. Without it, a core sink answers synchronously and confirms in bulk.
   *
   * @default false
   */
  confirm?: boolean;
}

/** A shared, reference-counted client for one connector declaration. */
export interface Connector<S, K> {
  readonly name: string;
  readonly type: string;
  /** Takes a reference; the first one opens the connection and resolves once it is connected. */
  acquire(signal?: AbortSignal): Promise<void>;
  /** Drops a reference; the last one drains and closes the connection. */
  release(): Promise<void>;
  health(): ConnectorHealth;
  /** Round-trip time to the server in milliseconds, when connected; for the health snapshot. */
  rtt?(): Promise<number | undefined>;
  createSource(config: S, pipeline: string, options?: SourceOptions): Source;
  createSink(config: K, pipeline: string, options?: SinkOptions): Sink;
  /**
   * Sends a request and resolves with its reply, for the `request` processor. Present only on
   * connector types that can (their registration says `requests: true`). Rejects with a
   * {@link RequestError}; a reply that reports an error (a service error header) is one too.
   */
  request?(subject: string, data: Uint8Array, options: RequestOptions): Promise<Reply>;
}

/**
 * An address (a NATS subject) rendered per event from a template such as `lookup.{sensor}`,
 * compiled once at config load by the connector type's `compileAddress`.
 */
export interface AddressTemplate {
  /** The template as written. */
  readonly source: string;
  /**
   * False when rendering never reads the address (no placeholder takes a token of it), so a
   * caller may pass "" rather than decode it; absent means it may.
   */
  readonly usesAddress?: boolean;
  /** The address for an event received on `address`, or why there is none. Never throws. */
  render(event: unknown, address: string): string | { readonly failure: string };
}

/** How a pipeline uses a source beyond its settings. */
export interface SourceOptions {
  /**
   * The pipeline answers requests (`reply: true`). A source may announce it for discovery (a NATS
   * source: as a service named after the pipeline, answering `$SRV.PING/INFO/STATS`).
   */
  readonly answers?: boolean;
}

/** Options of {@link Connector.request}. */
export interface RequestOptions {
  /** How long to wait for the reply, in milliseconds. */
  readonly timeoutMs: number;
}

/** A successful reply to {@link Connector.request}. */
export interface Reply {
  readonly data: Uint8Array;
  readonly headers?: HeaderSource | undefined;
}

/**
 * Why a request got no usable reply. `timeout`: none came in time; `no_responders`: nobody
 * listens on the subject; `error_reply`: the service answered with an error; `unavailable`: the
 * connector is not open or refused to send; `overloaded`: too many requests are in flight.
 */
export type RequestErrorCode =
  | "timeout"
  | "no_responders"
  | "error_reply"
  | "unavailable"
  | "overloaded";

/** A request that failed; the message is one line fit for a dead-letter header. */
export class RequestError extends Error {
  /** Stable code. */
  readonly code: RequestErrorCode;

  constructor(code: RequestErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RequestError";
    this.code = code;
  }
}

/**
 * A connector that answers requests and publishes outside any pipeline: what health over NATS
 * needs of its connector. The `nats` connector type provides it; health code asks for the
 * capability, never for a type.
 */
export interface ServingConnector extends Connector<unknown, unknown> {
  /** Publishes bytes outside any pipeline (a heartbeat); a failure when refused. */
  publishBytes(subject: string, data: Uint8Array): SendFailure | undefined;
  /**
   * Answers each request on `subject` with the bytes `respond` produces; resolves once the server
   * has the subscription (or, while disconnected, once the client will make it on reconnect).
   * Errors of one request go to `onError` and never reach the connection.
   */
  serve(
    subject: string,
    respond: () => Promise<Uint8Array>,
    onError: (error: unknown) => void,
  ): Promise<{ stop(): void }>;
}

/** Whether a connector provides {@link ServingConnector}. */
export function isServing(c: unknown): c is ServingConnector {
  if (typeof c !== "object" || c === null) return false;
  const candidate = c as Partial<ServingConnector>;
  return typeof candidate.serve === "function" && typeof candidate.publishBytes === "function";
}

/** One change of a watched key of a key-value bucket (a JetStream KV bucket for `nats`). */
export interface KeyValueChange {
  key: string;
  /** The new value; undefined when the key was deleted or purged. */
  value: Uint8Array | undefined;
  /** The bucket's revision of this change: grows with every write to the bucket. */
  revision: number;
}

/** A running watch of a bucket's keys. */
export interface KeyValueWatch {
  /** Resolves once the values the bucket held when the watch started have all been delivered. */
  readonly ready: Promise<void>;
  /** Stops delivering changes. */
  stop(): void;
}

/** One endpoint of a {@link ServiceSpec}: answers requests on `subject` with JSON. */
export interface ServiceEndpointSpec {
  name: string;
  subject: string;
  /** Produces the reply; a thrown error becomes a service error reply (code 500). */
  handle(request: Uint8Array): Promise<unknown>;
}

/** A discoverable service (the NATS services protocol for `nats`: `$SRV.PING`, INFO, STATS). */
export interface ServiceSpec {
  name: string;
  version: string;
  description: string;
  metadata: Record<string, string>;
  endpoints: ServiceEndpointSpec[];
}

/**
 * What the fleet control plane needs of its connector: watching a key-value bucket and being a
 * discoverable service. Valid between a resolved `acquire()` and the matching `release()`; the
 * `nats` connector type provides it (JetStream KV and the NATS services protocol).
 */
export interface ControlPlane {
  /**
   * Watches the keys matching any of `filters` (`*` one token, a final `>` the rest), first
   * delivering what the bucket holds for them, then every change. `onChange` must not throw.
   *
   * @param domain The JetStream domain holding the bucket (a hub reached through a leaf node).
   * @throws when the bucket does not exist or the watch is refused (permissions).
   */
  watch(
    bucket: string,
    filters: readonly string[],
    onChange: (change: KeyValueChange) => void,
    domain?: string,
  ): Promise<KeyValueWatch>;
  /** Starts answering as a service; resolves once its subscriptions are made. */
  addService(spec: ServiceSpec): Promise<{ stop(): Promise<void> }>;
}

/** A connector that carries a {@link ControlPlane} (a `nats` connector). */
export interface ControlPlaneConnector extends ServingConnector {
  /** The control plane over this connector's live connection. */
  controlPlane(): ControlPlane;
}

/** Whether a connector provides {@link ControlPlaneConnector}. */
export function hasControlPlane(c: unknown): c is ControlPlaneConnector {
  return isServing(c) && typeof (c as Partial<ControlPlaneConnector>).controlPlane === "function";
}
