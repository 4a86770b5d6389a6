/**
 * The config contract (docs: /README.md "Configuration"): every error class with its exact
 * `file:line:col` and key path, interpolation, merging across files and directories, limits, and
 * the examples shipped in connectors/ and pipelines/.
 *
 * Most cases load inline YAML through `loadConfigTexts`; file and directory behaviour goes through
 * `loadConfig` on tests/fixtures/config and on temporary directories.
 */
import assert from "node:assert/strict";
import type { Config } from "../src/config/config.ts";
import {
  type ConfigText,
  loadConfig,
  loadConfigTexts,
  MAX_DECLARATIONS,
} from "../src/config/load.ts";
import { fileSchema } from "../src/config/schema.ts";
import { MAX_FILE_BYTES } from "../src/config/yaml_file.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import type { NatsConnectorConfig, NatsSinkConfig } from "../src/connectors/nats/schema.ts";
import { ConfigErrors } from "../src/errors.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const FIXTURES = `${ROOT}tests/fixtures/config`;
const registry = builtinRegistry();

type Vars = Readonly<Record<string, string>>;

/** Loads texts (one string is `c.yaml`; an object maps file names to texts, in order). */
function load(texts: string | Readonly<Record<string, string>>, vars: Vars = {}): Config {
  const list: ConfigText[] = typeof texts === "string"
    ? [{ path: "c.yaml", text: texts }]
    : Object.entries(texts).map(([path, text]) => ({ path, text }));
  return loadConfigTexts(list, { registry, env: (name) => vars[name] });
}

/** The `file:line:col: path: message` lines of a load that must fail. */
function errorsOf(texts: string | Readonly<Record<string, string>>, vars: Vars = {}): string[] {
  try {
    load(texts, vars);
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map(String);
    throw e;
  }
  assert.fail("expected the configuration to be rejected");
}

/** Like {@link errorsOf} for `loadConfig` on real paths. */
async function fileErrorsOf(paths: string[]): Promise<string[]> {
  try {
    await loadConfig(paths, { registry, env: () => undefined });
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map(String);
    throw e;
  }
  assert.fail("expected the configuration to be rejected");
}

/**
 * Asserts exactly one error, at `where` (`file:line:col: path`), with a message that equals
 * `message` or matches it. Messages composed by connector schemas are matched on their essence.
 */
function assertOneError(errors: string[], where: string, message: string | RegExp): void {
  assert.equal(errors.length, 1, `expected one error, got:\n${errors.join("\n")}`);
  const [error] = errors as [string];
  assert.ok(error.startsWith(`${where}: `), `expected the error at ${where}, got:\n${error}`);
  const text = error.slice(where.length + 2);
  if (typeof message === "string") assert.equal(text, message);
  else assert.match(text, message);
}

const lines = (...l: string[]) => l.join("\n") + "\n";

const CONNECTOR = ["connectors:", "  local:", "    type: nats"];

/**
 * A valid config with one pipeline, laid out line by line so positions are easy to read:
 *
 * ```
 *  1 connectors:
 *  2   local:
 *  3     type: nats
 *  4 pipelines:
 *  5   alerts:
 *  6     source:
 *  7       connector: local
 *  8       subject: <source>           <source> starts at column 16
 *  9     sinks:
 * 10       - connector: local
 * 11         subject: <sink>           <sink> starts at column 18
 * 12     filter: <filter>              <filter> starts at column 13 (only when given)
 * 12     dead_letter:                  (when given without a filter)
 * 13       connector: local
 * 14       subject: <deadLetter>       <deadLetter> starts at column 16
 * ```
 */
function pipelineYaml(
  o: { source?: string; sink?: string; filter?: string; deadLetter?: string } = {},
): string {
  return lines(
    ...CONNECTOR,
    "pipelines:",
    "  alerts:",
    "    source:",
    "      connector: local",
    `      subject: ${o.source ?? "sensors.>"}`,
    "    sinks:",
    "      - connector: local",
    `        subject: ${o.sink ?? "alerts.high"}`,
    ...(o.filter === undefined ? [] : [`    filter: ${o.filter}`]),
    ...(o.deadLetter === undefined
      ? []
      : ["    dead_letter:", "      connector: local", `      subject: ${o.deadLetter}`]),
  );
}

/** A connector `local` with extra lines from line 4 on (indent 4 for connector keys). */
const connectorYaml = (...extra: string[]) => lines(...CONNECTOR, ...extra);

// ---------------------------------------------------------------------------------------------
// The document itself

Deno.test("loadConfigTexts() accepts the pipeline layout the tests build on", () => {
  const config = load(pipelineYaml());
  assert.deepEqual([...config.connectors.keys()], ["local"]);
  assert.deepEqual([...config.pipelines.keys()], ["alerts"]);
  assert.deepEqual(config.files, ["c.yaml"]);
});

Deno.test("loadConfigTexts() reports a YAML syntax error at its position", () => {
  assertOneError(
    errorsOf(lines("connectors:", "  local:", "    type: nats: x")),
    "c.yaml:3:11",
    /^invalid YAML: .+/,
  );
});

Deno.test("loadConfigTexts() reports a badly indented key on its line", () => {
  assertOneError(
    errorsOf(lines("connectors:", "  local:", "    type: nats", "   name: x")),
    "c.yaml:4:1",
    /^invalid YAML: .+/,
  );
});

Deno.test("loadConfigTexts() reports a duplicate key in one map naming both places", () => {
  assert.deepEqual(errorsOf(lines(...CONNECTOR, "    type: nats")), [
    'c.yaml:4:5: connectors.local.type: key "type" appears twice in one map; first at c.yaml:3:5',
  ]);
});

Deno.test("loadConfigTexts() reports a connector declared twice in one file naming both places", () => {
  assert.deepEqual(errorsOf(lines(...CONNECTOR, "  local:", "    type: nats")), [
    'c.yaml:4:3: connectors.local: connector "local" is declared twice; first at c.yaml:2:3',
  ]);
});

Deno.test("loadConfigTexts() rejects a top level that is a list", () => {
  assert.deepEqual(errorsOf(lines("- connectors", "- pipelines")), [
    `c.yaml:1:1: expected a map of sections (${
      Object.keys(fileSchema.shape).join(", ")
    }) at the top level, got a list`,
  ]);
});

Deno.test("loadConfigTexts() rejects a top level that is a scalar", () => {
  assert.deepEqual(errorsOf(lines("# a comment first", "connectors")), [
    `c.yaml:2:1: expected a map of sections (${
      Object.keys(fileSchema.shape).join(", ")
    }) at the top level, got string "connectors"`,
  ]);
});

Deno.test("loadConfigTexts() accepts an empty file and a file of comments", () => {
  const config = load({ "empty.yaml": "", "comments.yaml": "# nothing yet\n" });
  assert.equal(config.connectors.size, 0);
  assert.equal(config.pipelines.size, 0);
  assert.deepEqual(config.files, ["empty.yaml", "comments.yaml"]);
});

Deno.test("loadConfigTexts() reports an unknown top-level key with a hint", () => {
  assert.deepEqual(errorsOf(lines("conectors:", "  local:", "    type: nats")), [
    `c.yaml:1:1: conectors: unknown key "conectors" (did you mean "connectors"?): expected one of ${
      Object.keys(fileSchema.shape).join(", ")
    }`,
  ]);
});

Deno.test("loadConfigTexts() rejects a second YAML document in one file", () => {
  assert.deepEqual(errorsOf(lines(...CONNECTOR, "---", "pipelines: {}")), [
    "c.yaml:4:1: invalid YAML: a second document ('---'): expected one document per file; split it into two files",
  ]);
});

Deno.test("loadConfigTexts() reports an alias without its anchor at the alias", () => {
  assert.deepEqual(errorsOf(lines("connectors:", "  local: *nats")), [
    "c.yaml:2:10: invalid YAML: an alias (*name) refers to no anchor (&name) set before it",
  ]);
});

Deno.test("loadConfigTexts() rejects aliases that expand exponentially", () => {
  const errors = errorsOf(lines(
    "a: &a [x, x, x, x, x, x, x, x, x, x]",
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
    "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
  ));
  assert.deepEqual(errors, [
    "c.yaml:1:1: invalid YAML: aliases expand to too much data: expected at most 100 alias expansions",
  ]);
});

Deno.test("loadConfigTexts() finds a duplicate key among 50,000 in linear time", () => {
  const out = ["extra:"];
  for (let i = 0; i < 50_000; i++) out.push(`  k${i}: 1`);
  out.push("  k0: 2");
  const started = performance.now();
  const errors = errorsOf(lines(...out));
  assert.ok(performance.now() - started < 5_000, "duplicates are not found pair by pair");
  assert.deepEqual(errors, [
    'c.yaml:50002:3: extra.k0: key "k0" appears twice in one map; first at c.yaml:2:3',
  ]);
});

Deno.test("loadConfigTexts() reads anchors and aliases within the limit", () => {
  const config = load(lines("connectors:", "  a: &nats", "    type: nats", "  b: *nats"));
  assert.deepEqual([...config.connectors.keys()], ["a", "b"]);
});

// ---------------------------------------------------------------------------------------------
// Unknown keys, at every level

Deno.test("loadConfigTexts() reports an unknown connector key with a did-you-mean hint", () => {
  assertOneError(
    errorsOf(connectorYaml("    sever: nats://10.0.0.1:4222")),
    "c.yaml:4:5: connectors.local.sever",
    /^unknown key "sever" \(did you mean "servers"\?\): expected one of servers, name, auth, tls, /,
  );
});

Deno.test("loadConfigTexts() reports an unknown auth key alone, not the forms it then lacks", () => {
  assertOneError(
    errorsOf(connectorYaml("    auth:", "      tokn: s3cret")),
    "c.yaml:5:7: connectors.local.auth.tokn",
    'unknown key "tokn" (did you mean "token"?): expected one of token, user, password, nkey_seed_file, creds_file',
  );
});

Deno.test("loadConfigTexts() reports an unknown tls key with the key it abbreviates", () => {
  assertOneError(
    errorsOf(connectorYaml("    tls:", "      ca: /etc/sluice/ca.pem")),
    "c.yaml:5:7: connectors.local.tls.ca",
    /^unknown key "ca" \(did you mean "ca_file"\?\): expected one of ca_file, cert_file, key_file/,
  );
});

Deno.test("loadConfigTexts() reports an unknown reconnect key with a hint", () => {
  assertOneError(
    errorsOf(connectorYaml("    reconnect:", "      wiat: 2s")),
    "c.yaml:5:7: connectors.local.reconnect.wiat",
    'unknown key "wiat" (did you mean "wait"?): expected one of wait, jitter, max_attempts',
  );
});

Deno.test("loadConfigTexts() reports an unknown pipeline key with a hint", () => {
  assertOneError(
    errorsOf(pipelineYaml() + "    filtr: temperature > 30\n"),
    "c.yaml:12:5: pipelines.alerts.filtr",
    /^unknown key "filtr" \(did you mean "filter"\?\): expected one of .*\bsource, filter, processors, sinks\b/,
  );
});

Deno.test("loadConfigTexts() reports an unknown source key with a hint", () => {
  assertOneError(
    errorsOf(pipelineYaml({ source: "sensors.>\n      qeue: alerting" })),
    "c.yaml:9:7: pipelines.alerts.source.qeue",
    /^unknown key "qeue" \(did you mean "queue"\?\): expected one of subject, queue, format/,
  );
});

Deno.test("loadConfigTexts() reports an unknown sink key with a hint", () => {
  assertOneError(
    errorsOf(pipelineYaml({ sink: "alerts.high\n        subjct: alerts.low" })),
    "c.yaml:12:9: pipelines.alerts.sinks[0].subjct",
    /^unknown key "subjct" \(did you mean "subject"\?\): expected one of subject, pass_headers/,
  );
});

Deno.test("loadConfigTexts() reports an unknown dead_letter key with a hint", () => {
  assertOneError(
    errorsOf(pipelineYaml({ deadLetter: "dlq.alerts\n      pass_header: true" })),
    "c.yaml:15:7: pipelines.alerts.dead_letter.pass_header",
    /^unknown key "pass_header" \(did you mean "pass_headers"\?\): expected one of subject, pass_headers/,
  );
});

Deno.test("loadConfigTexts() lists the allowed keys without a hint when none is close", () => {
  assertOneError(
    errorsOf(connectorYaml("    colour: blue")),
    "c.yaml:4:5: connectors.local.colour",
    /^unknown key "colour": expected one of servers, name, /,
  );
});

// ---------------------------------------------------------------------------------------------
// Types and required keys

Deno.test("loadConfigTexts() reports a number where a string is expected", () => {
  assert.deepEqual(errorsOf(connectorYaml("    name: 42")), [
    "c.yaml:4:11: connectors.local.name: expected a string, got number 42",
  ]);
});

Deno.test("loadConfigTexts() reports a string where a list is expected", () => {
  const text = lines(
    ...CONNECTOR,
    "pipelines:",
    "  alerts:",
    "    source:",
    "      connector: local",
    "      subject: sensors.>",
    "    sinks: alerts.high",
  );
  assert.deepEqual(errorsOf(text), [
    'c.yaml:9:12: pipelines.alerts.sinks: expected a list, got string "alerts.high"',
  ]);
});

Deno.test("loadConfigTexts() reports a map where a string is expected at its key", () => {
  assert.deepEqual(errorsOf(pipelineYaml({ source: "{ site: a }" })), [
    "c.yaml:8:7: pipelines.alerts.source.subject: expected a string, got a map",
  ]);
});

Deno.test("loadConfigTexts() names every accepted form when a value fits none", () => {
  assertOneError(
    errorsOf(connectorYaml("    servers: 4222")),
    "c.yaml:4:14: connectors.local.servers",
    "expected a string or a list, got number 4222",
  );
});

Deno.test("loadConfigTexts() reports a pipeline without sinks at the pipeline's name", () => {
  const text = lines(
    ...CONNECTOR,
    "pipelines:",
    "  alerts:",
    "    source:",
    "      connector: local",
    "      subject: sensors.>",
  );
  assert.deepEqual(errorsOf(text), [
    "c.yaml:5:3: pipelines.alerts.sinks: missing: expected a list",
  ]);
});

Deno.test("loadConfigTexts() reports a sink without subject at the sink", () => {
  assertOneError(
    errorsOf(pipelineYaml().replace("        subject: alerts.high\n", "")),
    "c.yaml:10:9: pipelines.alerts.sinks[0].subject",
    "missing: expected a string",
  );
});

Deno.test("loadConfigTexts() reports a source without connector at its key", () => {
  assert.deepEqual(errorsOf(pipelineYaml().replace("      connector: local\n", "")), [
    "c.yaml:6:5: pipelines.alerts.source.connector: missing: expected a string",
  ]);
});

Deno.test("loadConfigTexts() reports an empty sinks list", () => {
  const text = lines(
    ...CONNECTOR,
    "pipelines:",
    "  alerts:",
    "    source: { connector: local, subject: sensors.> }",
    "    sinks: []",
  );
  assert.deepEqual(errorsOf(text), [
    "c.yaml:7:5: pipelines.alerts.sinks: expected at least one sink",
  ]);
});

Deno.test("loadConfigTexts() reports a connector without type at its name", () => {
  assert.deepEqual(errorsOf(lines("connectors:", "  local:", "    name: gateway")), [
    "c.yaml:2:3: connectors.local.type: missing connector type: expected one of mqtt, nats",
  ]);
});

Deno.test("loadConfigTexts() reports a connector that is not a map", () => {
  assert.deepEqual(errorsOf(lines("connectors:", "  local: nats")), [
    'c.yaml:2:10: connectors.local: expected a map with "type" and its settings, got string "nats"',
  ]);
});

// ---------------------------------------------------------------------------------------------
// Names

Deno.test("loadConfigTexts() reports a connector declared in two files naming both places", () => {
  const errors = errorsOf({
    "a.yaml": connectorYaml(),
    "b.yaml": lines("# also here", "connectors:", "  local:", "    type: nats"),
  });
  assert.deepEqual(errors, [
    'b.yaml:3:3: connectors.local: connector "local" is declared twice; first at a.yaml:2:3',
  ]);
});

Deno.test("loadConfigTexts() reports a pipeline declared in two files naming both places", () => {
  const errors = errorsOf({
    "a.yaml": pipelineYaml(),
    "b.yaml": lines(
      "pipelines:",
      "  alerts:",
      "    source: { connector: local, subject: x }",
      "    sinks: [{ connector: local, subject: y }]",
    ),
  });
  assert.deepEqual(errors, [
    'b.yaml:2:3: pipelines.alerts: pipeline "alerts" is declared twice; first at a.yaml:5:3',
  ]);
});

Deno.test("loadConfigTexts() rejects a connector name with a space", () => {
  assert.deepEqual(errorsOf(lines("connectors:", '  "edge box":', "    type: nats")), [
    `c.yaml:2:3: connectors["edge box"]: invalid name "edge box": use letters, digits, '-' and '_', starting with a letter or digit`,
  ]);
});

Deno.test("loadConfigTexts() rejects a pipeline name with a dot", () => {
  const text = pipelineYaml().replace("  alerts:", "  alerts.high:");
  assert.deepEqual(errorsOf(text), [
    `c.yaml:5:3: pipelines["alerts.high"]: invalid name "alerts.high": use letters, digits, '-' and '_', starting with a letter or digit`,
  ]);
});

Deno.test("loadConfigTexts() reports a __proto__ name rather than dropping it", () => {
  assert.deepEqual(errorsOf(lines("connectors:", "  __proto__:", "    type: nats")), [
    `c.yaml:2:3: connectors.__proto__: invalid name "__proto__": use letters, digits, '-' and '_', starting with a letter or digit`,
  ]);
});

// ---------------------------------------------------------------------------------------------
// References

Deno.test("loadConfigTexts() reports an unknown connector type at the type", () => {
  assert.deepEqual(errorsOf(lines("connectors:", "  local:", "    type: kafka")), [
    'c.yaml:3:11: connectors.local.type: unknown connector type "kafka": expected one of mqtt, nats',
  ]);
});

Deno.test("loadConfigTexts() reports a source naming an unknown connector", () => {
  const text = pipelineYaml().replace(
    "      connector: local\n      subject",
    "      connector: lokal\n      subject",
  );
  assert.deepEqual(errorsOf(text), [
    'c.yaml:7:18: pipelines.alerts.source.connector: unknown connector "lokal": declared are local',
  ]);
});

Deno.test("loadConfigTexts() reports a sink naming an unknown connector", () => {
  const text = pipelineYaml().replace("      - connector: local", "      - connector: uplink");
  assert.deepEqual(errorsOf(text), [
    'c.yaml:10:20: pipelines.alerts.sinks[0].connector: unknown connector "uplink": declared are local',
  ]);
});

Deno.test("loadConfigTexts() reports a dead_letter naming an unknown connector", () => {
  const text = pipelineYaml({ deadLetter: "dlq.alerts" }).replace(
    "    dead_letter:\n      connector: local",
    "    dead_letter:\n      connector: dlq",
  );
  assert.deepEqual(errorsOf(text), [
    'c.yaml:13:18: pipelines.alerts.dead_letter.connector: unknown connector "dlq": declared are local',
  ]);
});

Deno.test("loadConfigTexts() says so when a pipeline names a connector and none is declared", () => {
  const text = lines(
    "pipelines:",
    "  alerts:",
    "    source: { connector: local, subject: sensors.> }",
    "    sinks: [{ connector: local, subject: alerts.high }]",
  );
  assert.deepEqual(errorsOf(text), [
    'c.yaml:3:26: pipelines.alerts.source.connector: unknown connector "local": no connectors are declared',
    'c.yaml:4:26: pipelines.alerts.sinks[0].connector: unknown connector "local": no connectors are declared',
  ]);
});

// ---------------------------------------------------------------------------------------------
// NATS subjects and sink templates

Deno.test("loadConfigTexts() accepts wildcards in a source subject", () => {
  const config = load(pipelineYaml({ source: "sensors.*.>" }));
  assert.equal(config.pipelines.get("alerts")?.source.connector, "local");
});

Deno.test("loadConfigTexts() rejects '*' in a sink subject at the wildcard", () => {
  assertOneError(
    errorsOf(pipelineYaml({ sink: "alerts.*" })),
    "c.yaml:11:25: pipelines.alerts.sinks[0].subject",
    /wildcards are not allowed/,
  );
});

Deno.test("loadConfigTexts() rejects '>' in a sink subject at the wildcard", () => {
  assertOneError(
    errorsOf(pipelineYaml({ sink: "alerts.>" })),
    "c.yaml:11:25: pipelines.alerts.sinks[0].subject",
    /wildcards are not allowed/,
  );
});

Deno.test("loadConfigTexts() rejects a '*' wildcard in a dead_letter subject", () => {
  assertOneError(
    errorsOf(pipelineYaml({ deadLetter: "dlq.*" })),
    "c.yaml:14:20: pipelines.alerts.dead_letter.subject",
    /wildcards are not allowed/,
  );
});

Deno.test("loadConfigTexts() rejects '>' before the last token of a source subject", () => {
  assertOneError(
    errorsOf(pipelineYaml({ source: "sensors.>.temperature" })),
    "c.yaml:8:16: pipelines.alerts.source.subject",
    /"sensors\.>\.temperature".*'>' is only allowed as the last token/,
  );
});

Deno.test("loadConfigTexts() rejects a wildcard inside a source subject token", () => {
  assertOneError(
    errorsOf(pipelineYaml({ source: "sensors.temp*" })),
    "c.yaml:8:16: pipelines.alerts.source.subject",
    /'\*' must be a whole token/,
  );
});

Deno.test("loadConfigTexts() rejects an empty token in a source subject", () => {
  assertOneError(
    errorsOf(pipelineYaml({ source: "sensors..temperature" })),
    "c.yaml:8:16: pipelines.alerts.source.subject",
    /empty token at position 2/,
  );
});

Deno.test("loadConfigTexts() rejects an empty token in a sink subject", () => {
  assertOneError(
    errorsOf(pipelineYaml({ sink: "alerts..high" })),
    "c.yaml:11:25: pipelines.alerts.sinks[0].subject",
    /empty token at position 2/,
  );
});

Deno.test("loadConfigTexts() rejects a space in a subject", () => {
  assertOneError(
    errorsOf(pipelineYaml({ source: '"sensors.temp erature"' })),
    "c.yaml:8:16: pipelines.alerts.source.subject",
    /contains a space/,
  );
});

Deno.test("loadConfigTexts() rejects an empty subject", () => {
  assertOneError(
    errorsOf(pipelineYaml({ source: '""' })),
    "c.yaml:8:16: pipelines.alerts.source.subject",
    /subject is empty/,
  );
});

Deno.test("loadConfigTexts() accepts a sink subject template", () => {
  const config = load(pipelineYaml({ sink: "alerts.{site}.{_tokens[1]}" }));
  const sink = config.pipelines.get("alerts")?.sinks[0]?.settings as NatsSinkConfig;
  assert.equal(sink.subject, "alerts.{site}.{_tokens[1]}");
});

Deno.test("loadConfigTexts() points into a sink template at an unclosed '{'", () => {
  assertOneError(
    errorsOf(pipelineYaml({ sink: "alerts.{site.high" })),
    "c.yaml:11:25: pipelines.alerts.sinks[0].subject",
    /Unclosed '\{'/,
  );
});

Deno.test("loadConfigTexts() points into a double-quoted sink template past the quote", () => {
  assertOneError(
    errorsOf(pipelineYaml({ sink: '"alerts.{site.high"' })),
    "c.yaml:11:26: pipelines.alerts.sinks[0].subject",
    /Unclosed '\{'/,
  );
});

Deno.test("loadConfigTexts() rejects a template as dead_letter subject", () => {
  assert.deepEqual(errorsOf(pipelineYaml({ deadLetter: "dlq.{site}" })), [
    "c.yaml:14:16: pipelines.alerts.dead_letter.subject: a dead-letter subject cannot be a template: failures to render it would have nowhere to go",
  ]);
});

// ---------------------------------------------------------------------------------------------
// Durations, sizes, numbers

Deno.test("loadConfigTexts() parses durations and sizes to milliseconds and bytes", () => {
  const config = load(connectorYaml(
    "    reconnect:",
    "      wait: 250ms",
    "      jitter: 1.5s",
    "      max_attempts: 5",
    "    ping_interval: 2m",
    "    max_pending: 64MiB",
  ));
  const settings = config.connectors.get("local")?.settings as NatsConnectorConfig;
  assert.deepEqual(settings.reconnect, { wait: 250, jitter: 1500, max_attempts: 5 });
  assert.equal(settings.ping_interval, 120_000);
  assert.equal(settings.max_pending, 64 * 1024 * 1024);
});

Deno.test("loadConfigTexts() rejects a duration without unit", () => {
  assert.deepEqual(errorsOf(connectorYaml("    reconnect:", "      wait: 2")), [
    "c.yaml:5:13: connectors.local.reconnect.wait: expected a string, got number 2",
  ]);
});

Deno.test("loadConfigTexts() rejects a duration that is a word", () => {
  assert.deepEqual(errorsOf(connectorYaml("    reconnect:", "      wait: fast")), [
    'c.yaml:5:13: connectors.local.reconnect.wait: invalid duration "fast": expected a number with a unit, e.g. 250ms, 2s, 5m, 1h',
  ]);
});

Deno.test("loadConfigTexts() rejects a size that is a word", () => {
  assert.deepEqual(errorsOf(connectorYaml("    max_pending: lots")), [
    'c.yaml:4:18: connectors.local.max_pending: invalid size "lots": expected a number with a unit, e.g. 512KiB, 64MiB, 1GiB',
  ]);
});

Deno.test("loadConfigTexts() rejects max_attempts below -1", () => {
  assert.deepEqual(errorsOf(connectorYaml("    reconnect:", "      max_attempts: -2")), [
    "c.yaml:5:21: connectors.local.reconnect.max_attempts: expected at least -1, got number -2",
  ]);
});

Deno.test("loadConfigTexts() rejects a fractional max_attempts", () => {
  assert.deepEqual(errorsOf(connectorYaml("    reconnect:", "      max_attempts: 1.5")), [
    "c.yaml:5:21: connectors.local.reconnect.max_attempts: expected an integer, got number 1.5",
  ]);
});

// ---------------------------------------------------------------------------------------------
// CEL filters

Deno.test("loadConfigTexts() points at the offending character of a filter", () => {
  assertOneError(
    errorsOf(pipelineYaml({ filter: "temperature > > 30" })),
    "c.yaml:12:27",
    /^pipelines\.alerts\.filter: invalid filter: .+/,
  );
});

Deno.test("loadConfigTexts() points into a double-quoted filter past the quote", () => {
  assertOneError(
    errorsOf(pipelineYaml({ filter: '"temperature > > 30"' })),
    "c.yaml:12:28",
    /^pipelines\.alerts\.filter: invalid filter: .+/,
  );
});

Deno.test("loadConfigTexts() counts escapes when pointing into a double-quoted filter", () => {
  // Columns: `"` at 13, `\"a\"` takes five characters for three, the second `>` stands at 31.
  assertOneError(
    errorsOf(pipelineYaml({ filter: '"site == \\"a\\" && > 1"' })),
    "c.yaml:12:31",
    /^pipelines\.alerts\.filter: invalid filter: .+/,
  );
});

Deno.test("loadConfigTexts() counts doubled quotes when pointing into a single-quoted filter", () => {
  assertOneError(
    errorsOf(pipelineYaml({ filter: "'site == ''a'' && > 1'" })),
    "c.yaml:12:31",
    /^pipelines\.alerts\.filter: invalid filter: .+/,
  );
});

Deno.test("loadConfigTexts() reports a filter type error at the ill-typed operation", () => {
  assertOneError(
    errorsOf(pipelineYaml({ filter: `'site == 1 + "a"'` })),
    "c.yaml:12:22",
    /^pipelines\.alerts\.filter: invalid filter: .*int \+ string/,
  );
});

Deno.test("loadConfigTexts() reports a filter that is not a bool", () => {
  assert.deepEqual(errorsOf(pipelineYaml({ filter: "1 + 2" })), [
    "c.yaml:12:13: pipelines.alerts.filter: invalid filter: filter must return a bool, got int",
  ]);
});

Deno.test("loadConfigTexts() rejects an empty filter", () => {
  assert.deepEqual(errorsOf(pipelineYaml({ filter: '""' })), [
    "c.yaml:12:13: pipelines.alerts.filter: expected a CEL expression; leave the key out to pass everything",
  ]);
});

Deno.test("loadConfigTexts() points at an interpolated filter's start, not a wrong column", () => {
  // The error's offset is into "temperature > > 30", which is not what the file says.
  assertOneError(
    errorsOf(pipelineYaml({ filter: "${FIELD} > > 30" }), { FIELD: "temperature" }),
    "c.yaml:12:13",
    /^pipelines\.alerts\.filter: invalid filter: .+/,
  );
});

// ---------------------------------------------------------------------------------------------
// Credentials, TLS, servers

Deno.test("loadConfigTexts() rejects auth with none of the forms", () => {
  assertOneError(
    errorsOf(connectorYaml("    auth: {}")),
    "c.yaml:4:5: connectors.local.auth",
    /^expected one of token, user\+password, nkey_seed_file, creds_file$/,
  );
});

Deno.test("loadConfigTexts() rejects auth with two forms", () => {
  assertOneError(
    errorsOf(connectorYaml("    auth:", "      token: t", "      creds_file: /etc/sluice/g.creds")),
    "c.yaml:4:5: connectors.local.auth",
    /exactly one form of credentials, got token and creds_file/,
  );
});

Deno.test("loadConfigTexts() rejects a user without password", () => {
  assertOneError(
    errorsOf(connectorYaml("    auth:", "      user: sluice")),
    "c.yaml:4:5: connectors.local.auth",
    /user and password go together/,
  );
});

Deno.test("loadConfigTexts() accepts user and password", () => {
  const config = load(
    connectorYaml("    auth:", "      user: sluice", "      password: ${PW}"),
    { PW: "pw" },
  );
  const settings = config.connectors.get("local")?.settings as NatsConnectorConfig;
  assert.deepEqual(settings.auth, { user: "sluice", password: "pw" });
});

Deno.test("loadConfigTexts() rejects a TLS certificate without key", () => {
  assertOneError(
    errorsOf(connectorYaml("    tls:", "      cert_file: /etc/sluice/client.pem")),
    "c.yaml:4:5: connectors.local.tls",
    /cert_file and key_file go together/,
  );
});

Deno.test("loadConfigTexts() rejects an http:// server URL", () => {
  assertOneError(
    errorsOf(connectorYaml("    servers: http://10.0.0.1:4222")),
    "c.yaml:4:14: connectors.local.servers",
    /"http:".*expected nats:\/\/ or tls:\/\//,
  );
});

Deno.test("loadConfigTexts() rejects credentials in a server URL without echoing them", () => {
  const errors = errorsOf(connectorYaml("    servers: nats://sluice:s3cret@10.0.0.1:4222"));
  assertOneError(
    errors,
    "c.yaml:4:14: connectors.local.servers",
    /credentials in server URL.*auth/,
  );
  assert.ok(!errors[0]!.includes("s3cret"), errors[0]!);
});

Deno.test("loadConfigTexts() reports a bad server URL in a list at its index", () => {
  assertOneError(
    errorsOf(connectorYaml("    servers:", "      - nats://a:4222", "      - http://b:4222")),
    "c.yaml:6:9: connectors.local.servers[1]",
    /"http:"/,
  );
});

// ---------------------------------------------------------------------------------------------
// Interpolation

Deno.test("loadConfigTexts() substitutes ${VAR}", () => {
  const config = load(connectorYaml("    servers: nats://${HOST}:4222"), { HOST: "10.0.0.7" });
  const settings = config.connectors.get("local")?.settings as NatsConnectorConfig;
  assert.deepEqual(settings.servers, ["nats://10.0.0.7:4222"]);
});

Deno.test("loadConfigTexts() uses the default of ${VAR:-default} when VAR is unset", () => {
  const config = load(connectorYaml("    name: ${CLIENT:-gateway-01}"));
  assert.equal(
    (config.connectors.get("local")?.settings as NatsConnectorConfig).name,
    "gateway-01",
  );
});

Deno.test("loadConfigTexts() uses the default of ${VAR:-default} when VAR is empty", () => {
  const config = load(connectorYaml("    name: ${CLIENT:-gateway-01}"), { CLIENT: "" });
  assert.equal(
    (config.connectors.get("local")?.settings as NatsConnectorConfig).name,
    "gateway-01",
  );
});

Deno.test("loadConfigTexts() prefers a set variable over the default", () => {
  const config = load(connectorYaml("    name: ${CLIENT:-gateway-01}"), { CLIENT: "edge-7" });
  assert.equal((config.connectors.get("local")?.settings as NatsConnectorConfig).name, "edge-7");
});

Deno.test("loadConfigTexts() reports an unset variable without default at the value", () => {
  assert.deepEqual(errorsOf(connectorYaml('    name: "edge-${SITE}"')), [
    'c.yaml:4:11: connectors.local.name: environment variable "SITE" is not set: set it, or write "${SITE:-default}"',
  ]);
});

Deno.test("loadConfigTexts() reports an unset variable in a list item at the item", () => {
  assert.deepEqual(
    errorsOf(connectorYaml("    servers:", "      - nats://a:4222", "      - ${B}")),
    [
      'c.yaml:6:9: connectors.local.servers[1]: environment variable "B" is not set: set it, or write "${B:-default}"',
    ],
  );
});

Deno.test("loadConfigTexts() reads $$ as a literal $", () => {
  const config = load(connectorYaml("    name: a$$b-$${HOST}-$x"), { HOST: "h" });
  assert.equal(
    (config.connectors.get("local")?.settings as NatsConnectorConfig).name,
    "a$b-${HOST}-$x",
  );
});

Deno.test("loadConfigTexts() does not interpolate a variable's value again", () => {
  const config = load(connectorYaml("    name: ${A}"), { A: "${B}" });
  assert.equal((config.connectors.get("local")?.settings as NatsConnectorConfig).name, "${B}");
});

Deno.test("loadConfigTexts() reports an unclosed ${ at the value", () => {
  assert.deepEqual(errorsOf(connectorYaml("    name: edge-${SITE")), [
    'c.yaml:4:11: connectors.local.name: unclosed "${" at character 6: write "$$" for a literal "$"',
  ]);
});

// ---------------------------------------------------------------------------------------------
// Merging files and directories

Deno.test("loadConfigTexts() merges connectors of one file with pipelines of another", () => {
  const pipelines = pipelineYaml().split("\n").slice(3).join("\n");
  const config = load({ "connectors.yaml": connectorYaml(), "pipelines.yaml": pipelines });
  assert.deepEqual([...config.connectors.keys()], ["local"]);
  assert.deepEqual([...config.pipelines.keys()], ["alerts"]);
  assert.equal(config.pipelines.get("alerts")?.location.file, "pipelines.yaml");
  assert.equal(config.connectors.get("local")?.location.file, "connectors.yaml");
});

Deno.test("loadConfig() reads only the *.yaml and *.yml of a directory, not recursively", async () => {
  const dir = `${FIXTURES}/split`;
  const config = await loadConfig([dir], { registry, env: () => undefined });
  assert.deepEqual(config.files, [`${dir}/10-connectors.yaml`, `${dir}/20-pipelines.yml`]);
  assert.deepEqual([...config.pipelines.keys()], ["alerts"]);
});

Deno.test("loadConfig() reads a directory's files sorted by name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-config-" });
  try {
    // Created in reverse order, so directory order and name order differ on most file systems.
    for (const name of ["c.yml", "b.yaml", "a.yaml"]) {
      await Deno.writeTextFile(`${dir}/${name}`, connectorYaml());
    }
    const errors = await fileErrorsOf([dir]);
    assert.deepEqual(errors, [
      `${dir}/b.yaml:2:3: connectors.local: connector "local" is declared twice; first at ${dir}/a.yaml:2:3`,
      `${dir}/c.yml:2:3: connectors.local: connector "local" is declared twice; first at ${dir}/a.yaml:2:3`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() follows a symlinked YAML file in a directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-config-" });
  try {
    // The layout of a Kubernetes ConfigMap volume: each entry is a link into `..data/`.
    await Deno.mkdir(`${dir}/..data`);
    await Deno.writeTextFile(`${dir}/..data/local.yaml`, connectorYaml());
    await Deno.symlink("..data/local.yaml", `${dir}/local.yaml`);
    await Deno.symlink("..data/missing.yaml", `${dir}/dangling.yaml`);
    const config = await loadConfig([dir], { registry, env: () => undefined });
    assert.deepEqual(config.files, [`${dir}/local.yaml`]);
    assert.deepEqual([...config.connectors.keys()], ["local"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() merges a file and a directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-config-" });
  try {
    await Deno.writeTextFile(`${dir}/connectors.yaml`, connectorYaml());
    await Deno.mkdir(`${dir}/pipelines`);
    await Deno.writeTextFile(
      `${dir}/pipelines/alerts.yaml`,
      pipelineYaml().split("\n").slice(3).join("\n"),
    );
    const config = await loadConfig([`${dir}/connectors.yaml`, `${dir}/pipelines/`], {
      registry,
      env: () => undefined,
    });
    assert.deepEqual(config.files, [`${dir}/connectors.yaml`, `${dir}/pipelines/alerts.yaml`]);
    assert.equal(config.pipelines.get("alerts")?.source.connector, "local");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() reports a path that does not exist", async () => {
  const missing = `${FIXTURES}/does-not-exist.yaml`;
  assert.deepEqual(await fileErrorsOf([missing]), [`${missing}:1:1: no such file or directory`]);
});

Deno.test("loadConfig() reports a directory without YAML files", async () => {
  const dir = `${FIXTURES}/no-yaml`;
  assert.deepEqual(await fileErrorsOf([dir]), [`no *.yaml or *.yml files in ${dir}`]);
});

Deno.test("loadConfig() refuses a path that is not a regular file", async () => {
  assert.deepEqual(await fileErrorsOf(["/dev/null"]), [
    "/dev/null:1:1: not a regular file: expected a YAML file or a directory",
  ]);
});

// ---------------------------------------------------------------------------------------------
// Many errors at once

Deno.test("loadConfigTexts() reports three independent mistakes of one file, by position", () => {
  const text = lines(
    ...CONNECTOR,
    "    reconnect:",
    "      wait: soon", //                 5:13, in the connector the pipeline uses
    "pipelines:",
    "  alerts:",
    "    descripton: hot readings", //    8:5, an unknown pipeline key
    "    source:",
    "      connector: local",
    "      subject: sensors..temp", //   11:16, in a pipeline with another mistake
    "    filter: temperature > 30",
    "    sinks:",
    "      - connector: local",
    "        subject: alerts.high",
  );
  const errors = errorsOf(text);
  assert.equal(errors.length, 3, errors.join("\n"));
  assert.match(
    errors[0]!,
    /^c\.yaml:5:13: connectors\.local\.reconnect\.wait: invalid duration "soon"/,
  );
  assert.match(errors[1]!, /^c\.yaml:8:5: pipelines\.alerts\.descripton: unknown key "descripton"/);
  assert.match(errors[2]!, /^c\.yaml:11:16: pipelines\.alerts\.source\.subject: .*empty token/);
});

Deno.test("loadConfigTexts() sorts errors of several files by file, line and column", () => {
  const errors = errorsOf({
    "b.yaml": connectorYaml("    name: 1", "    ping_interval: often"),
    "a.yaml": lines("connectors:", "  other:", "    type: kafka"),
  });
  assert.deepEqual(errors.map((e) => e.split(": ")[0]), [
    "a.yaml:3:11",
    "b.yaml:4:11",
    "b.yaml:5:20",
  ]);
});

// ---------------------------------------------------------------------------------------------
// Limits

Deno.test("loadConfig() rejects a file larger than MAX_FILE_BYTES without reading it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-config-" });
  try {
    const path = `${dir}/huge.yaml`;
    await Deno.writeTextFile(path, connectorYaml());
    await Deno.truncate(path, MAX_FILE_BYTES + 1); // sparse: no time spent writing it
    const started = performance.now();
    const errors = await fileErrorsOf([path]);
    assert.ok(performance.now() - started < 1_000, "the size is checked before reading");
    assert.deepEqual(errors, [
      `${path}:1:1: file is ${
        MAX_FILE_BYTES + 1
      } bytes; config files may be at most ${MAX_FILE_BYTES}`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfigTexts() rejects a text larger than MAX_FILE_BYTES", () => {
  const text = "#".repeat(MAX_FILE_BYTES) + "\n";
  assert.deepEqual(errorsOf({ "big.yaml": text }), [
    `big.yaml:1:1: file is ${
      MAX_FILE_BYTES + 1
    } bytes; config files may be at most ${MAX_FILE_BYTES}`,
  ]);
});

Deno.test("loadConfigTexts() rejects more than MAX_DECLARATIONS pipelines at the first too many", () => {
  // The limit is on the count, checked before any pipeline is validated: bodies can be empty.
  const out = ["connectors:", "  local: { type: nats }", "pipelines:"];
  for (let i = 0; i <= MAX_DECLARATIONS; i++) out.push(`  p${i}: {}`);
  const started = performance.now();
  const errors = errorsOf({ "many.yaml": lines(...out) });
  assert.ok(performance.now() - started < 5_000, "rejected before validating each pipeline");
  const line = 4 + MAX_DECLARATIONS; // the first pipeline beyond the limit
  assert.deepEqual(errors, [
    `many.yaml:${line}:3: pipelines: ${
      MAX_DECLARATIONS + 1
    } pipelines declared; at most ${MAX_DECLARATIONS} are supported`,
  ]);
});

// ---------------------------------------------------------------------------------------------
// The shipped examples and the CLI

Deno.test("loadConfig() accepts the examples shipped in connectors/ and pipelines/", async () => {
  const config = await loadConfig([`${ROOT}connectors`, `${ROOT}pipelines`], {
    registry,
    env: () => undefined,
  });
  assert.deepEqual([...config.connectors.keys()], ["local", "uplink"]);
  assert.deepEqual([...config.pipelines.keys()].sort(), [
    "alarms",
    "convert-service",
    "meter-averages",
    "site-routing",
    "temperature-alerts",
    "temperature-by-exception",
  ]);
  const settings = config.connectors.get("local")?.settings as NatsConnectorConfig;
  assert.deepEqual(settings.servers, ["nats://127.0.0.1:4222"]);
});

async function sluiceCheck(
  ...paths: string[]
): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "src/main.ts", "check", ...paths],
    cwd: ROOT,
    env: { NO_COLOR: "1", NATS_URL: "nats://127.0.0.1:4222" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code, out: text.decode(stdout), err: text.decode(stderr) };
}

Deno.test("sluice check exits 0 on the shipped examples", async () => {
  const { code, out, err } = await sluiceCheck("connectors", "pipelines");
  assert.equal(code, 0, err);
  assert.equal(out, "ok: 2 connectors, 6 pipelines in 8 files\n");
});

Deno.test("sluice check reads connectors/ and pipelines/ when given no path", async () => {
  const { code, out, err } = await sluiceCheck();
  assert.equal(code, 0, err);
  assert.equal(out, "ok: 2 connectors, 6 pipelines in 8 files\n");
});

Deno.test("sluice check exits 2 on a bad file with the error line on stderr", async () => {
  const { code, out, err } = await sluiceCheck("tests/fixtures/config/bad/pipeline.yaml");
  assert.equal(code, 2);
  assert.equal(out, "");
  const [error, summary, ...rest] = err.trimEnd().split("\n");
  assert.match(
    error!,
    /^tests\/fixtures\/config\/bad\/pipeline\.yaml:11:25: pipelines\.alerts\.sinks\[0\]\.subject: .*wildcards/,
  );
  assert.equal(summary, "1 configuration error; nothing was started");
  assert.deepEqual(rest, []);
});

Deno.test("loadConfigTexts() never quotes a value under auth or tls in its messages", () => {
  const errors = errorsOf(`connectors:
  a:
    type: nats
    auth: s3cr3t-a
  b:
    type: nats
    auth: { token: 424242 }
  c:
    type: nats
    auth: { user: [s3cr3t-c], password: s3cr3t-p }
  d:
    type: nats
    tls: s3cr3t-d
`);
  assert.equal(errors.length, 4, errors.join("\n"));
  assert.ok(errors.some((e) => /connectors\.a\.auth: expected a map, got a string$/.test(e)));
  assert.ok(
    errors.some((e) => /connectors\.b\.auth\.token: expected a string, got a number$/.test(e)),
  );
  assert.doesNotMatch(errors.join("\n"), /s3cr3t|424242/);
});

Deno.test("loadConfigTexts() still says a credential key is missing", () => {
  const errors = errorsOf(`connectors:
  a:
    type: nats
    auth: { user: sluice }
`);
  assert.ok(errors.some((e) => /user and password go together/.test(e)), errors.join("\n"));
});
