/**
 * The JSON codec: payload bytes to an event and back. Decoding validates UTF-8 (a payload that is
 * not text is refused, not mangled); encoding writes compact JSON and turns the values CEL
 * produces (ints as bigints, maps) into their JSON form. A format is one module like this one.
 *
 * @module
 */

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
const encoder = new TextEncoder();

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
 * @param event The event.
 * @returns UTF-8 bytes of its JSON.
 */
export function encodeJson(event: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(event, jsonValue));
}

function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Map) return Object.fromEntries(value);
  return value;
}
