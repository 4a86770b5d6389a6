/**
 * The reply cache of a `request` processor: replies by key (subject and body) for `ttl`
 * milliseconds, at most `maxEntries` of them, the least recently stored forgotten first.
 * Expired entries are removed when looked up or when room is needed, so no timer runs.
 *
 * @module
 */

/** Replies by key with a time to live. */
export class ReplyCache {
  readonly #ttl: number;
  readonly #max: number;
  readonly #now: () => number;
  /** Insertion order is expiry order (one ttl for all), so the first entry expires first. */
  readonly #entries = new Map<string, { value: unknown; expires: number }>();

  constructor(ttlMs: number, maxEntries: number, now: () => number) {
    this.#ttl = ttlMs;
    this.#max = maxEntries;
    this.#now = now;
  }

  /** Entries held, expired ones not yet removed included. */
  get size(): number {
    return this.#entries.size;
  }

  /** The cached reply for `key`, or undefined when there is none or it expired. */
  get(key: string): unknown {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.expires > this.#now()) return e.value;
    this.#entries.delete(key);
    return undefined;
  }

  /** Stores a reply; returns how many entries were forgotten to make room. */
  set(key: string, value: unknown): number {
    const now = this.#now();
    this.#entries.delete(key);
    let evicted = 0;
    for (const [k, e] of this.#entries) {
      if (e.expires > now && this.#entries.size < this.#max) break;
      this.#entries.delete(k);
      if (e.expires > now) evicted++;
    }
    this.#entries.set(key, { value, expires: now + this.#ttl });
    return evicted;
  }
}
