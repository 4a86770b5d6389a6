/**
 * The JSON codec: payload bytes to an event and back. Decoding validates UTF-8 (a payload that is
 * not text is refused, not mangled); encoding writes compact JSON and turns the values CEL
 * produces (ints as bigints, maps) into their JSON form. A format is one module like this one.
 *
 * @module
 */
import { encodeUtf8 } from "./utf8.ts";

/** A payload that cannot be decoded; `reason` is short and fit for a dead-letter header. */
export class DecodeError extends Error {
  /** Stable code: "decode". */
  readonly code = "decode";

  constructor(reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = "DecodeError";
  }
}

const strict = new TextDecoder("utf-8", { fatal: true });
const loose = new TextDecoder("utf-8");

/**
 * Decodes UTF-8, throwing a TypeError on invalid input like the fatal decoder, at a third of its
 * cost: the lenient decoder is much faster, and a U+FFFD in its output (an invalid sequence it
 * replaced, or a genuine one) sends the payload through the validating decoder to decide.
 */
function decodeUtf8(data: Uint8Array): string {
  const text = loose.decode(data);
  return text.includes("\uFFFD") ? strict.decode(data) : text;
}

/**
 * Decodes one JSON payload.
 *
 * @param data The payload bytes.
 * @returns The decoded event.
 * @throws {DecodeError} With "empty payload", "invalid UTF-8" or "malformed JSON: ...".
 */
export function decodeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(decodeUtf8(data));
  } catch (e) {
    const reason = data.length === 0
      ? "empty payload"
      : e instanceof TypeError
      ? "invalid UTF-8"
      : `malformed JSON: ${(e instanceof Error ? e.message : String(e)).replace(/\s+/g, " ")}`;
    throw new DecodeError(reason.slice(0, 200), { cause: e });
  }
}

/**
 * Encodes an event as compact JSON. Values CEL returns are made JSON first: a bigint becomes a
 * number, a Map an object; `undefined` fields are left out as JSON.stringify does.
 *
 * A replacer function takes JSON.stringify off its fast path (about four times slower on a
 * small event), so it is used only when the event holds something other than plain JSON; and
 * short ASCII output is copied into a shared slab instead of calling TextEncoder, whose fixed
 * cost per call exceeds the copy.
 *
 * @param event The event.
 * @returns UTF-8 bytes of its JSON.
 */
export function encodeJson(event: unknown): Uint8Array {
  const text = isPlainJson(event, 0) ? JSON.stringify(event) : JSON.stringify(event, jsonValue);
  return encodeUtf8(text);
}

function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Map) return Object.fromEntries(value);
  return value;
}

/** Nesting deeper than this is left to the replacer path (which also reports a cycle). */
const MAX_PLAIN_DEPTH = 32;

/**
 * Whether JSON.stringify gives the same text without {@link jsonValue}: no bigint, and objects
 * only plain ones and arrays (a Map, a class instance or anything with `toJSON` may hold or
 * become one).
 */
function isPlainJson(value: unknown, depth: number): boolean {
  if (typeof value !== "object" || value === null) return typeof value !== "bigint";
  if (depth > MAX_PLAIN_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isPlainJson(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const obj = value as Record<string, unknown>;
  for (const key in obj) if (!isPlainJson(obj[key], depth + 1)) return false;
  return obj.toJSON === undefined;
}
