/**
 * Per-key state of the stateful processors (dedupe, throttle, window), bounded by `max_keys`:
 * when a new key would exceed the bound, the least recently seen key is forgotten and counted
 * as evicted.
 *
 * Recency is a doubly linked list through the entries, so that seeing a key moves it to the end
 * by rewriting four links. Moving it in the Map instead (delete + set, as Map keeps insertion
 * order) made every event leave a hole in the Map's table and a new key string in it: the table
 * was rebuilt every few thousand events and the old ones filled V8's old generation until a full
 * collection (windows over 1,000 sensors peaked 14 MiB above the filter; docs/performance.md,
 * "Memory").
 *
 * @module
 */
import type { EventMeta, Expression } from "../filter/filter.ts";
import type { ProcessorCounters } from "./types.ts";
import { keyOf } from "./_values.ts";

/** The key of events when a processor has no `key` expression: one state for all. */
export const SINGLE_KEY = "";

/** One key's entry in the recency list, least recently seen at the head. */
interface Entry<V> {
  readonly key: string;
  value: V;
  prev: Entry<V> | undefined;
  next: Entry<V> | undefined;
}

/** State by key with least-recently-seen eviction. */
export class KeyedState<V> {
  readonly #map = new Map<string, Entry<V>>();
  readonly #max: number;
  readonly #counters: ProcessorCounters;
  /** Least recently seen. */
  #head: Entry<V> | undefined;
  /** Most recently seen. */
  #tail: Entry<V> | undefined;

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
    const entry = this.#map.get(key);
    if (entry === undefined) return undefined;
    if (entry !== this.#tail) {
      this.#unlink(entry);
      this.#append(entry);
    }
    return entry.value;
  }

  /** Adds the state of a new key, forgetting the least recently seen key when full. */
  add(key: string, value: V): void {
    const map = this.#map;
    if (map.size >= this.#max && this.#head !== undefined) {
      const oldest = this.#head;
      this.#unlink(oldest);
      map.delete(oldest.key);
      this.#counters.evicted++;
    }
    const entry: Entry<V> = { key, value, prev: undefined, next: undefined };
    map.set(key, entry);
    this.#append(entry);
  }

  /** Forgets `key` (not an eviction: its state is done). */
  delete(key: string): void {
    const entry = this.#map.get(key);
    if (entry === undefined) return;
    this.#unlink(entry);
    this.#map.delete(key);
  }

  /** Forgets every key. */
  clear(): void {
    this.#map.clear();
    this.#head = this.#tail = undefined;
  }

  /** Keys held. */
  get size(): number {
    return this.#map.size;
  }

  /**
   * Keys and states, least recently seen first. The entry just yielded may be deleted while
   * iterating (a window forgets a key whose panes have all closed).
   */
  *entries(): IterableIterator<[string, V]> {
    for (let entry = this.#head; entry !== undefined;) {
      const next = entry.next;
      yield [entry.key, entry.value];
      entry = next;
    }
  }

  #unlink(entry: Entry<V>): void {
    if (entry.prev === undefined) this.#head = entry.next;
    else entry.prev.next = entry.next;
    if (entry.next === undefined) this.#tail = entry.prev;
    else entry.next.prev = entry.prev;
    entry.prev = entry.next = undefined;
  }

  #append(entry: Entry<V>): void {
    entry.prev = this.#tail;
    if (this.#tail === undefined) this.#head = entry;
    else this.#tail.next = entry;
    this.#tail = entry;
  }
}

/**
 * The state key of an event: the `key` expression's value as a string, or {@link SINGLE_KEY}
 * without one. Strings are used as they are, other values as JSON (so `21` and `21.0` are one key).
 */
export function stateKey(expr: Expression | undefined, event: unknown, meta: EventMeta): string {
  return expr === undefined ? SINGLE_KEY : keyOf(expr.evaluate(event, meta));
}
