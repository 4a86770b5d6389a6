/**
 * The configuration of request-reply: the `request` processor's settings and the connector it
 * names, and `reply: true` pipelines. No server is needed.
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";
import { z } from "zod";
import { configJsonSchema } from "../src/cli/schema.ts";
import type { Config } from "../src/config/config.ts";
import { loadConfigTexts } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { connectorsOf, planReload } from "../src/engine/reload.ts";
import { ConfigErrors } from "../src/errors.ts";
import { defineConnectorType, type Registry } from "../src/registry.ts";

const lines = (...l: string[]) => l.join("\n") + "\n";

/** The built-in types plus `plain`, a type that can neither request nor answer. */
function registry(): Registry {
  const plainSchema = z.looseObject({});
  return builtinRegistry().register(defineConnectorType({
    type: "plain",
    summary: "a type without requests, for tests",
    connectorSchema: plainSchema,
    sourceSchema: plainSchema,
    sinkSchema: plainSchema,
    addressKey: "address",
    tokenSeparator: "/",
    secretKeys: [],
    urlKeys: [],
    create: () => {
      throw new Error("not for running");
    },
  }));
}

const REGISTRY = registry();

function load(text: string): Config {
  return loadConfigTexts([{ path: "c.yaml", text }], { registry: REGISTRY, env: () => undefined });
}

function errorsOf(text: string): string[] {
  try {
    load(text);
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map(String);
    throw e;
  }
  assert.fail("expected the configuration to be rejected");
}

/**
 * ```
 *  1 connectors:
 *  2   local: {type: nats}
 *  3   lookup: {type: nats}
 *  4   other: {type: plain}
 *  5 pipelines:
 *  6   enrich:
 *  7     source: {connector: local, subject: sensors.>}
 *  8     processors:
 *  9       - request:
 * 10           <request lines, 10 spaces>
 *   ...
 *     sinks: [{connector: local, subject: out}]
 * ```
 */
function enrich(...request: string[]): string {
  return lines(
    "connectors:",
    "  local: {type: nats}",
    "  lookup: {type: nats}",
    "  other: {type: plain}",
    "pipelines:",
    "  enrich:",
    "    source: {connector: local, subject: sensors.>}",
    "    processors:",
    "      - request:",
    ...request.map((l) => `          ${l}`),
    "    sinks: [{connector: local, subject: out}]",
  );
}

Deno.test("a request takes its defaults and counts its connector as used by the pipeline", () => {
  const config = load(enrich("connector: lookup", "subject: registry.{sensor}", "into: meta"));
  const p = config.pipelines.get("enrich")!;
  assert.deepEqual(connectorsOf(p), ["local", "lookup"]);
  assert.equal(p.processors[0]?.where, "processors[0] request");
  assert.equal(p.reply, false);
});

Deno.test("a reload that changes a request's connector restarts the pipeline", () => {
  const before = load(enrich("connector: lookup", "subject: registry.x"));
  const after = load(
    enrich("connector: lookup", "subject: registry.x").replace(
      "lookup: {type: nats}",
      "lookup: {type: nats, servers: nats://127.0.0.1:4999}",
    ),
  );
  const plan = planReload(before, after);
  assert.deepEqual(plan.replaceConnectors, ["lookup"]);
  assert.deepEqual(plan.startPipelines, ["enrich"]);
});

Deno.test("a request naming an undeclared connector is reported at its connector key", () => {
  assert.deepEqual(errorsOf(enrich("connector: registry", "subject: a")), [
    'c.yaml:10:22: pipelines.enrich.processors[0].request.connector: unknown connector "registry": declared are local, lookup, other',
  ]);
});

Deno.test("a request naming a connector that cannot send requests is reported", () => {
  assert.deepEqual(errorsOf(enrich("connector: other", "subject: a")), [
    'c.yaml:10:22: pipelines.enrich.processors[0].request.connector: connector "other" is of type "plain", which cannot send requests: name a nats connector',
  ]);
});

Deno.test("a request subject template that does not compile is reported at the character", () => {
  const errors = errorsOf(enrich("connector: lookup", "subject: registry.{sensor"));
  assert.equal(errors.length, 1);
  assert.match(
    errors[0]!,
    /^c\.yaml:11:29: pipelines\.enrich\.processors\[0\]\.request\.subject: invalid subject: Unclosed '\{'/,
  );
});

Deno.test("a request body that is not CEL is reported", () => {
  const errors = errorsOf(enrich("connector: lookup", "subject: a", "body: '{\"id\": '"));
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /processors\[0\]\.request\.body: invalid expression/);
});

Deno.test("request settings out of range are reported each at its key", () => {
  const errors = errorsOf(
    enrich(
      "connector: lookup",
      "subject: a",
      "timeout: soon",
      "max_in_flight: 0",
      "cache: {max_entries: 5}",
      "into: 'a..b'",
    ),
  );
  assert.deepEqual(errors.map((e) => e.replace(/^c\.yaml:\d+:\d+: /, "").split(":")[0]), [
    "pipelines.enrich.processors[0].request.timeout",
    "pipelines.enrich.processors[0].request.max_in_flight",
    "pipelines.enrich.processors[0].request.cache.ttl",
    "pipelines.enrich.processors[0].request.into",
  ]);
});

const SERVICE = [
  "connectors:",
  "  local: {type: nats}",
  "  other: {type: plain}",
  "pipelines:",
  "  convert:",
];

Deno.test("a reply pipeline needs no sinks", () => {
  const config = load(lines(
    ...SERVICE,
    "    source: {connector: local, subject: svc.convert, queue: converters}",
    "    processors: [{map: {f: 'celsius * 9.0 / 5.0 + 32.0'}}]",
    "    reply: true",
  ));
  const p = config.pipelines.get("convert")!;
  assert.equal(p.reply, true);
  assert.deepEqual(p.sinks, []);
});

Deno.test("a pipeline that does not reply still needs a sink", () => {
  assert.deepEqual(
    errorsOf(lines(...SERVICE, "    source: {connector: local, subject: a}", "    reply: false")),
    ["c.yaml:5:3: pipelines.convert.sinks: missing: expected a list"],
  );
});

Deno.test("a reply pipeline on a JetStream source is reported at reply", () => {
  assert.deepEqual(
    errorsOf(lines(
      ...SERVICE,
      "    source: {connector: local, subject: a, jetstream: {stream: S, durable: d}}",
      "    reply: true",
    )),
    [
      "c.yaml:7:12: pipelines.convert.reply: reply: true: a JetStream consumer's messages cannot be answered (their reply subject acknowledges them): use a core subscription",
    ],
  );
});

Deno.test("a reply pipeline on a connector type that cannot answer is reported at reply", () => {
  assert.deepEqual(
    errorsOf(lines(...SERVICE, "    source: {connector: other}", "    reply: true")),
    [
      'c.yaml:7:12: pipelines.convert.reply: reply: true needs a source that can answer requests; connector type "plain" cannot',
    ],
  );
});

Deno.test("the JSON Schema requires sinks exactly when a pipeline does not reply", () => {
  const validate = new Ajv2020({ allErrors: true, strict: true }).compile(
    configJsonSchema(builtinRegistry()),
  );
  const pipeline = (extra: string) =>
    parse(lines(
      "connectors: {local: {type: nats}}",
      "pipelines:",
      "  p:",
      "    source: {connector: local, subject: svc.a}",
      extra,
    ));
  assert.ok(validate(pipeline("    reply: true")), JSON.stringify(validate.errors));
  assert.ok(!validate(pipeline("    reply: false")));
  assert.ok(!validate(pipeline("    sinks: []")));
  assert.ok(validate(pipeline("    sinks: [{connector: local, subject: out}]")));
  assert.ok(
    validate(pipeline(
      "    processors: [{request: {connector: local, subject: 'r.{id}', into: m, cache: {ttl: 1m}}}]\n" +
        "    sinks: [{connector: local, subject: out}]",
    )),
    JSON.stringify(validate.errors),
  );
});
