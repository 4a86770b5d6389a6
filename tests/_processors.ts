/**
 * Unit-test helpers for processors: compile one `processors:` entry with the built-in registry,
 * create it on a fake clock, and list the problems `check` would report.
 *
 * @module
 */
import type { EventMeta } from "../src/filter/filter.ts";
import { compileChain } from "../src/processors/chain.ts";
import { builtinProcessors } from "../src/processors/mod.ts";
import {
  type Emit,
  newProcessorCounters,
  type Processor,
  type ProcessorCounters,
} from "../src/processors/types.ts";

/** A wall clock and timers that move only when the test says so. */
export class FakeClock {
  t: number;
  readonly #timers: { at: number; fn: () => void; live: boolean }[] = [];

  constructor(start: number) {
    this.t = start;
  }

  now = (): number => this.t;

  setTimer = (fn: () => void, ms: number): () => void => {
    const timer = { at: this.t + ms, fn, live: true };
    this.#timers.push(timer);
    return () => {
      timer.live = false;
    };
  };

  /** Timers armed and not yet fired or cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => t.live).length;
  }

  /** Moves the clock to `t`, firing due timers in order (each at its own time). */
  advanceTo(t: number): void {
    for (;;) {
      const due = this.#timers.filter((x) => x.live && x.at <= t).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      due.live = false;
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = t;
  }

  /** Moves the clock by `ms`. */
  advance(ms: number): void {
    this.advanceTo(this.t + ms);
  }
}

/** Metadata of a test event. */
export function meta(subject = "sensors.a"): EventMeta {
  return { subject, headers: undefined };
}

/** A processor created from one entry such as `{dedupe: {value: "t"}}`, with its counters. */
export interface Created {
  processor: Processor;
  counters: ProcessorCounters;
}

/**
 * Compiles `entry` as the only processor of a chain and creates it on `clock`.
 *
 * @throws {Error} When the entry has problems (they are listed).
 */
export function create(entry: Record<string, unknown>, clock = new FakeClock(0)): Created {
  const chain = compileChain(builtinProcessors(), undefined, [entry], {});
  if (chain.problems.length > 0) {
    throw new Error(`unexpected problems: ${problems(entry).join("; ")}`);
  }
  const counters = newProcessorCounters();
  const processor = chain.processors[0]!.factory.create({
    counters,
    now: clock.now,
    setTimer: clock.setTimer,
  });
  return { processor, counters };
}

/** The problems of one entry as `path: message` lines (schema issues by their message). */
export function problems(entry: Record<string, unknown>): string[] {
  const chain = compileChain(builtinProcessors(), undefined, [entry], {});
  return chain.problems.flatMap((p) => {
    const at = p.path.slice(3).join(".");
    if ("issues" in p) {
      return p.issues.map((i) =>
        `${[at, ...i.path.map(String)].filter((s) => s !== "").join(".")}: ${i.message}`
      );
    }
    return [`${at}: ${p.message}`];
  });
}

/** An emitted event with its metadata. */
export interface Emitted {
  event: Record<string, unknown>;
  meta: EventMeta;
}

/** Starts `processor` with an emitter that collects into the returned list. */
export function started(processor: Processor): Emitted[] {
  const out: Emitted[] = [];
  const emit: Emit = (event, meta) => out.push({ event: event as Record<string, unknown>, meta });
  processor.start?.(emit);
  return out;
}
