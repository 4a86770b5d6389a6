/**
 * The running `window`. Events are added to panes: per key, one accumulator per `every`
 * interval (per `size` for tumbling windows). A window is the panes it spans, so an event costs
 * one pane update however many hopping windows hold it, and a window that ends combines at most
 * `size / every` panes. One timer, for the next window end, serves every key.
 *
 * @module
 */
import type { EventMeta, Expression, HeaderSource } from "../../filter/filter.ts";
import type { Emit, Processor, ProcessorResources } from "../types.ts";
import { DROP } from "../types.ts";
import { KeyedState, SINGLE_KEY } from "../_keyed.ts";
import { describeValue } from "../_numeric.ts";
import { type JsonObject, setPath } from "../_path.ts";
import { jsonValue, keyOf, numeric } from "../_values.ts";
import type { Op } from "./schema.ts";

/** One compiled aggregate. */
export interface Aggregate {
  /** The output field as written, for messages. */
  readonly name: string;
  readonly path: readonly string[];
  readonly op: Op;
  /** Undefined for `count`. */
  readonly expr: Expression | undefined;
}

/** A compiled `window`. */
export interface WindowSettings {
  readonly key: Expression | undefined;
  readonly sizeMs: number;
  /** Equal to `sizeMs` for tumbling windows; divides it. */
  readonly everyMs: number;
  readonly aggregates: readonly Aggregate[];
  readonly maxKeys: number;
}

/** The accumulators of one key over one `every` interval. */
interface Pane {
  readonly start: number;
  count: number;
  /** Per aggregate: a running sum (sum, avg), min, max, or a JSON value (first, last). */
  readonly acc: unknown[];
  /** Of the last event added, which the emitted window carries. */
  subject: string;
  headers: HeaderSource | undefined;
}

/** The open panes of one key, oldest first. */
interface Keyed {
  /** The key expression's value as JSON; null without a key expression. */
  readonly key: unknown;
  readonly panes: Pane[];
}

/** setTimeout takes at most this delay; a longer wait is re-armed when it fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * A timer that does not keep the process alive on its own: the pipeline's source does while it
 * runs, and a graceful stop emits the open windows anyway.
 */
function unrefTimer(fn: () => void, ms: number): () => void {
  const id = setTimeout(fn, ms);
  Deno.unrefTimer(id);
  return () => clearTimeout(id);
}

/** Wall-clock windows per key; see the module doc of `window/mod.ts`. */
export class Window implements Processor {
  readonly absorbs = true;
  readonly #s: WindowSettings;
  readonly #now: () => number;
  readonly #setTimer: (fn: () => void, ms: number) => () => void;
  readonly #counters: ProcessorResources["counters"];
  readonly #state: KeyedState<Keyed>;
  /** Values of the event being added, reused so that an event allocates no array. */
  readonly #values: unknown[];
  /** Every window that ends at or before this time has been emitted (a multiple of `every`). */
  #closedUpTo: number;
  #emit: Emit | undefined;
  #cancel: (() => void) | undefined;

  constructor(settings: WindowSettings, resources: ProcessorResources) {
    this.#s = settings;
    this.#now = resources.now;
    this.#setTimer = resources.setTimer ?? unrefTimer;
    this.#counters = resources.counters;
    this.#state = new KeyedState(settings.maxKeys, resources.counters);
    this.#values = new Array(settings.aggregates.length);
    this.#closedUpTo = floorTo(this.#now(), settings.everyMs);
  }

  process(event: unknown, meta: EventMeta): unknown {
    const s = this.#s;
    const now = this.#now();
    // The timer may lag behind a busy event loop: windows that have ended go out first, so this
    // event is never counted in a window that should already have closed.
    if (this.#emit !== undefined && now >= this.#closedUpTo + s.everyMs) this.#close(now);
    // Evaluate everything before touching state, so a failing event leaves no trace.
    const rawKey = s.key === undefined ? undefined : s.key.evaluate(event, meta);
    this.#evaluate(event, meta);
    const key = s.key === undefined ? SINGLE_KEY : keyOf(rawKey);
    let keyed = this.#state.touch(key);
    if (keyed === undefined) {
      keyed = { key: s.key === undefined ? null : jsonValue(rawKey), panes: [] };
      this.#state.add(key, keyed);
    }
    // After a clock step back, an event counts in the oldest window still open.
    const start = floorTo(Math.max(now, this.#closedUpTo), s.everyMs);
    const pane = paneAt(keyed.panes, start, s.aggregates.length);
    this.#add(pane);
    // Each event brings its own copy of the subject, usually the same text for a key: keeping the
    // first copy lets the others die young instead of each being promoted to V8's old generation.
    if (pane.subject !== meta.subject) pane.subject = meta.subject;
    pane.headers = meta.headers;
    this.#schedule();
    return DROP;
  }

  start(emit: Emit): void {
    this.#emit = emit;
    // Carried over a reload: windows that ended meanwhile are emitted now, complete.
    this.#close(this.#now());
    this.#schedule();
  }

  stop(flush: boolean): void {
    this.#cancel?.();
    this.#cancel = undefined;
    if (flush && this.#emit !== undefined) {
      this.#close(this.#now());
      // The window that would end next holds every pane still kept (later hopping windows hold
      // a subset of them), so it alone is emitted per key, marked partial.
      const end = this.#closedUpTo + this.#s.everyMs;
      for (const [, keyed] of this.#state.entries()) this.#emitWindow(keyed, end, true);
      this.#state.clear();
    }
    this.#emit = undefined;
  }

  keys(): number {
    return this.#state.size;
  }

  /** Fills `#values` from the event; throws for a non-numeric value of a numeric op. */
  #evaluate(event: unknown, meta: EventMeta): void {
    const aggregates = this.#s.aggregates;
    for (let i = 0; i < aggregates.length; i++) {
      const a = aggregates[i]!;
      if (a.expr === undefined) continue;
      const raw = a.expr.evaluate(event, meta);
      if (a.op === "first" || a.op === "last") {
        this.#values[i] = jsonValue(raw);
        continue;
      }
      const n = numeric(raw);
      if (n === undefined) {
        throw new TypeError(
          `aggregates.${a.name}: ${a.op} needs a number, got ${
            describeValue(raw)
          } from "${a.expr.expression}"`,
        );
      }
      this.#values[i] = n;
    }
  }

  #add(pane: Pane): void {
    const aggregates = this.#s.aggregates;
    const first = pane.count === 0;
    for (let i = 0; i < aggregates.length; i++) {
      const v = this.#values[i];
      switch (aggregates[i]!.op) {
        case "count":
          break;
        case "sum":
        case "avg":
          pane.acc[i] = first ? v : (pane.acc[i] as number) + (v as number);
          break;
        case "min":
          pane.acc[i] = first ? v : Math.min(pane.acc[i] as number, v as number);
          break;
        case "max":
          pane.acc[i] = first ? v : Math.max(pane.acc[i] as number, v as number);
          break;
        case "first":
          if (first) pane.acc[i] = v;
          break;
        case "last":
          pane.acc[i] = v;
      }
    }
    pane.count++;
  }

  /** Emits every window that ended by `now` and forgets panes no open window holds. */
  #close(now: number): void {
    const { sizeMs: size, everyMs: every } = this.#s;
    const upTo = floorTo(now, every);
    const from = this.#closedUpTo;
    if (upTo <= from) return;
    this.#closedUpTo = upTo;
    for (const [name, keyed] of this.#state.entries()) {
      const panes = keyed.panes;
      if (panes.length > 0) {
        // A pane starting at p is in the windows ending at p + every ... p + size.
        let end = Math.max(from + every, panes[0]!.start + every);
        const last = Math.min(upTo, panes[panes.length - 1]!.start + size);
        for (; end <= last; end += every) this.#emitWindow(keyed, end, false);
      }
      let keep = 0;
      while (keep < panes.length && panes[keep]!.start + size <= upTo) keep++;
      if (keep > 0) panes.splice(0, keep);
      if (panes.length === 0) this.#state.delete(name);
    }
  }

  /** Emits the window of `keyed` ending at `end`, if any event fell into it. */
  #emitWindow(keyed: Keyed, end: number, partial: boolean): void {
    const { sizeMs: size, aggregates } = this.#s;
    const begin = end - size;
    const panes = keyed.panes.filter((p) => p.start >= begin && p.start < end && p.count > 0);
    if (panes.length === 0 || this.#emit === undefined) return;
    let count = 0;
    for (const p of panes) count += p.count;
    let out: JsonObject = { key: keyed.key, "window_start": begin, "window_end": end };
    aggregates.forEach((a, i) => {
      out = setPath(out, a.path, combine(a.op, i, panes, count));
    });
    if (partial) out.partial = true;
    const lastPane = panes[panes.length - 1]!;
    try {
      this.#emit(out, { subject: lastPane.subject, headers: lastPane.headers });
    } catch {
      // Only a bug downstream gets here; a timer callback must not throw. Count it and go on.
      this.#counters.errors++;
    }
  }

  /** Arms the one timer for the next window end, while any window is open. */
  #schedule(): void {
    if (this.#cancel !== undefined || this.#emit === undefined || this.#state.size === 0) return;
    const due = this.#closedUpTo + this.#s.everyMs;
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, due - this.#now()));
    this.#cancel = this.#setTimer(() => {
      this.#cancel = undefined;
      this.#close(this.#now());
      this.#schedule();
    }, delay);
  }
}

/** The largest multiple of `step` at or below `t`. */
function floorTo(t: number, step: number): number {
  return Math.floor(t / step) * step;
}

/** The pane of `panes` starting at `start`, created in order when missing. */
function paneAt(panes: Pane[], start: number, aggregates: number): Pane {
  let i = panes.length;
  while (i > 0 && panes[i - 1]!.start > start) i--;
  const before = panes[i - 1];
  if (before !== undefined && before.start === start) return before;
  const pane: Pane = {
    start,
    count: 0,
    acc: new Array(aggregates),
    subject: "",
    headers: undefined,
  };
  panes.splice(i, 0, pane);
  return pane;
}

/** The value of aggregate `i` over `panes` (non-empty, oldest first) holding `count` events. */
function combine(op: Op, i: number, panes: readonly Pane[], count: number): unknown {
  switch (op) {
    case "count":
      return count;
    case "first":
      return panes[0]!.acc[i];
    case "last":
      return panes[panes.length - 1]!.acc[i];
  }
  let v = panes[0]!.acc[i] as number;
  for (let p = 1; p < panes.length; p++) {
    const x = panes[p]!.acc[i] as number;
    if (op === "min") v = Math.min(v, x);
    else if (op === "max") v = Math.max(v, x);
    else v += x;
  }
  return op === "avg" ? v / count : v;
}
