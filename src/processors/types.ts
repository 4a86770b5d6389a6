/**
 * The contract between the engine and processor kinds. A kind is one folder under
 * `src/processors/` with its zod schema, a `compile` step run once when the configuration loads
 * (so `check` reports every mistake), and processors created from it when a pipeline starts.
 *
 * @module
 */
import type { z } from "zod";
import type { AddressTemplate, Reply, RequestOptions } from "../engine/types.ts";
import type { EventMeta, Expression, Filter } from "../filter/filter.ts";

/** Returned by {@link Processor.process} for an event that leaves the chain here. */
export const DROP: unique symbol = Symbol("drop");

/** What one processor did, for health; one set per processor of a pipeline. */
export interface ProcessorCounters {
  /** Events handed to the processor. */
  in: number;
  /** Events it passed on (or emitted, for a window). */
  out: number;
  /** Events it dropped (a filter, dedupe, throttle or sample); not errors. */
  dropped: number;
  /** Events on which it failed; they go to the dead letter. */
  errors: number;
  /** Keys forgotten to stay within `max_keys`. */
  evicted: number;
}

/** A zeroed {@link ProcessorCounters}. */
export function newProcessorCounters(): ProcessorCounters {
  return { in: 0, out: 0, dropped: 0, errors: 0, evicted: 0 };
}

/** Hands an event a processor produced on its own (a window closing) to the rest of the chain. */
export type Emit = (event: unknown, meta: EventMeta) => void;

/** What a processor gets when it is created. */
export interface ProcessorResources {
  /** Its counters; stateful processors count evictions here. */
  readonly counters: ProcessorCounters;
  /** The wall clock in ms; tests may replace it. */
  now(): number;
  /**
   * Runs `fn` once after `ms` and returns what cancels it (a window's clock). Tests replace it
   * together with `now`. Default: a timer that does not keep the process alive by itself.
   */
  setTimer?(fn: () => void, ms: number): () => void;
  /**
   * Sends a request through the named connector (one the factory listed in `connectors`, which
   * the pipeline holds open while it runs). The connector is looked up per call, so a processor
   * carried over a reload that replaced the connector uses the new one. Absent where no
   * connector is at hand (tests of stateless kinds).
   */
  request?(
    connector: string,
    subject: string,
    data: Uint8Array,
    options: RequestOptions,
  ): Promise<Reply>;
}

/** A histogram of observations, Prometheus-style: cumulative counts per upper bound. */
export interface HistogramSnapshot {
  /** Upper bounds of the buckets, ascending (the `le` labels); `+Inf` is implied by `count`. */
  readonly bounds: readonly number[];
  /** Observations at or below each bound, cumulative, one per bound. */
  readonly counts: readonly number[];
  /** Sum of all observations. */
  readonly sum: number;
  /** Number of observations. */
  readonly count: number;
}

/**
 * A kind's own statistics beyond {@link ProcessorCounters}, for health and metrics: monotonic
 * counters, gauges and histograms, each by snake_case name.
 */
export interface ProcessorStats {
  readonly counters: Readonly<Record<string, number>>;
  readonly gauges?: Readonly<Record<string, number>>;
  readonly histograms: Readonly<Record<string, HistogramSnapshot>>;
}

/** One processor of a running pipeline. */
export interface Processor {
  /**
   * Handles one event. Returns the event to pass on — the same object when unchanged, a new one
   * when changed (the engine then encodes it instead of forwarding the original bytes) — or
   * {@link DROP}, or a promise of either for a processor that waits (a request). Throws when it
   * cannot evaluate the event; the engine dead-letters it naming the processor.
   */
  process(event: unknown, meta: EventMeta): unknown;
  /**
   * True when `process` may return a promise (a request): the pipeline then keeps events in their
   * arrival order while several wait at once.
   */
  readonly waits?: boolean;
  /** True for a window: an event it returns {@link DROP} for was absorbed, not dropped. */
  readonly absorbs?: boolean;
  /** Starts its timers; `emit` takes the events it produces later. */
  start?(emit: Emit): void;
  /** Stops its timers; with `flush`, first emits what it holds (partial windows). */
  stop?(flush: boolean): void;
  /** Keys held in its state, for health. */
  keys?(): number;
  /** Its kind's own statistics (a request: requests, timeouts, cache hits, latency). */
  stats?(): ProcessorStats;
}

/** Builds fresh processors of one compiled declaration. */
export interface ProcessorFactory {
  create(resources: ProcessorResources): Processor;
  /**
   * Connectors its processors use (a request's); the pipeline opens them with its own and
   * reloads count them as used by it.
   */
  readonly connectors?: readonly string[];
}

/** What a processor may know at config load of a connector it names. */
export interface ConnectorCapabilities {
  /** The connector's type, e.g. `nats`. */
  readonly type: string;
  /** True when the type answers requests. */
  readonly requests?: boolean;
  /** Compiles an address template; throws a SyntaxError with a numeric `offset`. */
  readonly compileAddress?: (template: string) => AddressTemplate;
}

/** A key path inside a processor's own settings, e.g. `["aggregates", "avg_t", "avg"]`. */
export type SettingsPath = readonly (string | number)[];

/** Lets `compile` compile CEL and report problems at a place in its settings. */
export interface CompileContext {
  /** Compiles a CEL value expression; reports a failure (with the offset) and returns undefined. */
  expression(path: SettingsPath, text: string): Expression | undefined;
  /** Compiles a CEL bool expression; reports a failure and returns undefined. */
  filter(path: SettingsPath, text: string): Filter | undefined;
  /** Reports a problem at `path`. */
  problem(path: SettingsPath, message: string): void;
  /**
   * The connector declared under `name`; reports an unknown one at `path` and returns undefined
   * (also, silently, when its type is unknown: that is reported where it is declared).
   */
  connector(path: SettingsPath, name: string): ConnectorCapabilities | undefined;
  /**
   * Reports a problem in a string value at `path`, pointing at character `offset` of `value`
   * (a template's placeholder).
   */
  problemAt(path: SettingsPath, message: string, offset: number, value: string): void;
}

/** Everything the runtime knows about one processor kind. */
export interface ProcessorKind<C> {
  /** The key naming it in a `processors:` entry (`- map: {...}`). */
  readonly kind: string;
  /** One line for the reference docs. */
  readonly summary: string;
  /** Schema of its settings: validation, types and the reference text. */
  readonly schema: z.ZodType<C>;
  /** Checks what the schema cannot (CEL, numeric deadbands); undefined when it reported problems. */
  compile(config: C, ctx: CompileContext): ProcessorFactory | undefined;
}

/** A registered kind with its settings type erased. */
export type AnyProcessorKind = ProcessorKind<unknown>;

/** Erases a kind's settings type for the registry. */
export function defineProcessorKind<C>(kind: ProcessorKind<C>): AnyProcessorKind {
  return kind as unknown as AnyProcessorKind;
}
