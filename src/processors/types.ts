/**
 * The contract between the engine and processor kinds. A kind is one folder under
 * `src/processors/` with its zod schema, a `compile` step run once when the configuration loads
 * (so `check` reports every mistake), and processors created from it when a pipeline starts.
 *
 * @module
 */
import type { z } from "zod";
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
}

/** Builds fresh processors of one compiled declaration. */
export interface ProcessorFactory {
  create(resources: ProcessorResources): Processor;
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
