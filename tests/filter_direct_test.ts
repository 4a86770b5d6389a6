/**
 * Differential test of the direct read of `field`, `a.b` and `_tokens[N]`: it must give what the
 * CEL interpreter gives for the same expression (forced through the interpreter by wrapping it in
 * a one-element list), and leave every failure to the interpreter.
 */
import assert from "node:assert/strict";
import { compileExpression } from "../src/filter/filter.ts";

const values: unknown[] = [
  0,
  21,
  21.5,
  -3e10,
  "oslo",
  "",
  true,
  false,
  null,
  [1, "a", null],
  { x: 1, nested: { y: "z" } },
];

Deno.test("direct reads give what the interpreter gives, for every JSON value", () => {
  const meta = { subject: "sensors.oslo.t-1" };
  for (const expression of ["temperature", "reading.temp", "_tokens[1]", "_tokens[2]"]) {
    const fast = compileExpression(expression);
    const slow = compileExpression(`[${expression}][0]`);
    for (const value of values) {
      const event = { temperature: value, reading: { temp: value } };
      assert.deepEqual(fast.evaluate(event, meta), slow.evaluate(event, meta), expression);
    }
  }
});

Deno.test("what a direct read cannot answer is the interpreter's, errors included", () => {
  const meta = { subject: "a.b" };
  const cases: [string, unknown][] = [
    ["temperature", { other: 1 }],
    ["temperature", [1, 2]],
    ["reading.temp", { reading: 5 }],
    ["reading.temp", { reading: {} }],
    ["_tokens[5]", {}],
  ];
  for (const [expression, event] of cases) {
    const fast = compileExpression(expression);
    const slow = compileExpression(`[${expression}][0]`);
    assert.throws(() => fast.evaluate(event, meta), `${expression} on ${JSON.stringify(event)}`);
    assert.throws(() => slow.evaluate(event, meta));
  }
});
