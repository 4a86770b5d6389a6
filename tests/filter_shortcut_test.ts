/**
 * The filter decides common numeric comparisons without the CEL interpreter. This differential
 * test holds that shortcut to the interpreter's answers on many random events.
 */
import assert from "node:assert/strict";
import { Environment } from "cel";
import { compileFilter, FilterEvalError } from "../src/filter/filter.ts";

const reference = new Environment({
  unlistedVariablesAreDyn: true,
  homogeneousAggregateLiterals: false,
});

const EXPRESSIONS = [
  "a > 1",
  "a >= 1.5",
  "1 < a",
  "a == 2",
  "a != 2",
  "-3 < a",
  "a <= -0.5",
  "a > 1 && b < 2",
  "a > 1 || b < 2",
  "!(a > 1)",
  "a > 1 && true",
  "false || a <= 0",
  "!(a > 1) && !(b == 0)",
  "(a > 1 || b > 1) && a < 10",
];

const VALUES: unknown[] = [undefined, 0, 1, 2, 2.5, -1, -3.5, 1e20, "2", true, null, [1], { x: 1 }];

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function outcome(run: () => unknown): boolean | "error" {
  try {
    const r = run();
    return typeof r === "boolean" ? r : "error";
  } catch {
    return "error";
  }
}

Deno.test("the filter's numeric shortcut agrees with the CEL interpreter", () => {
  const next = random(20261123);
  for (const expression of EXPRESSIONS) {
    const filter = compileFilter(expression);
    const program = reference.parse(expression);
    for (let i = 0; i < 500; i++) {
      const event: Record<string, unknown> = {};
      for (const name of ["a", "b"]) {
        const v = VALUES[Math.floor(next() * VALUES.length)];
        if (v !== undefined) event[name] = v;
      }
      const expected = outcome(() => program(event));
      const actual = outcome(() => {
        try {
          return filter.matches(event, { subject: "s" });
        } catch (e) {
          assert.ok(e instanceof FilterEvalError, `only FilterEvalError escapes: ${e}`);
          throw e;
        }
      });
      assert.equal(actual, expected, `${expression} on ${JSON.stringify(event)}`);
    }
  }
});
