import assert from "node:assert/strict";
import {
  compileFilter,
  type EventMeta,
  FilterCompileError,
  FilterEvalError,
  type HeaderSource,
} from "../src/filter/filter.ts";

function headers(entries: Record<string, string>): HeaderSource {
  return {
    keys: () => Object.keys(entries),
    get: (name) => entries[name] ?? "",
  };
}

const META: EventMeta = { subject: "sensors.site-a.temp", headers: undefined };

function matches(expression: string, event: unknown, meta: EventMeta = META): boolean {
  return compileFilter(expression).matches(event, meta);
}

function compileError(expression: string): FilterCompileError {
  try {
    compileFilter(expression);
  } catch (err) {
    assert.ok(err instanceof FilterCompileError, `expected FilterCompileError, got ${err}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(expression)} not to compile`);
}

function evalError(expression: string, event: unknown, meta: EventMeta = META): FilterEvalError {
  const filter = compileFilter(expression);
  try {
    filter.matches(event, meta);
  } catch (err) {
    assert.ok(err instanceof FilterEvalError, `expected FilterEvalError, got ${err}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(expression)} to fail on ${JSON.stringify(event)}`);
}

Deno.test("compileFilter() keeps the expression as written", () => {
  assert.equal(compileFilter(" site == 'a' ").expression, " site == 'a' ");
});

Deno.test("compileFilter() exposes top-level fields as variables", () => {
  assert.equal(matches('temperature > 30 && site == "a"', { temperature: 31, site: "a" }), true);
  assert.equal(matches('temperature > 30 && site == "a"', { temperature: 31, site: "b" }), false);
});

Deno.test("compileFilter() compares int literals with double fields", () => {
  assert.equal(matches("temperature > 30", { temperature: 30.5 }), true);
  assert.equal(matches("temperature > 30", { temperature: 29.5 }), false);
  assert.equal(matches("temperature == 31", { temperature: 31 }), true);
});

Deno.test("compileFilter() compares double literals with integral fields", () => {
  assert.equal(matches("count >= 2.5", { count: 3 }), true);
  assert.equal(matches("count == 3.0", { count: 3 }), true);
  assert.equal(matches("count < 2.5", { count: 3 }), false);
});

Deno.test("compileFilter() compares strings", () => {
  assert.equal(matches('site == "a"', { site: "a" }), true);
  assert.equal(matches('site != "a"', { site: "a" }), false);
  assert.equal(matches('site.startsWith("si")', { site: "site-a" }), true);
});

Deno.test("compileFilter() uses boolean fields directly", () => {
  assert.equal(matches("alarm", { alarm: true }), true);
  assert.equal(matches("!alarm", { alarm: true }), false);
  assert.equal(matches("alarm == false", { alarm: false }), true);
});

Deno.test("compileFilter() reads nested fields", () => {
  assert.equal(matches("reading.temp > 3", { reading: { temp: 4 } }), true);
  assert.equal(matches("reading.temp > 3", { reading: { temp: 2 } }), false);
});

Deno.test("compileFilter() tests membership with in and lists", () => {
  assert.equal(matches('site in ["a", "b"]', { site: "b" }), true);
  assert.equal(matches('site in ["a", "b"]', { site: "c" }), false);
  assert.equal(matches("level in [1, 2]", { level: 2 }), true);
  assert.equal(matches('"hot" in tags', { tags: ["cold", "hot"] }), true);
});

Deno.test("compileFilter() accepts mixed int and double list literals", () => {
  assert.equal(matches("level in [1, 2.5]", { level: 2.5 }), true);
});

Deno.test("compileFilter() has() is true for a present field", () => {
  assert.equal(matches("has(event.x)", { x: 1 }), true);
});

Deno.test("compileFilter() has() is false for an absent field", () => {
  assert.equal(matches("has(event.x)", { y: 1 }), false);
});

Deno.test("compileFilter() throws FilterEvalError for a missing field", () => {
  const err = evalError("temperature > 30", { site: "a" });
  assert.equal(err.code, "filter_eval");
  assert.match(err.message, /temperature/);
});

Deno.test("compileFilter() gives a single-line FilterEvalError message", () => {
  const err = evalError("site == 'a' &&\n  temperature > 30", { site: "a" });
  assert.doesNotMatch(err.message, /\n/);
  assert.equal(err.message, "Unknown variable: temperature");
});

Deno.test("compileFilter() throws FilterEvalError for a missing nested field", () => {
  const err = evalError("reading.temp > 3", { reading: {} });
  assert.match(err.message, /temp/);
  assert.doesNotMatch(err.message, /\n/);
});

Deno.test("compileFilter() does not keep fields from the previous event", () => {
  const filter = compileFilter("temperature > 30");
  assert.equal(filter.matches({ temperature: 31 }, META), true);
  assert.throws(() => filter.matches({ site: "a" }, META), FilterEvalError);
});

Deno.test("compileFilter() does not keep fields after a non-object payload", () => {
  const filter = compileFilter("temperature > 30");
  assert.equal(filter.matches({ temperature: 31 }, META), true);
  assert.throws(() => filter.matches(5, META), FilterEvalError);
});

Deno.test("compileFilter() exposes the subject as _subject", () => {
  assert.equal(matches('_subject == "sensors.site-a.temp"', {}), true);
});

Deno.test("compileFilter() exposes the subject tokens as _tokens", () => {
  assert.equal(matches('_tokens[2] == "temp"', {}), true);
  assert.equal(matches("size(_tokens) == 3", {}), true);
});

Deno.test("compileFilter() splits each new subject into _tokens", () => {
  const filter = compileFilter('_tokens[1] == "site-a"');
  assert.equal(filter.matches({}, { subject: "sensors.site-a.temp", headers: undefined }), true);
  assert.equal(filter.matches({}, { subject: "sensors.site-b.temp", headers: undefined }), false);
  assert.equal(filter.matches({}, { subject: "sensors.site-a.temp", headers: undefined }), true);
});

Deno.test("compileFilter() exposes the first header values as _headers", () => {
  const meta = { subject: "a", headers: headers({ "X-Site": "a" }) };
  assert.equal(matches('_headers["X-Site"] == "a"', {}, meta), true);
  assert.equal(matches('"X-Site" in _headers', {}, meta), true);
});

Deno.test("compileFilter() sees _headers as an empty map when there are no headers", () => {
  assert.equal(matches("size(_headers) == 0", {}), true);
  assert.equal(matches('"X-Site" in _headers', {}), false);
});

Deno.test("compileFilter() exposes an object payload as event", () => {
  assert.equal(matches("event.site == 'a' && site == 'a'", { site: "a" }), true);
});

Deno.test("compileFilter() reads fields that are not identifiers through event", () => {
  assert.equal(matches('event["odd-key"] == 1', { "odd-key": 1 }), true);
});

Deno.test("compileFilter() exposes a number payload as event", () => {
  assert.equal(matches("event > 3", 5), true);
  assert.equal(matches("event > 3", 2), false);
});

Deno.test("compileFilter() exposes an array payload as event", () => {
  assert.equal(matches("size(event) == 2", [1, 2]), true);
  assert.equal(matches("event[0] == 1", [1, 2]), true);
});

Deno.test("compileFilter() exposes string and null payloads as event", () => {
  assert.equal(matches('event == "on"', "on"), true);
  assert.equal(matches("event == null", null), true);
});

Deno.test("compileFilter() does not read fields of an array payload as variables", () => {
  assert.throws(() => matches("length == 2", [1, 2]), FilterEvalError);
});

Deno.test("compileFilter() gives reserved names precedence over event fields", () => {
  const event = { _subject: "spoofed", _tokens: [], _headers: { a: "b" }, event: 1 };
  assert.equal(matches('_subject == "sensors.site-a.temp"', event), true);
  assert.equal(matches("size(_tokens) == 3", event), true);
  assert.equal(matches("size(_headers) == 0", event), true);
  assert.equal(matches("has(event.event)", event), true);
});

Deno.test("compileFilter() does not leak prototype keys into has()", () => {
  assert.equal(matches("has(event.toString)", {}), false);
  assert.equal(matches("has(event.constructor)", {}), false);
});

Deno.test("compileFilter() does not leak prototype keys as variables", () => {
  assert.equal(evalError("toString == 1", {}).message, "Unknown variable: toString");
  assert.equal(evalError("constructor == 1", {}).message, "Unknown variable: constructor");
});

Deno.test("compileFilter() reads own fields named like prototype keys", () => {
  assert.equal(matches('toString == "x"', { toString: "x" }), true);
});

Deno.test("compileFilter() lets macro variables shadow event fields", () => {
  assert.equal(matches("items.all(i, i > 1)", { items: [2, 3], i: 0 }), true);
  assert.equal(matches("items.exists(i, i > limit)", { items: [2, 3], i: 0, limit: 2 }), true);
});

Deno.test("compileFilter() throws FilterEvalError for a non-bool result at run time", () => {
  const err = evalError("level", { level: 3 });
  assert.equal(err.message, "filter must return a bool, got double");
});

Deno.test("compileFilter() throws FilterEvalError for a type mismatch at run time", () => {
  const err = evalError("site > 3", { site: "a" });
  assert.doesNotMatch(err.message, /\n/);
});

Deno.test("compileFilter() reports a syntax error with its offset", () => {
  const err = compileError("temperature >");
  assert.equal(err.code, "filter_syntax");
  assert.equal(err.offset, 13);
  assert.equal(err.message, "Unexpected token: EOF");
});

Deno.test("compileFilter() reports the offset of a syntax error on a later line", () => {
  const err = compileError("temperature > 30\n && &&");
  assert.equal(err.code, "filter_syntax");
  assert.equal(err.offset, 21);
});

Deno.test("compileFilter() reports an empty expression as a syntax error", () => {
  assert.equal(compileError("").code, "filter_syntax");
});

Deno.test("compileFilter() reports a type error", () => {
  const err = compileError('1 + "a"');
  assert.equal(err.code, "filter_type");
  assert.equal(err.offset, 0);
  assert.match(err.message, /int \+ string/);
});

Deno.test("compileFilter() reports the offset of a nested type error", () => {
  const err = compileError('x > 1 && (1 + "a")');
  assert.equal(err.code, "filter_type");
  assert.equal(err.offset, 10);
});

Deno.test("compileFilter() rejects a known non-bool result type", () => {
  const err = compileError("1 + 2");
  assert.equal(err.code, "filter_type");
  assert.equal(err.message, "filter must return a bool, got int");
});

Deno.test("compileFilter() gives a single-line FilterCompileError message", () => {
  for (const expression of ["temperature >", 'site == "a" &&\n1 + "a" > 2', "[1, 2]"]) {
    assert.doesNotMatch(compileError(expression).message, /\n/, expression);
  }
});

Deno.test("compileFilter() makes FilterCompileError a SyntaxError with a name", () => {
  const err = compileError("(");
  assert.ok(err instanceof SyntaxError);
  assert.equal(err.name, "FilterCompileError");
});
