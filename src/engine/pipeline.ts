/**
 * One running pipeline: source → decode → filter → sinks, with a counter at each step. With a core
 * NATS source and core NATS sinks the path of an event is synchronous: nothing is awaited per
 * event, and nothing throws out of it. Only sinks that confirm asynchronously (JetStream, an
 * outbox) return promises, and only an acknowledging source (JetStream) makes the pipeline wait
 * for them before it acks, naks or terms the message.
 *
 * @module
 */
import type { EndpointDecl, PipelineDecl } from "../config/config.ts";
import { compileFilter, type Filter } from "../filter/filter.ts";
import type { Logger } from "../log.ts";
import { newCounters, type PipelineCounters } from "./counters.ts";
import { connectorsOf } from "./reload.ts";
import { BufferedSink, type BufferHealth } from "./buffered_sink.ts";
import { Outbox } from "./outbox.ts";
import type {
  Acknowledger,
  Connector,
  InboundMessage,
  SendFailure,
  SendResult,
  Sink,
  Source,
} from "./types.ts";

/** Lifecycle of a pipeline. `degraded` is derived from connector health by the health model. */
export type PipelineState = "starting" | "running" | "stopping" | "stopped";

/** Looks up the shared connector of a name. */
export type ConnectorLookup = (name: string) => Connector<unknown, unknown>;

const decoder = new TextDecoder("utf-8", { fatal: true });
const looseDecoder = new TextDecoder("utf-8");

/**
 * Decodes UTF-8, throwing a TypeError on invalid input like the fatal decoder, at a third of its
 * cost: the lenient decoder is much faster, and a U+FFFD in its output (an invalid sequence it
 * replaced, or a genuine one) sends the payload through the validating decoder to decide.
 */
function decodeUtf8(data: Uint8Array): string {
  const text = looseDecoder.decode(data);
  return text.includes("\uFFFD") ? decoder.decode(data) : text;
}

/** Warnings about failing events are rate-limited: the first at once, then one summary a period. */
const WARN_EVERY_MS = 30_000;

/** A pipeline wired to its connectors. */
export class Pipeline {
  readonly name: string;
  readonly decl: PipelineDecl;
  readonly counters: PipelineCounters;
  state: PipelineState = "starting";
  readonly #filter: Filter | undefined;
  readonly #log: Logger;
  readonly #lookup: ConnectorLookup;
  readonly #acquired: Connector<unknown, unknown>[] = [];
  #source: Source | undefined;
  #sinks: Sink[] = [];
  #deadLetter: Sink | undefined;
  #buffers: BufferedSink[] = [];
  /** Connections opened in the background (used only by buffered sinks), until they are up. */
  readonly #connecting: Promise<void>[] = [];
  readonly #stopping = new AbortController();
  readonly #warned = new Map<string, { at: number; suppressed: number }>();
  /** Whether the clock is read for `lastEventAt` once the current batch of events is handled. */
  #stampPending = false;
  readonly #stamp = (): void => {
    this.#stampPending = false;
    this.counters.lastEventAt = Date.now();
  };

  /** `counters` carries a replaced pipeline's totals over a reload, so metrics stay monotonic. */
  constructor(
    decl: PipelineDecl,
    lookup: ConnectorLookup,
    log: Logger,
    counters: PipelineCounters = newCounters(),
  ) {
    this.name = decl.name;
    this.counters = counters;
    this.decl = decl;
    this.#lookup = lookup;
    this.#log = log;
    this.#filter = decl.filter === undefined ? undefined : compileFilter(decl.filter);
  }

  /** Names of the connectors this pipeline uses, without repeats. */
  connectorNames(): string[] {
    return connectorsOf(this.decl);
  }

  /**
   * Messages its source has received but not yet handed over, for health. 0 for sources that
   * hand every message over synchronously as it arrives (core NATS).
   */
  inFlight(): number {
    return this.#source?.pending?.() ?? 0;
  }

  /** The store-and-forward outboxes of its sinks, for health. */
  buffers(): BufferHealth[] {
    return this.#buffers.map((b) => b.health());
  }

  /** Opens (or joins) its connectors, builds sinks, then subscribes. */
  async start(signal?: AbortSignal): Promise<void> {
    const background = this.#bufferedOnly();
    for (const name of this.connectorNames()) {
      const c = this.#lookup(name);
      if (background.has(name)) {
        this.#acquireInBackground(c, signal);
        continue;
      }
      await c.acquire(signal);
      this.#acquired.push(c);
    }
    const src = this.decl.source;
    this.#source = this.#lookup(src.connector).createSource(src.settings, this.name);
    // An acknowledging source acks only what the sinks' servers confirmed.
    const options = { confirm: this.#source.acknowledges === true };
    const sink = (e: EndpointDecl): Sink => {
      const inner = this.#lookup(e.connector).createSink(e.settings, this.name, options);
      if (!e.buffer) return inner;
      const counters = this.counters;
      const outbox = Outbox.open({
        path: e.buffer.path,
        maxBytes: e.buffer.maxSize,
        overflow: e.buffer.overflow,
        onDrop: (n) => {
          counters.bufferDropped += n;
          this.#warn("outbox_overflow", `outbox full: dropped ${n} oldest events`, e.buffer!.path);
        },
      });
      const buffered = new BufferedSink(inner, outbox, counters, this.#log);
      this.#buffers.push(buffered);
      return buffered;
    };
    try {
      this.#sinks = this.decl.sinks.map(sink);
      this.#deadLetter = this.decl.deadLetter ? sink(this.decl.deadLetter) : undefined;
    } catch (e) {
      // An outbox that cannot be opened stops the start; let go of what was opened already.
      await this.#closeSinks();
      throw e;
    }
    await this.#source.start((msg, acker) => this.#handle(msg, acker));
    this.state = "running";
    this.#log.info("pipeline started", { subject: sourceSubject(src) });
  }

  /** Stops taking events, finishes those accepted, flushes sinks and lets go of connectors. */
  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopping";
    this.#stopping.abort(new Error("stopping"));
    await this.#source?.drain();
    await Promise.all(
      [...this.#sinks, ...(this.#deadLetter ? [this.#deadLetter] : [])].map((s) =>
        s.flush().catch(() => {})
      ),
    );
    await this.#closeSinks();
    await Promise.all(this.#connecting.splice(0));
    const acquired = this.#acquired.splice(0);
    await Promise.all(acquired.map((c) => c.release()));
    this.state = "stopped";
  }

  /**
   * Decodes and filters one message, counting each step. Returns the event to send, FILTERED, or
   * a Rejection (allocated only for failures, so the hot path allocates nothing of its own).
   */
  #evaluate(msg: InboundMessage): unknown {
    const c = this.counters;
    c.in++;
    // The client hands over a whole read's worth of messages synchronously: reading the clock once
    // after them, rather than per event, costs a flag test per event.
    if (!this.#stampPending) {
      this.#stampPending = true;
      queueMicrotask(this.#stamp);
    }
    let event: unknown;
    try {
      event = JSON.parse(decodeUtf8(msg.data));
    } catch (e) {
      c.parseErrors++;
      const reason = msg.data.length === 0
        ? "empty payload"
        : e instanceof TypeError
        ? "invalid UTF-8"
        : `malformed JSON: ${oneLine(e)}`;
      return new Rejection("parse", reason);
    }
    if (this.#filter) {
      let pass: boolean;
      try {
        pass = this.#filter.matches(event, msg);
      } catch (e) {
        c.filterErrors++;
        return new Rejection("filter", `filter failed: ${oneLine(e)}`);
      }
      if (!pass) {
        c.filtered++;
        return FILTERED;
      }
    }
    c.passed++;
    return event;
  }

  #handle(msg: InboundMessage, acker?: Acknowledger): void {
    const event = this.#evaluate(msg);
    if (acker) {
      this.#settle(msg, event, acker).catch((e) => {
        // Only a bug gets here; redelivery is the safe outcome.
        this.#log.error("event handling failed", { error: oneLine(e) });
        acker.nak();
      });
      return;
    }
    if (event === FILTERED) return;
    if (event instanceof Rejection) {
      this.#reject(msg, event.kind, event.reason);
      return;
    }
    for (const sink of this.#sinks) {
      const result = sink.send(event, msg);
      if (result === undefined) continue;
      if (result instanceof Promise) {
        result.then((failure) => failure && this.#sinkFailed(msg, failure));
      } else this.#sinkFailed(msg, result);
    }
  }

  /**
   * The path of an acknowledging source: ack once every sink accepted the event (awaiting those
   * that confirm asynchronously), nak on a sink failure so it comes again, and for a poison
   * message dead-letter it and then term it so that it never comes again.
   */
  async #settle(msg: InboundMessage, event: unknown, acker: Acknowledger): Promise<void> {
    const c = this.counters;
    if (event === FILTERED) {
      acker.ack();
      c.acked++;
      return;
    }
    if (event instanceof Rejection) {
      await this.#poison(msg, event.kind, event.reason, acker);
      return;
    }
    const results = this.#sinks.map((sink) => sink.send(event, msg));
    let retry: SendFailure | undefined;
    let poison: SendFailure | undefined;
    for (const result of results) {
      const failure = result instanceof Promise ? await result : result;
      if (failure === undefined) continue;
      if (failure.kind === "template" || failure.kind === "rejected") {
        if (failure.kind === "template") c.templateErrors++;
        else c.sinkErrors++;
        poison ??= failure;
      } else {
        c.sinkErrors++;
        retry ??= failure;
      }
    }
    if (retry) {
      // Sinks that did accept it get it again on redelivery: at-least-once, not exactly-once.
      this.#warn(
        retry.kind,
        `sink ${retry.kind}: ${retry.reason}; will be redelivered`,
        msg.subject,
      );
      acker.nak();
      c.nacked++;
    } else if (poison) {
      const reason = poison.kind === "template" ? poison.reason : `sink rejected: ${poison.reason}`;
      await this.#poison(msg, poison.kind, reason, acker);
    } else {
      acker.ack();
      c.acked++;
    }
  }

  /** Dead-letters a message that can never be handled, then terms it (or naks it if the dead letter failed). */
  async #poison(msg: InboundMessage, kind: string, reason: string, acker: Acknowledger) {
    const result = this.#reject(msg, kind, reason);
    const failure = result instanceof Promise ? await result : result;
    if (failure && this.#deadLetter) {
      // Terminating it now would lose it: keep it in the stream until the dead letter works.
      acker.nak();
      this.counters.nacked++;
      return;
    }
    acker.term(reason);
    this.counters.terminated++;
  }

  #sinkFailed(msg: InboundMessage, failure: SendFailure): void {
    if (failure.kind === "template") {
      this.counters.templateErrors++;
      this.#reject(msg, "template", failure.reason);
    } else {
      this.counters.sinkErrors++;
      // An overflowing sink connector will most likely refuse the dead letter as well; try anyway.
      this.#reject(msg, failure.kind, `sink ${failure.kind}: ${failure.reason}`);
    }
  }

  /**
   * Dead-letters an event when configured; counts and warns (rate-limited) either way. Returns
   * the dead letter's send failure (or a promise of it); undefined also when none is configured.
   */
  #reject(msg: InboundMessage, kind: string, reason: string): SendResult {
    this.#warn(kind, reason, msg.subject);
    const dl = this.#deadLetter;
    if (!dl) return undefined;
    const result = dl.send(undefined, msg, {
      "Sluice-Error": reason,
      "Sluice-Pipeline": this.name,
      "Sluice-Subject": msg.subject,
    });
    if (result instanceof Promise) {
      return result.then((failure) => {
        this.#countDeadLetter(failure);
        return failure;
      });
    }
    this.#countDeadLetter(result);
    return result;
  }

  #countDeadLetter(failure: SendFailure | undefined): void {
    if (failure) this.counters.deadLetterErrors++;
    else this.counters.deadLettered++;
  }

  /**
   * Connectors used only by sinks with an outbox: the pipeline need not wait for them, because
   * the outbox keeps events while they are unreachable (a gateway booting with its uplink down).
   */
  #bufferedOnly(): Set<string> {
    const d = this.decl;
    const out = new Set<string>();
    for (const e of [...d.sinks, ...(d.deadLetter ? [d.deadLetter] : [])]) {
      if (e.buffer) out.add(e.connector);
    }
    for (const e of [d.source, ...d.sinks, ...(d.deadLetter ? [d.deadLetter] : [])]) {
      if (!e.buffer) out.delete(e.connector);
    }
    return out;
  }

  #acquireInBackground(c: Connector<unknown, unknown>, signal?: AbortSignal): void {
    const abort = signal ? AbortSignal.any([signal, this.#stopping.signal]) : this.#stopping.signal;
    this.#connecting.push(
      c.acquire(abort).then(
        () => {
          this.#acquired.push(c);
        },
        (e: unknown) => {
          if (abort.aborted) return;
          this.#log.error("connector for buffered sinks failed; events stay in the outbox", {
            connector: c.name,
            error: e instanceof Error ? e.message : String(e),
          });
        },
      ),
    );
  }

  async #closeSinks(): Promise<void> {
    const sinks = [...this.#sinks, ...(this.#deadLetter ? [this.#deadLetter] : [])];
    // Sinks built before a failed start are not in #sinks yet, but their outboxes are open.
    for (const b of this.#buffers) if (!sinks.includes(b)) sinks.push(b);
    this.#buffers = [];
    await Promise.all(sinks.map((s) => s.close?.().catch(() => {})));
  }

  #warn(kind: string, reason: string, subject: string): void {
    const now = Date.now();
    const w = this.#warned.get(kind);
    if (w && now - w.at < WARN_EVERY_MS) {
      w.suppressed++;
      return;
    }
    this.#log.warn("event rejected", {
      kind,
      reason,
      subject,
      dead_letter: this.#deadLetter !== undefined,
      similar_since_last_warning: w?.suppressed ?? 0,
    });
    this.#warned.set(kind, { at: now, suppressed: 0 });
  }
}

/** Returned by `#evaluate` for an event the filter did not pass. */
const FILTERED: unique symbol = Symbol("filtered");

/** Returned by `#evaluate` for a message that cannot be handled (a poison message). */
class Rejection {
  readonly kind: string;
  readonly reason: string;
  constructor(kind: string, reason: string) {
    this.kind = kind;
    this.reason = reason;
  }
}

function sourceSubject(e: EndpointDecl): string | undefined {
  const s = e.settings as { subject?: unknown };
  return typeof s.subject === "string" ? s.subject : undefined;
}

function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s*\n\s*/g, " ").slice(0, 200);
}
