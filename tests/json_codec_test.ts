/**
 * The JSON codec's encoder: the bytes it writes are exactly those of `TextEncoder` over
 * `JSON.stringify` with the CEL-value replacer, whichever of its paths (plain JSON without the
 * replacer, the copy into a shared slab, TextEncoder) produced them.
 */
import assert from "node:assert/strict";
import { decodeJson, encodeJson } from "../src/codecs/json.ts";

/** What the encoder must produce: the straightforward form it optimises. */
function reference(event: unknown): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify(event, (_k, v: unknown) => {
      if (typeof v === "bigint") return Number(v);
      if (v instanceof Map) return Object.fromEntries(v);
      return v;
    }),
  );
}

Deno.test("encodeJson() writes a plain event as compact JSON", () => {
  const event = { sensor: "s1", v: 1.5, ok: true, none: null, list: [1, "a", { b: 2 }] };
  assert.deepEqual(encodeJson(event), reference(event));
  assert.deepEqual(decodeJson(encodeJson(event)), event);
});

Deno.test("encodeJson() turns nested bigints and Maps (CEL values) into JSON", () => {
  const event = { n: 3n, deep: { list: [1n, new Map<string, unknown>([["k", 2n]])] } };
  assert.equal(new TextDecoder().decode(encodeJson(event)), '{"n":3,"deep":{"list":[1,{"k":2}]}}');
  assert.deepEqual(encodeJson(event), reference(event));
});

Deno.test("encodeJson() writes non-ASCII text and escapes as UTF-8", () => {
  for (const event of [{ city: "Tromsø", emoji: "🌡" }, { lone: "\ud800" }, { c: "\u0000\n" }]) {
    assert.deepEqual(encodeJson(event), reference(event));
  }
});

Deno.test("encodeJson() leaves out undefined fields and honours toJSON", () => {
  const event = { a: undefined, d: new Date(0), o: { toJSON: () => ({ n: 1n }) } };
  assert.deepEqual(encodeJson(event), reference(event));
  assert.equal(
    new TextDecoder().decode(encodeJson(event)),
    '{"d":"1970-01-01T00:00:00.000Z","o":{"n":1}}',
  );
});

Deno.test("encodeJson() keeps an own __proto__ field", () => {
  const event = JSON.parse('{"__proto__":{"x":1},"y":2}') as unknown;
  assert.deepEqual(encodeJson(event), reference(event));
});

Deno.test("encodeJson() results stay intact while many more are encoded", () => {
  // Short outputs share slabs: earlier results must not change when later ones are written.
  const first = Array.from({ length: 2000 }, (_, i) => encodeJson({ i, s: "x".repeat(i % 300) }));
  first.forEach((bytes, i) => assert.deepEqual(bytes, reference({ i, s: "x".repeat(i % 300) })));
  const long = { s: "y".repeat(5000) };
  assert.deepEqual(encodeJson(long), reference(long));
});

Deno.test("encodeJson() encodes deeply nested events", () => {
  let deep: unknown = 1n;
  for (let i = 0; i < 100; i++) deep = { d: deep };
  assert.deepEqual(encodeJson(deep), reference(deep));
});

Deno.test("encodeJson() throws on a cyclic event as JSON.stringify does", () => {
  const event: Record<string, unknown> = {};
  event.self = event;
  assert.throws(() => encodeJson(event), TypeError);
});
