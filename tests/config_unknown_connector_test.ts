/**
 * Issue 12 item 11: an unknown connector (or connector type) does not hide the other mistakes of
 * the same declaration. An endpoint whose connector type is unknown is validated by the one
 * registered type its address key names (`subject`, `topic`), else its keys that no registered
 * type accepts are reported with a hint.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { loadConfigTexts } from "../src/config/load.ts";
import { natsConnectorType } from "../src/connectors/nats/mod.ts";
import { ConfigErrors } from "../src/errors.ts";
import { defineConnectorType, Registry } from "../src/registry.ts";
import { configDir } from "../dev/config_dir.ts";
import { runSluice } from "../dev/sluice_process.ts";

/** The registry of these tests: NATS alone, whatever types ship, plus `topicType` where asked. */
const builtinRegistry = () => new Registry().register(natsConnectorType);

/** A second connector type addressed by `topic`, so that the address key has to decide. */
const topicType = defineConnectorType({
  type: "topical",
  summary: "A connector type of this test only",
  connectorSchema: z.strictObject({ url: z.string(), password: z.string().optional() }),
  sourceSchema: z.strictObject({ topic: z.string() }),
  sinkSchema: z.strictObject({ topic: z.string(), qos: z.int().min(0).max(2).optional() }),
  addressKey: "topic",
  tokenSeparator: "/",
  secretKeys: ["password"],
  urlKeys: ["url"],
  create: () => {
    throw new Error("never run by this test");
  },
});

function errorsOf(text: string, registry: Registry = builtinRegistry()): string[] {
  try {
    loadConfigTexts([{ path: "c.yaml", text }], { registry, env: () => undefined });
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map(String);
    throw e;
  }
  assert.fail("expected the configuration to be rejected");
}

const lines = (...l: string[]) => l.join("\n") + "\n";

/** Connector `local` (nats), and pipeline `p` whose sink is `sink` (flow map body) on line 8. */
const withSink = (sink: string) =>
  lines(
    "connectors:",
    "  local:",
    "    type: nats",
    "pipelines:",
    "  p:",
    "    source: { connector: local, subject: in.> }",
    "    sinks:",
    `      - { ${sink} }`,
  );

Deno.test("an unknown sink connector and a misspelt sink key are reported together", () => {
  assert.deepEqual(errorsOf(withSink("connector: uplink, subjet: out")), [
    'c.yaml:8:22: pipelines.p.sinks[0].connector: unknown connector "uplink": declared are local',
    'c.yaml:8:30: pipelines.p.sinks[0].subjet: unknown key "subjet" (did you mean "subject"?): ' +
    "expected one of subject, pass_headers, jetstream, msg_id",
  ]);
});

Deno.test("a sink of an unknown connector is validated by the type its address key names", () => {
  const errors = errorsOf(withSink("connector: uplink, subject: out.*, pass_headers: 1"));
  assert.equal(errors.length, 3, errors.join("\n"));
  assert.match(errors[0]!, /sinks\[0\]\.connector: unknown connector "uplink"/);
  assert.match(errors[1]!, /sinks\[0\]\.subject: .*wildcards are not allowed/);
  assert.match(errors[2]!, /sinks\[0\]\.pass_headers: expected true or false, got number 1$/);
});

Deno.test("a source of an unknown connector is checked too", () => {
  const errors = errorsOf(
    lines(
      "connectors:",
      "  local: { type: nats }",
      "pipelines:",
      "  p:",
      "    source: { connector: lokal, subject: in.>, qeue: q }",
      "    sinks: [{ connector: local, subject: out }]",
    ),
  );
  assert.deepEqual(errors, [
    'c.yaml:5:26: pipelines.p.source.connector: unknown connector "lokal": declared are local',
    'c.yaml:5:48: pipelines.p.source.qeue: unknown key "qeue" (did you mean "queue"?): ' +
    "expected one of subject, queue, format, jetstream",
  ]);
});

Deno.test("a connector of an unknown type: a hint for the type and its misspelt keys", () => {
  assert.deepEqual(
    errorsOf(lines("connectors:", "  local:", "    type: nast", "    sever: nats://a:4222")),
    [
      'c.yaml:3:11: connectors.local.type: unknown connector type "nast" (did you mean "nats"?): ' +
      "expected one of nats",
      'c.yaml:4:5: connectors.local.sever: unknown key "sever" (did you mean "servers"?): ' +
      "expected one of servers, name, auth, tls, reconnect, ping_interval, connect_timeout, " +
      "inbox_prefix, max_pending",
    ],
  );
});

Deno.test("sinks on a connector of unknown type are still checked", () => {
  const text = withSink("connector: local, subjet: out").replace("type: nats", "type: kafka");
  const errors = errorsOf(text);
  assert.equal(errors.length, 2, errors.join("\n"));
  assert.match(
    errors[0]!,
    /^c\.yaml:3:11: connectors\.local\.type: unknown connector type "kafka"/,
  );
  assert.match(errors[1]!, /^c\.yaml:8:29: pipelines\.p\.sinks\[0\]\.subjet: unknown key "subjet"/);
});

Deno.test("with several types, keys no type accepts are reported with a hint from all", () => {
  const registry = builtinRegistry().register(topicType);
  const errors = errorsOf(withSink("connector: uplink, subjet: out, qos: 1"), registry);
  assert.equal(errors.length, 2, errors.join("\n"));
  assert.equal(
    errors[1],
    'c.yaml:8:30: pipelines.p.sinks[0].subjet: unknown key "subjet" (did you mean "subject"?): ' +
      "expected one of subject, pass_headers, jetstream, msg_id, topic, qos",
  );
});

Deno.test("with several types, the address key picks the type that validates the sink", () => {
  const registry = builtinRegistry().register(topicType);
  const errors = errorsOf(withSink("connector: uplink, topic: a/b, qos: 7"), registry);
  assert.equal(errors.length, 2, errors.join("\n"));
  assert.match(errors[1]!, /^c\.yaml:8:\d+: pipelines\.p\.sinks\[0\]\.qos: expected at most 2/);
});

Deno.test("an unknown connector with valid settings is the only error", () => {
  assert.deepEqual(errorsOf(withSink("connector: uplink, subject: out")), [
    'c.yaml:8:22: pipelines.p.sinks[0].connector: unknown connector "uplink": declared are local',
  ]);
});

Deno.test("sluice check reports the unknown connector and the misspelt key at once", async () => {
  await using dir = await configDir(withSink("connector: uplink, subjet: out"));
  const { code, stderr } = await runSluice(["check", dir.dir]);
  assert.equal(code, 2, stderr);
  assert.match(stderr, /sinks\[0\]\.connector: unknown connector "uplink"/);
  assert.match(stderr, /sinks\[0\]\.subjet: unknown key "subjet" \(did you mean "subject"\?\)/);
  assert.match(stderr, /2 configuration errors; nothing was started\n$/);
});
