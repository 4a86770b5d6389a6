/**
 * The running `dedupe`: the last forwarded value and when it was forwarded, per key.
 *
 * @module
 */
import type { EventMeta, Expression } from "../../filter/filter.ts";
import { DROP, type Processor, type ProcessorResources } from "../types.ts";
import { KeyedState, stateKey } from "../_keyed.ts";
import { describeValue } from "../_numeric.ts";
import { jsonValue, numeric } from "../_values.ts";

/** A compiled `dedupe`. */
export interface DedupeSettings {
  readonly key: Expression | undefined;
  /** Undefined: the whole event is the value. */
  readonly value: Expression | undefined;
  readonly deadband: number | undefined;
  readonly heartbeatMs: number | undefined;
  readonly maxKeys: number;
}

/** What a key remembers: the value it last forwarded (a number with a deadband) and when. */
interface Last {
  value: unknown;
  at: number;
}

/** Report by exception per key; see the module doc of `dedupe/mod.ts`. */
export class Dedupe implements Processor {
  readonly #s: DedupeSettings;
  readonly #now: () => number;
  readonly #state: KeyedState<Last>;

  constructor(settings: DedupeSettings, resources: ProcessorResources) {
    this.#s = settings;
    this.#now = resources.now;
    this.#state = new KeyedState(settings.maxKeys, resources.counters);
  }

  process(event: unknown, meta: EventMeta): unknown {
    const s = this.#s;
    const key = stateKey(s.key, event, meta);
    const value = this.#valueOf(event, meta);
    const now = this.#now();
    const last = this.#state.touch(key);
    if (last === undefined) {
      this.#state.add(key, { value, at: now });
      return event;
    }
    const due = s.heartbeatMs !== undefined && now - last.at >= s.heartbeatMs;
    if (!due && !this.#moved(last.value, value)) return DROP;
    last.value = value;
    last.at = now;
    return event;
  }

  keys(): number {
    return this.#state.size;
  }

  /** The compared value: a number with a deadband, else the value's JSON form. */
  #valueOf(event: unknown, meta: EventMeta): unknown {
    const s = this.#s;
    if (s.value === undefined) return event; // Decoded JSON already.
    const raw = s.value.evaluate(event, meta);
    if (s.deadband === undefined) return jsonValue(raw);
    const n = numeric(raw);
    if (n === undefined) {
      throw new TypeError(
        `value must be a number for the deadband, got ${
          describeValue(raw)
        } from "${s.value.expression}"`,
      );
    }
    return n;
  }

  #moved(before: unknown, after: unknown): boolean {
    const deadband = this.#s.deadband;
    if (deadband === undefined) return !sameJson(before, after);
    const a = before as number;
    const b = after as number;
    // "Equal to the deadband forwards" must survive rounding: 20.3 - 20.1 is 0.19999999999999929.
    const slack = 8 * Number.EPSILON * Math.max(Math.abs(a), Math.abs(b), deadband);
    return Math.abs(b - a) >= deadband - slack;
  }
}

/** Deep equality of JSON values; maps compare regardless of key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let count = 0;
  for (const k in x) {
    if (!Object.hasOwn(x, k)) continue;
    if (!Object.hasOwn(y, k) || !sameJson(x[k], y[k])) return false;
    count++;
  }
  let other = 0;
  for (const k in y) if (Object.hasOwn(y, k)) other++;
  return count === other;
}
