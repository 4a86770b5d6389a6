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

/** Called for every message a source receives. Must not throw; runs on the client's read loop. */
export type MessageHandler = (msg: InboundMessage) => void;

/** Delivers messages from one subscription (or stream consumer) to the engine. */
export interface Source {
  /** Subscribes; resolves once the server has the subscription. */
  start(handler: MessageHandler): Promise<void>;
  /** Stops taking new messages and resolves once every accepted message has been handled. */
  drain(): Promise<void>;
}

/** Header values a sink adds to what it sends (dead-letter annotations). */
export type HeaderValues = Readonly<Record<string, string>>;

/** Why a sink did not send an event. `kind` tells the engine what to count. */
export interface SendFailure {
  readonly kind: "template" | "overflow" | "error";
  readonly reason: string;
}

/** Sends events to one destination. `send` is synchronous: publishing is buffered by the client. */
export interface Sink {
  /** Sends `msg.data` unchanged; `event` is the decoded payload for subject templates. */
  send(event: unknown, msg: InboundMessage, extraHeaders?: HeaderValues): SendFailure | undefined;
  /** Resolves once everything sent so far has been confirmed by the server. */
  flush(): Promise<void>;
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
  createSource(config: S, pipeline: string): Source;
  createSink(config: K, pipeline: string): Sink;
}
