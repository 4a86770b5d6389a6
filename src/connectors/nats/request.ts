/**
 * Requests over core NATS for the `request` processor, and answers to requests for `reply: true`
 * pipelines. nats.js reports failures as its own error classes; they become the engine's
 * {@link RequestError} codes here, and a reply that carries a service error header (the NATS
 * services protocol's `Nats-Service-Error-Code`, or Sluice's own `Sluice-Error`) is an error too.
 *
 * @module
 */
import {
  headers as createHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  RequestError as NatsRequestError,
  TimeoutError,
} from "@nats-io/nats-core";
import {
  type HeaderValues,
  type InboundMessage,
  type Reply,
  RequestError,
  type RequestOptions,
  type SendFailure,
} from "../../engine/types.ts";

/** Header of the NATS services protocol carrying an error code (e.g. `500`). */
export const SERVICE_ERROR_CODE = "Nats-Service-Error-Code";
/** Header of the NATS services protocol carrying an error text. */
export const SERVICE_ERROR = "Nats-Service-Error";
/** Sluice's own error header, set on dead letters and on error answers of `reply: true`. */
export const SLUICE_ERROR = "Sluice-Error";

/**
 * Sends one request on `nc` and resolves with its reply.
 *
 * @throws {RequestError} `timeout`, `no_responders`, `error_reply`, or `unavailable` when the
 * client refused to send (closed, draining, payload too large).
 */
export async function natsRequest(
  nc: NatsConnection | undefined,
  subject: string,
  data: Uint8Array,
  options: RequestOptions,
): Promise<Reply> {
  if (!nc) throw new RequestError("unavailable", "the connector is not open");
  let msg: Msg;
  try {
    msg = await nc.request(subject, data, { timeout: options.timeoutMs });
  } catch (e) {
    throw requestFailure(e, subject, options.timeoutMs);
  }
  const h = msg.headers;
  if (h) {
    const code = h.get(SERVICE_ERROR_CODE);
    const sluice = h.get(SLUICE_ERROR);
    if (code !== "" || sluice !== "") {
      const text = h.get(SERVICE_ERROR) || sluice || "no description";
      throw new RequestError(
        "error_reply",
        `error reply${code ? ` ${code}` : ""} from "${subject}": ${oneLine(text)}`,
      );
    }
  }
  return { data: msg.data, headers: h };
}

function requestFailure(e: unknown, subject: string, timeoutMs: number): RequestError {
  if (e instanceof TimeoutError) {
    return new RequestError("timeout", `timeout after ${timeoutMs}ms on "${subject}"`, {
      cause: e,
    });
  }
  if (e instanceof NatsRequestError && e.isNoResponders()) {
    return new RequestError("no_responders", `no responders on "${subject}"`, { cause: e });
  }
  const text = e instanceof Error ? e.message : String(e);
  return new RequestError("unavailable", `request on "${subject}" failed: ${oneLine(text)}`, {
    cause: e,
  });
}

/**
 * Whether a message carries a reply subject. nats.js decodes `msg.reply` from bytes on each read
 * until it is non-empty, so for a message without one every check costs a TextDecoder call
 * (~0.3 µs); its parsed form says so for free. Other messages ask the public getter.
 */
export function hasReply(msg: Msg): boolean {
  const parsed = (msg as { _msg?: { reply?: Uint8Array } })._msg;
  if (parsed !== undefined && typeof parsed === "object") {
    return parsed.reply !== undefined && parsed.reply.length > 0;
  }
  return msg.reply !== "";
}

/** Publishes an answer; the connector's `publish`, so answers count against its `max_pending`. */
export type AnswerPublisher = (
  subject: string,
  data: Uint8Array,
  headers: MsgHdrs | undefined,
) => SendFailure | undefined;

/** Told of every answer sent: time since the request arrived, and its error text if any. */
export type AnswerObserver = (elapsedMs: number, error: string | undefined) => void;

/**
 * The message as the engine sees it, with `answer` when it carries a reply subject. Messages
 * without one are handed over as they are, so plain events allocate nothing here.
 */
export function answerable(
  msg: Msg,
  publish: AnswerPublisher,
  observe?: AnswerObserver,
): InboundMessage {
  const reply = msg.reply;
  if (!reply) return msg;
  const received = observe ? performance.now() : 0;
  return new AnswerableMessage(msg, (data: Uint8Array, values?: HeaderValues) => {
    let h: MsgHdrs | undefined;
    if (values) {
      h = createHeaders();
      // Header values may not hold line breaks (nats.js refuses them).
      for (const [k, v] of Object.entries(values)) h.set(k, oneLine(v));
    }
    if (observe) {
      const failed = values?.[SERVICE_ERROR_CODE] !== undefined;
      observe(performance.now() - received, failed ? values?.[SLUICE_ERROR] ?? "" : undefined);
    }
    return publish(reply, data, h);
  });
}

/**
 * A request as the engine sees it. The subject and headers are read from the nats.js message only
 * when asked for: it decodes them from bytes on first read, and a service pipeline that answers
 * every request often never needs the subject.
 */
class AnswerableMessage implements InboundMessage {
  readonly data: Uint8Array;
  readonly answer: NonNullable<InboundMessage["answer"]>;
  readonly #msg: Msg;

  constructor(msg: Msg, answer: NonNullable<InboundMessage["answer"]>) {
    this.#msg = msg;
    this.data = msg.data;
    this.answer = answer;
  }

  get subject(): string {
    return this.#msg.subject;
  }

  get headers(): MsgHdrs | undefined {
    return this.#msg.headers;
  }
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+\s*/g, " ").slice(0, 300);
}
