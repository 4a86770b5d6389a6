/**
 * The running `throttle`: one token bucket per key.
 *
 * @module
 */
import type { EventMeta, Expression } from "../../filter/filter.ts";
import { DROP, type Processor, type ProcessorResources } from "../types.ts";
import type { Rate } from "../_fields.ts";
import { KeyedState, stateKey } from "../_keyed.ts";

/** A compiled `throttle`. */
export interface ThrottleSettings {
  readonly key: Expression | undefined;
  readonly rate: Rate;
  readonly maxKeys: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets of `rate.count` tokens that refill at `count / periodMs` per millisecond. Tokens
 * are fractional, so refilling is continuous: with 10/s, one event may pass every 100 ms after
 * a burst has used the bucket up.
 */
export class Throttle implements Processor {
  readonly #key: Expression | undefined;
  readonly #capacity: number;
  readonly #perMs: number;
  readonly #now: () => number;
  readonly #state: KeyedState<Bucket>;

  constructor(settings: ThrottleSettings, resources: ProcessorResources) {
    this.#key = settings.key;
    this.#capacity = settings.rate.count;
    this.#perMs = settings.rate.count / settings.rate.periodMs;
    this.#now = resources.now;
    this.#state = new KeyedState(settings.maxKeys, resources.counters);
  }

  process(event: unknown, meta: EventMeta): unknown {
    const key = stateKey(this.#key, event, meta);
    const now = this.#now();
    const bucket = this.#state.touch(key);
    if (bucket === undefined) {
      this.#state.add(key, { tokens: this.#capacity - 1, at: now });
      return event;
    }
    // A clock that steps back refills nothing rather than taking tokens away.
    const elapsed = Math.max(0, now - bucket.at);
    bucket.tokens = Math.min(this.#capacity, bucket.tokens + elapsed * this.#perMs);
    bucket.at = now;
    // Fractions add up with rounding errors: 0.1 + 0.2 tokens is not quite 0.3.
    if (bucket.tokens < 1 - 1e-9) return DROP;
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    return event;
  }

  keys(): number {
    return this.#state.size;
  }
}
