/**
 * Awaiting JetStream PubAcks without nats.js's request machinery. `js.publish` makes every
 * publish a request: a copy of its options, an empty header set, a request object with its own
 * timer, a promise and, on the way, a retry loop. Under a flood with a thousand PubAcks in flight
 * those outlive two young-generation collections, so the old generation fills with them until a
 * full collection: the JetStream sink peaked at 158 MiB where a core sink stays under 80 (see
 * docs/performance.md, "What bounds the JetStream sink"). A tracker publishes with a reply subject
 * of its own (`<inbox>.<n>`), takes every PubAck on one wildcard subscription, and expires the
 * unanswered with one timer: per publish, one entry in a `Map`, which is the caller's own waiter.
 *
 * @module
 */
import {
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from "@nats-io/nats-core";
import type { Logger } from "../../log.ts";

/** Why a publish has no PubAck. */
export type PubAckErrorCode =
  /** Nothing answered within the timeout. */
  | "timeout"
  /** The server answered that nothing subscribes to the subject: no stream captures it. */
  | "no_stream"
  /** The stream answered with an error (limits reached, an expectation not met). */
  | "refused"
  /** The answer was not a PubAck. */
  | "invalid"
  /** The connection closed, or the PubAck subscription failed, before the answer arrived. */
  | "closed";

/** A publish that got no PubAck; `message` says what the server or the tracker saw. */
export class PubAckError extends Error {
  readonly code: PubAckErrorCode;
  constructor(code: PubAckErrorCode, message: string) {
    super(message);
    this.name = "PubAckError";
    this.code = code;
  }
}

/**
 * One publish awaiting its PubAck: the tracker calls exactly one of its two methods, once. The
 * waiter is the tracker's entry itself (no promise, no closure per publish), so what a publish in
 * flight holds is this object and the caller's own state in it.
 */
export abstract class PubAckWaiter {
  /** The subject published on, for error messages. */
  abstract readonly subject: string;
  /** Set by the tracker: the sweep after which the publish expires. */
  expiresAt = 0;
  /** The stream stored the message; `duplicate` when it had one with this `Nats-Msg-Id`. */
  abstract acked(duplicate: boolean): void;
  /** The publish has no PubAck. */
  abstract failed(e: PubAckError): void;
}

/** Shortest pause between two sweeps for expired publishes. */
const MIN_SWEEP_MS = 10;

const decoder = new TextDecoder();

/**
 * Publishes on one connection and hands each publish's PubAck to its waiter. Every publish has
 * the same timeout, so publishes expire in the order they were made and a sweep stops at the
 * first that has time left. Expiry is counted in sweeps (an integer, no clock read per publish):
 * a publish fails between `timeout` and `timeout` plus one sweep period after it was made.
 */
export class PubAckTracker {
  /** The connection this tracker publishes on and subscribes to. */
  readonly nc: NatsConnection;
  readonly #log: Logger;
  readonly #timeout: number;
  readonly #period: number;
  readonly #sweeps: number;
  readonly #prefix: string;
  readonly #sub: Subscription;
  readonly #pending = new Map<number, PubAckWaiter>();
  #next = 0;
  #sweep = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #failure: PubAckError | undefined;

  /**
   * @param nc An open connection.
   * @param timeoutMs How long each publish waits for its PubAck.
   * @param inboxPrefix The connector's `inbox_prefix`, when its permissions name one.
   * @param log Where a waiter's own failure is reported.
   */
  constructor(
    nc: NatsConnection,
    timeoutMs: number,
    inboxPrefix: string | undefined,
    log: Logger,
  ) {
    this.nc = nc;
    this.#log = log;
    this.#timeout = timeoutMs;
    this.#period = Math.max(MIN_SWEEP_MS, Math.ceil(timeoutMs / 10));
    this.#sweeps = Math.ceil(timeoutMs / this.#period);
    this.#prefix = `${createInbox(inboxPrefix)}.`;
    this.#sub = nc.subscribe(`${this.#prefix}*`, {
      callback: (err, msg) => {
        // An exception escaping this callback would close the shared connection (nats.js).
        try {
          if (err) {
            this.#failAll(new PubAckError("closed", `PubAck subscription failed: ${err.message}`));
          } else this.#receive(msg);
        } catch (e) {
          this.#log.error("PubAck handling failed", { error: String(e) });
        }
      },
    });
    // The subscription ends with the connection (or with close()): nothing more can arrive. Not
    // nc.closed(), whose reaction would keep every tracker a reload replaced until the connection
    // ends.
    this.#sub.closed.then(() => {
      this.#failAll(new PubAckError("closed", "the connection closed before the PubAck arrived"));
    });
  }

  /** False once the connection closed, the subscription failed or {@link close} was called. */
  get usable(): boolean {
    return this.#failure === undefined && !this.nc.isClosed();
  }

  /** Publishes awaiting their PubAck. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Publishes `data` on `subject` with a reply subject of this tracker's; `waiter` learns the
   * outcome later, never during this call.
   *
   * @throws Synchronously, whatever `nc.publish` throws (a payload over the server's maximum, a
   * closed connection), and the tracker's failure once it is not {@link usable}.
   */
  publish(subject: string, data: Uint8Array, headers: MsgHdrs | undefined, waiter: PubAckWaiter) {
    if (this.#failure) throw this.#failure;
    const id = ++this.#next;
    const reply = this.#prefix + id;
    this.nc.publish(subject, data, headers ? { reply, headers } : { reply });
    // Expires at the (sweeps + 1)-th sweep from now: the next one may come at once.
    waiter.expiresAt = this.#sweep + this.#sweeps + 1;
    this.#pending.set(id, waiter);
    this.#timer ??= setInterval(() => this.#expire(), this.#period);
  }

  /** Stops listening; publishes still waiting fail with code `closed`. */
  close(): void {
    this.#failAll(new PubAckError("closed", "the sink closed before the PubAck arrived"));
    try {
      this.#sub.unsubscribe();
    } catch {
      // The connection closed meanwhile: the subscription is gone with it.
    }
  }

  #receive(msg: Msg): void {
    const id = Number(msg.subject.slice(this.#prefix.length));
    const waiter = this.#pending.get(id);
    // An answer after its publish expired: the retry (with the same Nats-Msg-Id) decides.
    if (waiter === undefined) return;
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#stopTimer();
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      waiter.failed(
        new PubAckError(
          "no_stream",
          `no stream captures subject "${waiter.subject}" (no JetStream answered the ` +
            `publish): add the subject to a stream's subjects, or enable JetStream on the server`,
        ),
      );
      return;
    }
    let answer: { stream?: unknown; duplicate?: unknown; error?: unknown } | undefined;
    try {
      answer = JSON.parse(decoder.decode(msg.data));
    } catch {
      answer = undefined;
    }
    if (answer?.error !== undefined) {
      const e = answer.error as { description?: unknown; err_code?: unknown; code?: unknown };
      waiter.failed(
        new PubAckError(
          "refused",
          `the stream refused the message on "${waiter.subject}": ${String(e.description)} ` +
            `(JetStream error ${String(e.err_code ?? e.code)})`,
        ),
      );
    } else if (typeof answer?.stream === "string" && answer.stream !== "") {
      waiter.acked(answer.duplicate === true);
    } else {
      waiter.failed(
        new PubAckError("invalid", `the answer to a publish on "${waiter.subject}" is no PubAck`),
      );
    }
  }

  #expire(): void {
    const sweep = ++this.#sweep;
    for (const [id, waiter] of this.#pending) {
      if (waiter.expiresAt > sweep) break;
      this.#pending.delete(id);
      this.#fail(waiter, new PubAckError("timeout", `no PubAck within ${this.#timeout} ms`));
    }
    if (this.#pending.size === 0) this.#stopTimer();
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #failAll(e: PubAckError): void {
    this.#failure ??= e;
    const waiting = [...this.#pending.values()];
    this.#pending.clear();
    this.#stopTimer();
    for (const w of waiting) this.#fail(w, e);
  }

  /** Tells `waiter`; a timer or the closed connection calls this, so nothing may escape it. */
  #fail(waiter: PubAckWaiter, e: PubAckError): void {
    try {
      waiter.failed(e);
    } catch (x) {
      this.#log.error("PubAck handling failed", { error: String(x) });
    }
  }
}
