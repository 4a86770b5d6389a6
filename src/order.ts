/**
 * One ordering of text for everything Sluice sorts: by UTF-16 code unit, the same on every
 * machine. `localeCompare` would make the order depend on the host's locale and loads ICU's
 * collation data into the process on first use (about 5 MiB resident, for sorting a handful of
 * keys at start; docs/performance.md, "Memory").
 *
 * @module
 */

/**
 * Compares two strings by UTF-16 code unit, for `Array.prototype.sort`.
 *
 * @example
 * ```ts
 * import { compareText } from "./order.ts";
 * ["b", "a", "B"].sort(compareText); // ["B", "a", "b"]
 * ```
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
