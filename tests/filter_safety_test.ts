// One event must not stall the process nor be misread: `matches` is RE2 (linear time, RE2
// syntax), expressions whose cost grows faster than the event size are refused when compiled,
// objects with a `constructor` key are read as maps, and a field filter on an event that is not
// an object says so.
import assert from "node:assert/strict";
import {
  compileExpression,
  compileFilter,
  type EventMeta,
  FilterCompileError,
  FilterEvalError,
} from "../src/filter/filter.ts";
import { loadRe2, MAX_DYNAMIC_PATTERN } from "../src/filter/re2.ts";

// Compiling `matches` needs re2js loaded, as loading a configuration does (re2_lazy_test.ts).
await loadRe2();

const META: EventMeta = { subject: "sensors.site-a.temp", headers: undefined };

function matches(expression: string, event: unknown): boolean {
  return compileFilter(expression).matches(event, META);
}

function compileError(
  expression: string,
  compile: (text: string) => unknown = compileFilter,
): FilterCompileError {
  try {
    compile(expression);
  } catch (err) {
    assert.ok(err instanceof FilterCompileError, `expected FilterCompileError, got ${err}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(expression)} not to compile`);
}

function evalError(expression: string, event: unknown): FilterEvalError {
  const filter = compileFilter(expression);
  try {
    filter.matches(event, META);
  } catch (err) {
    assert.ok(err instanceof FilterEvalError, `expected FilterEvalError, got ${err}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(expression)} to fail on ${JSON.stringify(event)}`);
}

// --- matches: RE2 ---

Deno.test("matches() does not backtrack: a nested quantifier over a long non-match is false", () => {
  // A backtracking engine needs about 2^40 steps for this; RE2 reads the string once.
  const evil = { name: "a".repeat(40) + "!" };
  assert.equal(matches('name.matches("^(a+)+$")', evil), false);
  assert.equal(matches('name.matches("^(a+)+$")', { name: "a".repeat(40) }), true);
  assert.equal(matches('name.matches("(x+x+)+y")', { name: "x".repeat(5000) }), false);
});

Deno.test("matches() has RE2 syntax: inline flags work, lookarounds are refused", () => {
  assert.equal(matches('name.matches("(?i)^sensor")', { name: "SENSOR-1" }), true);
  assert.equal(matches('name.matches("^sensor")', { name: "SENSOR-1" }), false);
  const err = compileError('name.matches("a(?=b)")');
  assert.equal(err.code, "filter_regex");
  assert.match(err.message, /invalid RE2 pattern "a\(\?=b\)"/);
});

Deno.test("matches() is a partial match, as in CEL", () => {
  assert.equal(matches('name.matches("ens")', { name: "sensor" }), true);
  assert.equal(matches('name.matches("^ens")', { name: "sensor" }), false);
  assert.equal(matches('matches(name, "or$")', { name: "sensor" }), true);
});

Deno.test("an invalid literal pattern is a compile error at the pattern's offset", () => {
  const expression = 'site == "a" && name.matches("temp(")';
  const err = compileError(expression);
  assert.equal(err.code, "filter_regex");
  assert.equal(err.offset, expression.indexOf('"temp("'));
  assert.match(err.message, /missing closing \)/);
  assert.equal(compileError('matches(name, "[")').code, "filter_regex");
});

Deno.test("a pattern read from the event is compiled per distinct value, bounded and checked", () => {
  const f = compileFilter("name.matches(pattern)");
  // More distinct patterns than the cache holds: each still gives the right answer.
  for (let i = 0; i < 300; i++) {
    assert.equal(f.matches({ name: `id-${i}`, pattern: `^id-${i}$` }, META), true);
    assert.equal(f.matches({ name: `id-${i}x`, pattern: `^id-${i}$` }, META), false);
  }
  assert.match(evalError("name.matches(pattern)", { name: "a", pattern: "(" }).message, /RE2/);
  const long = { name: "a", pattern: "a".repeat(MAX_DYNAMIC_PATTERN + 1) };
  assert.match(evalError("name.matches(pattern)", long).message, /at most 1024 characters/);
});

Deno.test("matches() on a value that is not a string is still a type error", () => {
  assert.equal(compileError('5.matches("x")').code, "filter_type");
  assert.match(compileError('5.matches("x")').message, /int\.matches\(string\)/);
  assert.match(evalError('n.matches("x")', { n: 5 }).message, /double\.matches\(string\)/);
});

// --- cost bound ---

Deno.test("a comprehension over event data nested in another is refused at its offset", () => {
  const expression = "items.exists(a, items.exists(b, a == b))";
  const err = compileError(expression);
  assert.equal(err.code, "filter_cost");
  assert.equal(err.offset, expression.lastIndexOf("exists"));
  assert.match(err.message, /square of the event size/);
  assert.match(err.message, /docs\/expressions\.md/);
});

Deno.test("an operation on a whole event list inside a comprehension is refused", () => {
  for (
    const expression of [
      "items.exists(a, a in other)",
      "items.all(a, text.contains(a))",
      "items.exists(a, text.indexOf(a) > 0)",
      "groups.exists(g, g.items.exists(i, g.items.exists(j, i == j)))",
      "a.exists(x, b.exists(y, c.exists(z, x == y && y == z)))",
    ]
  ) {
    assert.equal(compileError(expression).code, "filter_cost", expression);
  }
  assert.match(compileError("a.exists(x, b.exists(y, c.exists(z, x == z)))").message, /power 3/);
  // Expressions of other processors (map, dedupe keys) are bounded the same way.
  assert.equal(
    compileError("items.map(a, items.filter(b, b == a))", compileExpression).code,
    "filter_cost",
  );
});

Deno.test("linear comprehensions compile and evaluate", () => {
  const event = {
    items: [{ name: "temp-1", v: 3 }, { name: "hum-1", v: 9 }],
    groups: [{ items: [1, 2] }, { items: [5] }],
    wanted: 9,
  };
  for (
    const expression of [
      'items.exists(i, i.name.startsWith("hum") && i.v == wanted)',
      'items.all(i, i.name.matches("^[a-z]+-[0-9]$"))',
      "groups.exists(g, g.items.exists(i, i > 4))",
      "[1, 2, 3].exists(k, items.exists(i, i.v == k))",
      "items.map(i, i.v).exists(v, v > 8)",
      "cel.bind(t, wanted, items.exists(i, i.v == t))",
      "items.filter(i, i.v > 5).size() == 1",
    ]
  ) {
    assert.equal(matches(expression, event), true, expression);
  }
});

// --- objects with a `constructor` key ---

Deno.test("an event with a constructor key is read like any other object", () => {
  const event = JSON.parse(
    '{"constructor": {"name": "x"}, "site": "a", "reading": {"constructor": null, "temp": 31},' +
      ' "items": [{"constructor": [], "v": 2}]}',
  );
  const copy = structuredClone(event);
  assert.equal(matches('event.site == "a"', event), true);
  assert.equal(matches("reading.temp > 30", event), true);
  assert.equal(matches("event.reading.temp > 30", event), true);
  assert.equal(matches('event.constructor.name == "x"', event), true);
  assert.equal(matches('constructor.name == "x"', event), true);
  assert.equal(matches("has(event.constructor) && size(event) == 4", event), true);
  assert.equal(matches('"constructor" in reading', event), true);
  assert.equal(matches("items.exists(i, i.v == 2)", event), true);
  assert.equal(matches('event.reading == {"temp": 31}', event), false);
  assert.deepEqual(event, copy, "the event itself is left as it was");
  // A map expression reading through such an object yields the plain value.
  assert.equal(compileExpression("event.reading.temp * 2.0").evaluate(event, META), 62);
});

Deno.test("a failing filter on an event with a constructor key still reports its own error", () => {
  const err = evalError("event.reading.missing > 1", { constructor: 1, reading: { temp: 3 } });
  assert.match(err.message, /No such key: missing/);
});

// --- events that are not objects ---

Deno.test("a field filter on an event that is a list says the event is not an object", () => {
  const err = evalError("temperature > 30", [{ temperature: 31 }]);
  assert.equal(
    err.message,
    "the event is a list, not an object: field 'temperature' cannot be read; " +
      "use event[0], event.exists(e, ...)",
  );
  assert.match(evalError('site == "a"', "a").message, /^the event is a string, not an object/);
  assert.match(evalError("x > 1", 5).message, /^the event is a double, not an object/);
  assert.equal(matches("event[0].temperature > 30", [{ temperature: 31 }]), true);
  // A missing field of an object event keeps its usual message.
  assert.match(evalError("temperature > 30", { site: "a" }).message, /Unknown variable/);
});

// --- robustness of the checks themselves ---

/** A small deterministic PRNG (mulberry32), so every run checks the same expressions. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random CEL expression over event fields, comprehensions, calls and operators. */
function randomExpression(random: () => number, depth: number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const sub = () => randomExpression(random, depth - 1);
  const v = () => pick(["x", "y", "k"]);
  if (depth <= 0) {
    return pick(["items", "a", "event", "x", "y", "1", "2.5", '"s"', "true", "_tokens"]);
  }
  const forms: (() => string)[] = [
    () => `${sub()}.${pick(["exists", "all", "exists_one", "map", "filter"])}(${v()}, ${sub()})`,
    () => `${sub()}.map(${v()}, ${sub()}, ${sub()})`,
    () => `${sub()} ${pick(["==", "!=", "<", ">=", "in", "+", "-", "*", "&&", "||"])} ${sub()}`,
    () => `${pick(["size", "int", "string", "dyn", "matches"])}(${sub()})`,
    () => `matches(${sub()}, ${pick(['"^a+$"', "pattern"])})`,
    () => `${sub()}.${pick(["contains", "startsWith", "matches", "split", "indexOf"])}(${sub()})`,
    () => `[${sub()}, ${sub()}]`,
    () => `{"k": ${sub()}}`,
    () => `${sub()} ? ${sub()} : ${sub()}`,
    () => `${sub()}.field`,
    () => `${sub()}[${sub()}]`,
    () => `has(${sub()}.f)`,
    () => `cel.bind(${v()}, ${sub()}, ${sub()})`,
    () => `!${sub()}`,
    () => `(${sub()})`,
  ];
  return pick(forms)();
}

const FUZZ_EVENTS: unknown[] = [
  { items: [1, "s", { field: 2 }], a: "aaa", x: 1, y: [1, 2], pattern: "(" },
  JSON.parse('{"constructor": {"field": 1}, "items": [{"constructor": null}], "a": {"f": 1}}'),
  [1, 2, 3],
];

Deno.test("fuzz: 3000 random expressions compile or fail with FilterCompileError and evaluate or fail with FilterEvalError", () => {
  const random = prng(12);
  let refusedForCost = 0;
  for (let i = 0; i < 3000; i++) {
    const expression = randomExpression(random, 1 + Math.floor(random() * 4));
    let compiled;
    try {
      compiled = compileExpression(expression);
    } catch (err) {
      assert.ok(err instanceof FilterCompileError, `${expression}: ${err}`);
      assert.ok(err.offset >= 0 && err.offset <= expression.length, expression);
      if (err.code === "filter_cost") refusedForCost++;
      continue;
    }
    for (const event of FUZZ_EVENTS) {
      try {
        compiled.evaluate(event, META);
      } catch (err) {
        assert.ok(err instanceof FilterEvalError, `${expression}: ${err}`);
      }
    }
  }
  assert.ok(refusedForCost > 0, "the cost bound was exercised");
});
