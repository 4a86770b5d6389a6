/**
 * One running pipeline: source → decode → filter → sinks, with a counter at each step. The path of
 * an event is synchronous: nothing is awaited per event, and nothing throws out of it.
 *
 * @module
 */
import type { EndpointDecl, PipelineDecl } from "../config/config.ts";
import { compileFilter, type Filter } from "../filter/filter.ts";
import type { Logger } from "../log.ts";
import { newCounters, type PipelineCounters } from "./counters.ts";
import type { Connector, InboundMessage, SendFailure, Sink, Source } from "./types.ts";

/** Lifecycle of a pipeline. `degraded` is derived from connector health by the health model. */
export type PipelineState = "starting" | "running" | "stopping" | "stopped";

/** Looks up the shared connector of a name. */
export type ConnectorLookup = (name: string) => Connector<unknown, unknown>;

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Warnings about failing events are rate-limited: the first at once, then one summary a period. */
const WARN_EVERY_MS = 30_000;

/** A pipeline wired to its connectors. */
export class Pipeline {
  readonly name: string;
  readonly decl: PipelineDecl;
  readonly counters: PipelineCounters = newCounters();
  state: PipelineState = "starting";
  readonly #filter: Filter | undefined;
  readonly #log: Logger;
  readonly #lookup: ConnectorLookup;
  readonly #acquired: Connector<unknown, unknown>[] = [];
  #source: Source | undefined;
  #sinks: Sink[] = [];
  #deadLetter: Sink | undefined;
  readonly #warned = new Map<string, { at: number; suppressed: number }>();

  constructor(decl: PipelineDecl, lookup: ConnectorLookup, log: Logger) {
    this.name = decl.name;
    this.decl = decl;
    this.#lookup = lookup;
    this.#log = log;
    this.#filter = decl.filter === undefined ? undefined : compileFilter(decl.filter);
  }

  /** Names of the connectors this pipeline uses, without repeats. */
  connectorNames(): string[] {
    const d = this.decl;
    const names = [d.source.connector, ...d.sinks.map((s) => s.connector)];
    if (d.deadLetter) names.push(d.deadLetter.connector);
    return [...new Set(names)];
  }

  /** Opens (or joins) its connectors, builds sinks, then subscribes. */
  async start(signal?: AbortSignal): Promise<void> {
    for (const name of this.connectorNames()) {
      const c = this.#lookup(name);
      await c.acquire(signal);
      this.#acquired.push(c);
    }
    const sink = (e: EndpointDecl) => this.#lookup(e.connector).createSink(e.settings, this.name);
    this.#sinks = this.decl.sinks.map(sink);
    this.#deadLetter = this.decl.deadLetter ? sink(this.decl.deadLetter) : undefined;
    const src = this.decl.source;
    this.#source = this.#lookup(src.connector).createSource(src.settings, this.name);
    await this.#source.start((msg) => this.#handle(msg));
    this.state = "running";
    this.#log.info("pipeline started", { subject: sourceSubject(src) });
  }

  /** Stops taking events, finishes those accepted, flushes sinks and lets go of connectors. */
  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopping";
    await this.#source?.drain();
    await Promise.all(
      [...this.#sinks, ...(this.#deadLetter ? [this.#deadLetter] : [])].map((s) =>
        s.flush().catch(() => {})
      ),
    );
    const acquired = this.#acquired.splice(0);
    await Promise.all(acquired.map((c) => c.release()));
    this.state = "stopped";
  }

  #handle(msg: InboundMessage): void {
    const c = this.counters;
    c.in++;
    c.lastEventAt = Date.now();
    let event: unknown;
    try {
      event = JSON.parse(decoder.decode(msg.data));
    } catch (e) {
      c.parseErrors++;
      const reason = msg.data.length === 0
        ? "empty payload"
        : e instanceof TypeError
        ? "invalid UTF-8"
        : `malformed JSON: ${oneLine(e)}`;
      this.#reject(msg, "parse", reason);
      return;
    }
    if (this.#filter) {
      let pass: boolean;
      try {
        pass = this.#filter.matches(event, msg);
      } catch (e) {
        c.filterErrors++;
        this.#reject(msg, "filter", `filter failed: ${oneLine(e)}`);
        return;
      }
      if (!pass) {
        c.filtered++;
        return;
      }
    }
    c.passed++;
    for (const sink of this.#sinks) {
      const failure = sink.send(event, msg);
      if (failure) this.#sinkFailed(msg, failure);
    }
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

  /** Dead-letters an event when configured; counts and warns (rate-limited) either way. */
  #reject(msg: InboundMessage, kind: string, reason: string): void {
    this.#warn(kind, reason, msg.subject);
    const dl = this.#deadLetter;
    if (!dl) return;
    const failure = dl.send(undefined, msg, {
      "Sluice-Error": reason,
      "Sluice-Pipeline": this.name,
      "Sluice-Subject": msg.subject,
    });
    if (failure) this.counters.deadLetterErrors++;
    else this.counters.deadLettered++;
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

function sourceSubject(e: EndpointDecl): string | undefined {
  const s = e.settings as { subject?: unknown };
  return typeof s.subject === "string" ? s.subject : undefined;
}

function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s*\n\s*/g, " ").slice(0, 200);
}
