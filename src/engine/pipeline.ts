/**
 * One running pipeline: source → decode → processors → encode → sinks, with a counter at each
 * step. With a core NATS source, stateless processors and core NATS sinks the path of an event is
 * synchronous: nothing is awaited per event, and nothing throws out of it. Only sinks that confirm
 * asynchronously (JetStream, an outbox) and processors that wait (a request) return promises, and
 * only an acknowledging source (JetStream) makes the pipeline wait for them before it acks, naks
 * or terms the message. Windows emit from their own timers into the rest of the chain.
 *
 * @module
 */
import { DecodeError, decodeJson, encodeJson } from "../codecs/json.ts";
import { origin, OutboundMessage } from "./outbound.ts";
import { AcknowledgingPath } from "./acknowledging.ts";
import { ABSORBED, DROPPED, oneLine, type Outcome, Rejection } from "./outcome.ts";
import type { EndpointDecl, PipelineDecl } from "../config/config.ts";
import { DEFAULT_MAX_EVENT_SIZE } from "../config/schema.ts";
import type { Filter } from "../filter/filter.ts";
import type { Logger } from "../log.ts";
import type { ProcessorDecl } from "../processors/chain.ts";
import {
  DROP,
  type Emit,
  newProcessorCounters,
  type Processor,
  type ProcessorCounters,
  type ProcessorResources,
  type ProcessorStats,
} from "../processors/types.ts";
import { newCounters, type PipelineCounters } from "./counters.ts";
import { connectorsOf } from "./reload.ts";
import { BufferedSink, type BufferHealth } from "./buffered_sink.ts";
import { Outbox } from "./outbox.ts";
import {
  type Acknowledger,
  type Connector,
  type InboundMessage,
  RequestError,
  type SendFailure,
  type SendReport,
  type SendResult,
  type Sink,
  type Source,
} from "./types.ts";

/** Lifecycle of a pipeline. `degraded` is derived from connector health by the health model. */
export type PipelineState = "starting" | "running" | "failed" | "stopping" | "stopped";

/** Looks up the shared connector of a name. */
export type ConnectorLookup = (name: string) => Connector<unknown, unknown>;

/** One processor of the chain with its counters, as health shows it. */
export interface ProcessorHealth {
  /** `1:map`, or `filter` for the top-level filter. */
  label: string;
  kind: string;
  counters: ProcessorCounters;
  /** Keys held in its state (dedupe, throttle, window). */
  keys: number;
  /** Its kind's own statistics (a request's requests, timeouts, cache, latency), if any. */
  stats?: ProcessorStats | undefined;
}

/** A processor of a running chain: its declaration, its instance (with state) and its counters. */
interface ChainProcessor {
  readonly decl: ProcessorDecl;
  readonly instance: Processor;
  readonly counters: ProcessorCounters;
}

/** A chain handed from a stopped pipeline to its replacement with the same declaration. */
export type CarriedProcessors = readonly ChainProcessor[];

/** Warnings about failing events are rate-limited: the first at once, then one summary a period. */
const WARN_EVERY_MS = 30_000;

/** A pipeline wired to its connectors. */
export class Pipeline {
  readonly name: string;
  readonly decl: PipelineDecl;
  readonly counters: PipelineCounters;
  state: PipelineState = "starting";
  /** Why it failed to start, once its state is `failed`. */
  error: string | undefined;
  readonly #log: Logger;
  readonly #lookup: ConnectorLookup;
  readonly #acquired: Connector<unknown, unknown>[] = [];
  readonly #chain: ChainProcessor[];
  /** `reply: true`: requests are answered through {@link Pipeline.#respond}. */
  readonly #replies: boolean;
  /** True when a processor may wait: events then complete through {@link Pipeline.#tail}. */
  readonly #ordered: boolean;
  /** The completion of the last event handed to the ordered path. */
  #tail: Promise<void> = Promise.resolve();
  /** Events on the ordered path still waiting for a processor or for one before them. */
  #waiting = 0;
  /** Largest payload decoded, in bytes (`max_event_size`). */
  readonly #maxEventSize: number;
  /** The event the last call of `#evaluate` decoded, read at once by its caller. */
  #decoded: unknown;
  #source: Source | undefined;
  #sinks: Sink[] = [];
  /** Each sink's `when`, by sink index. */
  #whens: (Filter | undefined)[] = [];
  #deadLetter: Sink | undefined;
  #buffers: BufferedSink[] = [];
  /** Connections opened in the background (used only by buffered sinks), until they are up. */
  readonly #connecting: Promise<void>[] = [];
  readonly #stopping = new AbortController();
  readonly #warned = new Map<string, { at: number; suppressed: number }>();
  /** Whether the clock is read for `lastEventAt` once the current batch of events is handled. */
  #stampPending = false;
  /** How events of a source that acknowledges them are settled. */
  readonly #acks: AcknowledgingPath;
  /** Where sinks report failures they learn after `send` returned, on the unacknowledged path. */
  readonly #report: SendReport = {
    failed: (msg, failure) => {
      this.#sinkFailed(origin(msg), failure);
    },
  };
  readonly #stamp = (): void => {
    this.#stampPending = false;
    this.counters.lastEventAt = Date.now();
  };

  /**
   * `counters` carries a replaced pipeline's totals over a reload, so metrics stay monotonic;
   * `carried` its processors with their state when the replacement runs the same chain.
   */
  constructor(
    decl: PipelineDecl,
    lookup: ConnectorLookup,
    log: Logger,
    counters: PipelineCounters = newCounters(),
    carried?: CarriedProcessors,
  ) {
    this.name = decl.name;
    this.counters = counters;
    this.decl = decl;
    this.#lookup = lookup;
    this.#log = log;
    this.#acks = new AcknowledgingPath({
      counters: this.counters,
      log: this.#log,
      sinks: () => this.#sinks,
      whens: () => this.#whens,
      holds: (when, i, event, msg) => this.#holds(when, i, event, msg),
      outbound: (msg, event, decoded) => this.#outbound(msg, event, decoded),
      warn: (kind, reason, subject) => this.#warn(kind, reason, subject),
      reject: (msg, kind, reason) => this.#reject(msg, kind, reason),
      hasDeadLetter: () => this.#deadLetter !== undefined,
    });
    // Looked up per request: a carried-over processor then uses a connector a reload replaced.
    const request: ProcessorResources["request"] = (name, subject, data, options) => {
      const c = lookup(name);
      if (!c.request) {
        return Promise.reject(
          new RequestError("unavailable", `connector "${name}" cannot send requests`),
        );
      }
      return c.request(subject, data, options);
    };
    this.#chain = carried && carried.length === decl.processors.length
      ? [...carried]
      : decl.processors.map((p) => {
        const counters = newProcessorCounters();
        const resources: ProcessorResources = { counters, now: Date.now, request };
        return { decl: p, counters, instance: p.factory.create(resources) };
      });
    this.#replies = decl.reply;
    this.#ordered = this.#chain.some((p) => p.instance.waits === true);
    this.#whens = decl.sinks.map((s) => s.when);
    this.#maxEventSize = decl.maxEventSize ?? DEFAULT_MAX_EVENT_SIZE;
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
    this.#source = this.#lookup(src.connector).createSource(src.settings, this.name, {
      answers: this.decl.reply,
    });
    // An acknowledging source acks only what the sinks' servers confirmed.
    const options = { confirm: this.#source.acknowledges === true };
    const sink = async (e: EndpointDecl): Promise<Sink> => {
      const inner = this.#lookup(e.connector).createSink(e.settings, this.name, options);
      await inner.open?.();
      if (!e.buffer) return inner;
      const counters = this.counters;
      const outbox = await Outbox.open({
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
      this.#sinks = [];
      for (const e of this.decl.sinks) this.#sinks.push(await sink(e));
      this.#deadLetter = this.decl.deadLetter ? await sink(this.decl.deadLetter) : undefined;
    } catch (e) {
      // An outbox that cannot be opened stops the start; let go of what was opened already.
      await this.#closeSinks();
      throw e;
    }
    this.#chain.forEach((p, i) => p.instance.start?.(this.#emitter(i)));
    await this.#source.start((msg, acker) => this.#handle(msg, acker));
    this.state = "running";
    this.#log.info("pipeline started", { source: src.address });
  }

  /**
   * Stops taking events, finishes those accepted, flushes sinks and lets go of connectors. With
   * `flush` (a graceful stop) windows emit what they hold, marked partial; without it (the chain
   * is carried over to a replacement) they keep it.
   */
  async stop(flush = true): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopping";
    this.#stopping.abort(new Error("stopping"));
    await this.#source?.drain();
    await this.#tail;
    for (const p of this.#chain) p.instance.stop?.(flush);
    await this.#tail;
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

  /** Per-processor counters and state sizes, in chain order, for health. */
  processors(): ProcessorHealth[] {
    return this.#chain.map((p) => ({
      label: p.decl.label,
      kind: p.decl.kind,
      counters: p.counters,
      keys: p.instance.keys?.() ?? 0,
      stats: p.instance.stats?.(),
    }));
  }

  /**
   * Hands the processors (with their state) to a replacement that runs the same chain, e.g. when
   * a reload restarts this pipeline only because a connector it uses changed.
   */
  carryOver(): CarriedProcessors {
    return this.#chain;
  }

  /**
   * Decodes one message and runs it through the chain, counting each step. Returns the event to
   * send, DROPPED, ABSORBED, a Rejection (allocated only for failures, so the hot path allocates
   * nothing of its own), or a promise of one of those when a processor waits (a request).
   */
  #evaluate(msg: InboundMessage): Outcome {
    const c = this.counters;
    c.in++;
    // The client hands over a whole read's worth of messages synchronously: reading the clock once
    // after them, rather than per event, costs a flag test per event.
    if (!this.#stampPending) {
      this.#stampPending = true;
      queueMicrotask(this.#stamp);
    }
    let event: unknown;
    // Bounds the work any expression does on one event (docs/expressions.md); checked before the
    // payload is even decoded.
    if (msg.data.length > this.#maxEventSize) {
      c.oversized++;
      this.#decoded = undefined;
      return new Rejection(
        "too_large",
        `event of ${msg.data.length} bytes exceeds max_event_size (${this.#maxEventSize} bytes)`,
        400,
      );
    }
    try {
      event = decodeJson(msg.data);
    } catch (e) {
      c.parseErrors++;
      this.#decoded = undefined;
      return new Rejection("parse", e instanceof DecodeError ? e.message : oneLine(e), 400);
    }
    this.#decoded = event;
    return this.#run(event, msg, 0);
  }

  /** Runs `event` through the chain from processor `from` on. */
  #run(event: unknown, msg: InboundMessage, from: number): Outcome {
    const chain = this.#chain;
    for (let i = from; i < chain.length; i++) {
      const p = chain[i]!;
      const pc = p.counters;
      pc.in++;
      let out: unknown;
      try {
        out = p.instance.process(event, msg);
      } catch (e) {
        return this.#failed(p, e);
      }
      if (out instanceof Promise) {
        return out.then(
          (resolved: unknown) => this.#after(p, resolved, msg, i),
          (e: unknown) => this.#failed(p, e),
        );
      }
      if (out === DROP) return this.#dropped(p);
      pc.out++;
      event = out;
    }
    return event;
  }

  /** Continues the chain after processor `i` resolved asynchronously. */
  #after(p: ChainProcessor, out: unknown, msg: InboundMessage, i: number): Outcome {
    if (out === DROP) return this.#dropped(p);
    p.counters.out++;
    return this.#run(out, msg, i + 1);
  }

  #dropped(p: ChainProcessor): Outcome {
    if (p.instance.absorbs) {
      this.counters.absorbed++;
      return ABSORBED;
    }
    p.counters.dropped++;
    this.counters.filtered++;
    return DROPPED;
  }

  #failed(p: ChainProcessor, e: unknown): Rejection {
    p.counters.errors++;
    if (p.decl.where === "filter") {
      this.counters.filterErrors++;
      return new Rejection("filter", `filter failed: ${oneLine(e)}`, 400);
    }
    this.counters.processorErrors++;
    // A service that failed is a failure here too; any other error is the event's (invalid).
    const status = e instanceof RequestError ? 500 : 400;
    const retry = e instanceof RequestError && e.code === "overloaded";
    return new Rejection("processor", `${p.decl.where}: ${oneLine(e)}`, status, retry);
  }

  #handle(msg: InboundMessage, acker?: Acknowledger): void {
    const outcome = this.#evaluate(msg);
    const decoded = this.#decoded;
    if (this.#ordered) {
      this.#enqueue(msg, outcome, decoded, acker);
      return;
    }
    if (this.#replies) {
      this.#respond(msg, outcome, decoded);
      return;
    }
    if (acker) {
      this.#acks.handle(msg, outcome, decoded, acker);
      return;
    }
    this.#complete(msg, outcome, decoded);
  }

  /**
   * With a processor that waits (a request), events still leave in their arrival order: each
   * one's completion waits for the one before, while their requests run at the same time.
   */
  #enqueue(
    msg: InboundMessage,
    outcome: Outcome,
    decoded: unknown,
    acker?: Acknowledger,
    emitted = false,
  ): void {
    if (this.#waiting === 0 && !(outcome instanceof Promise)) {
      // Nothing before it still waits (e.g. a request answered from its cache): no promises.
      this.#finish(msg, outcome, decoded, acker, emitted);
      return;
    }
    this.#waiting++;
    const previous = this.#tail;
    this.#tail = previous.then(() => outcome).then((o) => {
      this.#waiting--;
      return this.#finish(msg, o, decoded, acker, emitted);
    }).catch((e: unknown) => {
      this.#log.error("event handling failed", { error: oneLine(e) });
      acker?.nak();
    });
  }

  /** Completes an event that left the chain, on the path its source and pipeline call for. */
  #finish(
    msg: InboundMessage,
    outcome: Outcome,
    decoded: unknown,
    acker: Acknowledger | undefined,
    emitted: boolean,
  ): Promise<void> | void {
    if (acker) {
      return this.#acks.settle(msg, outcome, decoded, acker).catch((e) => {
        this.#log.error("event handling failed", { error: oneLine(e) });
        acker.nak();
      });
    }
    if (this.#replies) this.#respond(msg, outcome, decoded, emitted);
    else this.#complete(msg, outcome, decoded, emitted);
  }

  /** Sends an event that left the chain (no acknowledgement to give). */
  #complete(msg: InboundMessage, outcome: Outcome, decoded: unknown, emitted = false): void {
    if (outcome === DROPPED || outcome === ABSORBED) return;
    if (outcome instanceof Rejection) {
      this.#reject(msg, outcome.kind, outcome.reason);
      return;
    }
    if (emitted) this.counters.emitted++;
    else this.counters.passed++;
    const sinks = this.#sinks;
    const whens = this.#whens;
    let out: InboundMessage | undefined;
    for (let i = 0; i < sinks.length; i++) {
      const when = whens[i];
      if (when !== undefined && !this.#holds(when, i, outcome, msg)) continue;
      out ??= this.#outbound(msg, outcome, decoded);
      const result = sinks[i]!.send(outcome, out, undefined, this.#report);
      if (result === undefined) continue;
      if (result instanceof Promise) {
        result.then((failure) => failure && this.#sinkFailed(msg, failure));
      } else this.#sinkFailed(msg, result);
    }
  }

  /**
   * The path of a `reply: true` pipeline: sends the event to the sinks (if any) like
   * {@link Pipeline.#complete}, then answers the request with the resulting event, or with an
   * empty error reply when the event was dropped or failed, so the caller never waits for its
   * timeout. A message without a reply subject is handled as in any other pipeline.
   */
  #respond(msg: InboundMessage, outcome: Outcome, decoded: unknown, emitted = false): void {
    const answer = msg.answer;
    if (!answer) {
      this.#complete(msg, outcome, decoded, emitted);
      return;
    }
    if (outcome === DROPPED || outcome === ABSORBED) {
      const why = outcome === DROPPED ? "dropped by the pipeline" : "absorbed by a window";
      this.#answerError(answer, 400, `the event was ${why}`);
      return;
    }
    if (outcome instanceof Rejection) {
      this.#reject(msg, outcome.kind, outcome.reason);
      this.#answerError(answer, outcome.status, outcome.reason);
      return;
    }
    this.counters.passed++;
    const out = this.#outbound(msg, outcome, decoded);
    let results: SendResult[] | undefined;
    for (let i = 0; i < this.#sinks.length; i++) {
      const when = this.#whens[i];
      if (when !== undefined && !this.#holds(when, i, outcome, msg)) continue;
      (results ??= []).push(this.#sinks[i]!.send(outcome, out));
    }
    const finish = (failures: (SendFailure | undefined)[]): void => {
      const failure = failures.find((f) => f !== undefined);
      for (const f of failures) if (f) this.#sinkFailed(msg, f);
      if (!failure) {
        this.#count(answer(out.data));
        return;
      }
      const reason = failure.kind === "template"
        ? failure.reason
        : `sink ${failure.kind}: ${failure.reason}`;
      this.#answerError(answer, failure.kind === "template" ? 400 : 500, reason);
    };
    if (!results) {
      this.#count(answer(out.data));
      return;
    }
    if (results.some((r) => r instanceof Promise)) {
      Promise.all(results).then(finish);
    } else finish(results as (SendFailure | undefined)[]);
  }

  #answerError(answer: NonNullable<InboundMessage["answer"]>, status: number, reason: string) {
    this.counters.replyErrors++;
    const failure = answer(EMPTY, {
      "Sluice-Error": reason,
      "Nats-Service-Error": reason,
      "Nats-Service-Error-Code": String(status),
    });
    if (failure) this.counters.replyFailures++;
  }

  #count(failure: SendFailure | undefined): void {
    if (failure) this.counters.replyFailures++;
    else this.counters.replied++;
  }

  /**
   * The message a sink sends: the original one when no processor changed the event (its bytes are
   * forwarded as they came), else the event encoded once, whatever the number of sinks.
   */
  #outbound(msg: InboundMessage, event: unknown, decoded: unknown): InboundMessage {
    if (decoded === event) return msg;
    return new OutboundMessage(msg, encodeJson(event));
  }

  /** Whether sink `i`'s `when` holds; an evaluation error dead-letters the event once per sink. */
  #holds(when: Filter, i: number, event: unknown, msg: InboundMessage): boolean {
    try {
      return when.matches(event, msg);
    } catch (e) {
      this.counters.processorErrors++;
      this.#reject(msg, "processor", `sinks[${i}] when: ${oneLine(e)}`);
      return false;
    }
  }

  /**
   * Runs an event a processor produced on its own (a window that closed) through the rest of the
   * chain and to the sinks. It carries the subject and headers of the last event the window
   * absorbed, and its encoded bytes stand in as the payload for sinks and the dead letter.
   */
  #emitter(index: number): Emit {
    return (event, meta) => {
      const p = this.#chain[index]!;
      p.counters.out++;
      const msg: InboundMessage = {
        subject: meta.subject,
        headers: meta.headers,
        data: encodeJson(event),
        // The meta is the message the window last absorbed (interim, see InboundMessage).
        tokenSeparator: (meta as Partial<InboundMessage>).tokenSeparator,
      };
      const outcome = this.#run(event, msg, index + 1);
      if (this.#ordered) this.#enqueue(msg, outcome, event, undefined, true);
      else this.#complete(msg, outcome, event, true);
    };
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

/** The body of an error reply. */
const EMPTY = new Uint8Array(0);
