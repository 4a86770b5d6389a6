import assert from "node:assert/strict";
import { compareText } from "../src/order.ts";
import { canonicalJson } from "../src/config/located.ts";

Deno.test("text is ordered by code unit, whatever the host's locale", () => {
  assert.deepEqual(["b", "a", "B", "ä", "a-1", "a1"].sort(compareText), [
    "B",
    "a",
    "a-1",
    "a1",
    "b",
    "ä",
  ]);
  assert.equal(compareText("x", "x"), 0);
});

Deno.test("canonical JSON sorts map keys by code unit at every depth", () => {
  assert.equal(
    canonicalJson({ b: 1, B: { z: 1, a: [{ y: 2, x: 1 }] }, a: 2 }),
    '{"B":{"a":[{"x":1,"y":2}],"z":1},"a":2,"b":1}',
  );
});
