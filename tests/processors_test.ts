/**
 * The processor chain without servers: compiling a chain (every problem at once, located), and the
 * semantics of the stateless kinds — filter, map, drop, rename, sample — plus the config loader's
 * view of `processors:` and per-sink `when`.
 */
import assert from "node:assert/strict";
import { loadConfigTexts } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { ConfigErrors } from "../src/errors.ts";
import { compileChain, type ProcessorDecl } from "../src/processors/chain.ts";
import { builtinProcessors } from "../src/processors/mod.ts";
import { DROP, newProcessorCounters, type Processor } from "../src/processors/types.ts";

const meta = { subject: "meters.oslo.m1", headers: undefined };

function chain(list: unknown, filter?: string): ProcessorDecl[] {
  const c = compileChain(builtinProcessors(), filter, list, { separator: "." });
  assert.deepEqual(c.problems, []);
  return c.processors;
}

function one(entry: unknown): Processor {
  const [decl] = chain([entry]);
  return decl!.factory.create({ counters: newProcessorCounters(), now: Date.now });
}

function problems(list: unknown): string[] {
  const c = compileChain(builtinProcessors(), undefined, list, { separator: "." });
  return c.problems.map((p) =>
    `${p.path.join(".")}: ${"message" in p ? p.message : p.issues.map((i) => i.message).join("; ")}`
  );
}

Deno.test("compileChain() labels processors by index and kind, top-level filter first", () => {
  const decls = chain([{ map: { kw: "kwh * 4.0" } }, { sample: 2 }], "kwh >= 0");
  assert.deepEqual(decls.map((d) => [d.label, d.where]), [
    ["filter", "filter"],
    ["0:map", "processors[0] map"],
    ["1:sample", "processors[1] sample"],
  ]);
});

Deno.test("compileChain() reports every problem of a chain at once", () => {
  assert.deepEqual(
    problems([
      { mapp: { a: "1" } },
      { map: { a: "1 +" } },
      { sample: 0 },
      { filter: "x > 1", sample: 2 },
      "sample",
    ]),
    [
      'processors.0.mapp: unknown processor "mapp" (did you mean "map"?): expected one of dedupe, drop, filter, map, rename, request, sample, throttle, window',
      "processors.1.map.a: invalid expression: Unexpected token: EOF",
      "processors.2.sample: expected a whole number of at least 1",
      "processors.3: expected a map with exactly one processor kind (dedupe, drop, filter, map, rename, request, sample, throttle, window), e.g. `- sample: 10`",
      "processors.4: expected a map with exactly one processor kind (dedupe, drop, filter, map, rename, request, sample, throttle, window), e.g. `- sample: 10`",
    ],
  );
  assert.deepEqual(problems({ sample: 2 }), [
    "processors: expected a list of processors, e.g. `- filter: temperature > 30`",
  ]);
});

Deno.test("filter drops events for which the expression is false", () => {
  const f = one({ filter: "kwh > 3" });
  const hot = { kwh: 4 };
  assert.equal(f.process(hot, meta), hot);
  assert.equal(f.process({ kwh: 3 }, meta), DROP);
  assert.throws(() => f.process({ other: 1 }, meta));
});

Deno.test("map sets fields from the event as it was before the map, nested paths created", () => {
  const m = one({
    map: { kw: "kwh * 4.0", site: "_tokens[1]", "reading.unit": '"kWh"', twice: "kw * 2.0" },
  });
  const input = { kwh: 2, kw: 1, reading: { value: 2 } };
  const out = m.process(input, meta);
  assert.deepEqual(out, {
    kwh: 2,
    kw: 8,
    site: "oslo",
    reading: { value: 2, unit: "kWh" },
    twice: 2, // computed from kw before this map set it
  });
  assert.deepEqual(input, { kwh: 2, kw: 1, reading: { value: 2 } }, "the input is not altered");
});

Deno.test("map turns CEL ints and maps into JSON values", () => {
  const m = one({ map: { n: "1 + 2", m: '{"a": 1, "b": [1, 2.5]}', u: "uint(5)" } });
  assert.deepEqual(m.process({}, meta), { n: 3, m: { a: 1, b: [1, 2.5] }, u: 5 });
});

Deno.test("map fails on a missing field and on an event that is not an object", () => {
  const m = one({ map: { kw: "kwh * 4.0" } });
  assert.throws(() => m.process({ other: 1 }, meta), /kwh/);
  assert.throws(() => m.process([1, 2], meta), /not a JSON object/);
});

Deno.test("drop removes fields and keeps an event without them unchanged", () => {
  const d = one({ drop: ["debug", "raw.trace", "missing.deep"] });
  const untouched = { a: 1, raw: { x: 1 } };
  assert.equal(d.process(untouched, meta), untouched, "same object: original bytes forwarded");
  assert.deepEqual(d.process({ a: 1, debug: true, raw: { trace: "t", x: 1 } }, meta), {
    a: 1,
    raw: { x: 1 },
  });
});

Deno.test("rename moves fields, nested too, and ignores missing ones", () => {
  const r = one({ rename: { temp: "temperature", "a.b": "c.d" } });
  assert.deepEqual(r.process({ temp: 21, a: { b: 1, k: 2 } }, meta), {
    temperature: 21,
    a: { k: 2 },
    c: { d: 1 },
  });
  const none = { x: 1 };
  assert.equal(r.process(none, meta), none);
});

Deno.test("sample keeps exactly the 1st, the N+1st, ... events", () => {
  const s = one({ sample: 3 });
  const kept = Array.from({ length: 10 }, (_, i) => i).filter((i) =>
    s.process({ i }, meta) !== DROP
  );
  assert.deepEqual(kept, [0, 3, 6, 9]);
});

const CONNECTOR = `
connectors:
  local: { type: nats, servers: "nats://127.0.0.1:4222" }
`;

function load(pipelines: string) {
  return loadConfigTexts([{ path: "c.yaml", text: CONNECTOR + pipelines }], {
    registry: builtinRegistry(),
    env: () => undefined,
  });
}

function loadErrors(pipelines: string): string[] {
  try {
    load(pipelines);
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.toString());
    throw e;
  }
  assert.fail("expected the config to be refused");
}

Deno.test("loadConfigTexts() locates chain and when errors at file:line:col", () => {
  const errors = loadErrors(`
pipelines:
  meters:
    source: { connector: local, subject: meters.> }
    processors:
      - filter: kwh > 3
      - map:
          kw: kwh * * 4
      - smaple: 10
    sinks:
      - connector: local
        subject: out
        when: kw >
`);
  assert.equal(errors.length, 3, errors.join("\n"));
  // The column points into the expression, at the unexpected token.
  assert.equal(
    errors[0],
    "c.yaml:11:21: pipelines.meters.processors[1].map.kw: invalid expression: Unexpected token: MULTIPLY",
  );
  assert.match(
    errors[1]!,
    /^c\.yaml:12:9: pipelines\.meters\.processors\[2\]\.smaple: unknown processor "smaple" \(did you mean "sample"\?\)/,
  );
  assert.match(errors[2]!, /^c\.yaml:16:\d+: pipelines\.meters\.sinks\[0\]\.when: invalid when/);
});

Deno.test("loadConfigTexts() compiles the chain and sink when into the pipeline", () => {
  const config = load(`
pipelines:
  meters:
    source: { connector: local, subject: meters.> }
    filter: kwh >= 0
    processors: [{ map: { kw: kwh * 4.0 } }]
    sinks:
      - { connector: local, subject: out, when: kw > 10 }
      - { connector: local, subject: all }
`);
  const p = config.pipelines.get("meters")!;
  assert.deepEqual(p.processors.map((d) => d.label), ["filter", "0:map"]);
  assert.equal(p.sinks[0]!.when?.matches({ kw: 11 }, meta), true);
  assert.equal(p.sinks[1]!.when, undefined);
});

Deno.test("map keeps an event's own __proto__ field as a field, never as the prototype", () => {
  const m = one({ map: { b: "a + 1.0" } });
  const out = m.process(JSON.parse('{"__proto__": {"x": 1}, "a": 2}'), meta) as object;
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
  assert.equal(JSON.stringify(out), '{"__proto__":{"x":1},"a":2,"b":3}');
});
