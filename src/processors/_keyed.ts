/**
 * Per-key state of the stateful processors (dedupe, throttle, window), bounded by `max_keys`:
 * when a new key would exceed the bound, the least recently seen key is forgotten and counted
 * as evicted. A Map keeps insertion order, so moving a key to the end on every event it sees
 * (delete + set) makes the first key the least recently seen one.
 *
 * @module
 */
import type { EventMeta, Expression } from "../filter/filter.ts";
import type { ProcessorCounters } from "./types.ts";
import { keyOf } from "./_values.ts";

/** The key of events when a processor has no `key` expression: one state for all. */
export const SINGLE_KEY = "";

/** State by key with least-recently-seen eviction. */
export class KeyedState<V> {
  readonly #map = new Map<string, V>();
  readonly #max: number;
  readonly #counters: ProcessorCounters;

  /**
   * @param max The most keys held (`max_keys`).
   * @param counters Where evictions are counted.
   */
  constructor(max: number, counters: ProcessorCounters) {
    this.#max = max;
    this.#counters = counters;
  }

  /** The state of `key`, which becomes the most recently seen; undefined for an unknown key. */
  touch(key: string): V | undefined {
    const map = this.#map;
    const value = map.get(key);
    if (value === undefined) return undefined;
    map.delete(key);
    map.set(key, value);
    return value;
  }

  /** Adds the state of a new key, forgetting the least recently seen key when full. */
  add(key: string, value: V): void {
    const map = this.#map;
    if (map.size >= this.#max) {
      const oldest = map.keys().next();
      if (!oldest.done) {
        map.delete(oldest.value);
        this.#counters.evicted++;
      }
    }
    map.set(key, value);
  }

  /** Forgets `key` (not an eviction: its state is done). */
  delete(key: string): void {
    this.#map.delete(key);
  }

  /** Forgets every key. */
  clear(): void {
    this.#map.clear();
  }

  /** Keys held. */
  get size(): number {
    return this.#map.size;
  }

  /** Keys and states, least recently seen first. */
  entries(): IterableIterator<[string, V]> {
    return this.#map.entries();
  }
}

/**
 * The state key of an event: the `key` expression's value as a string, or {@link SINGLE_KEY}
 * without one. Strings are used as they are, other values as JSON (so `21` and `21.0` are one key).
 */
export function stateKey(expr: Expression | undefined, event: unknown, meta: EventMeta): string {
  return expr === undefined ? SINGLE_KEY : keyOf(expr.evaluate(event, meta));
}
