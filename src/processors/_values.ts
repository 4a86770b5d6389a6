/**
 * CEL values as JSON values: CEL ints arrive as bigints and map literals may arrive as Maps; an
 * event field holds plain JSON so that later processors, templates and the encoder agree on it.
 *
 * @module
 */

/** The JSON form of a CEL result (bigint to number, Map to object, recursively). */
export function jsonValue(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) out[String(k)] = jsonValue(v);
    return out;
  }
  if (Array.isArray(value)) return value.map(jsonValue);
  if (value instanceof Uint8Array) return Array.from(value);
  const unsigned = uintValue(value);
  if (unsigned !== undefined) return Number(unsigned);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) out[k] = jsonValue((value as Record<string, unknown>)[k]);
  return out;
}

/** A number from a CEL result (a double or an int), or undefined when it is not numeric. */
export function numeric(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  const unsigned = uintValue(value);
  return unsigned === undefined ? undefined : Number(unsigned);
}

/**
 * The value of a CEL `uint`: cel-js represents it as an object (not a plain JSON object) whose
 * `valueOf()` is a bigint.
 */
function uintValue(value: unknown): bigint | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return undefined;
  const v = (value as { valueOf(): unknown }).valueOf();
  return typeof v === "bigint" ? v : undefined;
}

/** A stable string for comparing values and keying maps: JSON of the value's JSON form. */
export function keyOf(value: unknown): string {
  if (typeof value === "string") return value;
  return JSON.stringify(jsonValue(value)) ?? "null";
}
