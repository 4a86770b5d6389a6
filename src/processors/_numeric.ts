/**
 * Numbers in processors that aggregate or compare them (a dedupe deadband, a window's sum, avg,
 * min and max): whether a CEL expression can give one, known when the configuration loads, and
 * how to name what an event gave instead, for its dead-letter reason.
 *
 * @module
 */
import type { Expression } from "../filter/filter.ts";

/** CEL result types that a number can have; `dyn` is decided per event. */
const NUMERIC_TYPES: ReadonlySet<string> = new Set(["int", "uint", "double", "dyn"]);

/** True when a CEL expression's static type allows a number. */
export function mayBeNumeric(expr: Expression): boolean {
  return NUMERIC_TYPES.has(expr.type);
}

/** Names a value's type for an evaluation error: `string "hot"`, `bool`, `map`. */
export function describeValue(value: unknown): string {
  if (typeof value === "string") {
    return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  }
  if (typeof value === "boolean") return `bool ${value}`;
  if (value === null) return "null";
  if (Array.isArray(value)) return "list";
  if (value instanceof Uint8Array) return "bytes";
  if (typeof value === "object") return "map";
  return typeof value;
}
