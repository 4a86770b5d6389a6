/**
 * Values cel-js cannot misread. cel-js decides whether a value is a map by its `.constructor`
 * (`Object` or `Map`), so a decoded JSON object with its own `constructor` key (any value) is
 * "Unsupported type: object" to it, and reading any field through it fails. A Map holding the same
 * entries is read as the same CEL map.
 *
 * @module
 */

/**
 * `value` with every plain object that has an own `constructor` key replaced by a Map of its
 * entries, copying only the objects and lists on the way to one; `value` itself when it holds none.
 *
 * @example Usage
 * ```ts
 * import { celView } from "./cel_view.ts";
 *
 * const event = { a: { constructor: 1 }, b: [1] };
 * const view = celView(event) as { a: unknown; b: unknown };
 * view.a instanceof Map; // true
 * view.b === event.b; // true
 * celView(event.b) === event.b; // true
 * ```
 *
 * @param value A decoded JSON value (or one a processor produced from it).
 * @returns A value safe to hand to cel-js.
 * @throws {RangeError} When the value is nested too deeply to copy (the stack overflows).
 */
export function celView(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const viewed = celView(item);
      if (viewed !== item) (out ??= value.slice())[i] = viewed;
    }
    return out ?? value;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value; // a Map, bytes: cel-js reads them
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  let changed = false;
  const entries: [string, unknown][] = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const item = obj[key];
    const viewed = celView(item);
    if (viewed !== item) changed = true;
    entries[i] = [key, viewed];
  }
  if (Object.hasOwn(obj, "constructor")) return new Map(entries);
  return changed ? Object.fromEntries(entries) : value;
}
