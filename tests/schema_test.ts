/**
 * The JSON Schema for editors (`sluice schema`, `docs/sluice.schema.json`) accepts every shipped
 * example and refuses broken configuration, checked with a real validator (ajv, draft 2020-12);
 * where the schema can judge a document, it agrees with `sluice check`.
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "yaml";
import { main } from "../src/cli/main.ts";
import { configJsonSchema } from "../src/cli/schema.ts";
import { loadConfig } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { defineConnectorType, Registry } from "../src/registry.ts";
import { z } from "zod";
import { ConfigErrors } from "../src/errors.ts";

const ROOT = new URL("../", import.meta.url);
const MODELINE = "# yaml-language-server: $schema=";

function validator() {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  return ajv.compile(configJsonSchema(builtinRegistry()));
}

/** The shipped example configuration files, relative to the repository root. */
async function examples(): Promise<string[]> {
  const out: string[] = [];
  for (const dir of ["connectors", "pipelines"]) {
    for await (const e of Deno.readDir(new URL(`${dir}/`, ROOT))) {
      if (e.isFile && /\.ya?ml$/.test(e.name)) out.push(`${dir}/${e.name}`);
    }
  }
  return out.sort();
}

Deno.test("the schema compiles under ajv's strict draft 2020-12 mode", () => {
  assert.equal(typeof validator(), "function");
});

Deno.test("every shipped example is valid against the schema", async () => {
  const validate = validator();
  const files = await examples();
  assert.ok(files.length >= 3, `found only ${files.join(", ")}`);
  for (const file of files) {
    const doc = parse(await Deno.readTextFile(new URL(file, ROOT)));
    assert.ok(validate(doc), `${file}: ${JSON.stringify(validate.errors, null, 1)}`);
  }
});

Deno.test("every shipped example names the committed schema in a yaml-language-server line", async () => {
  for (const file of await examples()) {
    const first = (await Deno.readTextFile(new URL(file, ROOT))).split("\n")[0] ?? "";
    assert.ok(first.startsWith(MODELINE), `${file}: first line is "${first}"`);
    const target = new URL(first.slice(MODELINE.length).trim(), new URL(file, ROOT));
    assert.equal(target.href, new URL("docs/sluice.schema.json", ROOT).href, file);
  }
});

Deno.test("sluice schema prints the committed docs/sluice.schema.json", async () => {
  const lines: string[] = [];
  const code = await main(["schema"], { out: (l) => lines.push(l), err: (l) => lines.push(l) });
  assert.equal(code, 0);
  const committed = await Deno.readTextFile(new URL("docs/sluice.schema.json", ROOT));
  assert.equal(lines.join("\n") + "\n", committed, "run: deno task docs");
});

Deno.test("sluice schema takes no arguments (exit 2)", async () => {
  const err: string[] = [];
  const code = await main(["schema", "x"], { out: () => {}, err: (l) => err.push(l) });
  assert.equal(code, 2);
  assert.match(err.join("\n"), /schema takes no arguments/);
});

const GOOD_CONNECTOR = `
connectors:
  local:
    type: nats
    servers: [nats://127.0.0.1:4222]
    reconnect: { wait: "\${WAIT:-2s}", max_attempts: 5 }
    max_pending: 4MiB
`;

const GOOD_PIPELINE = `
pipelines:
  p-1:
    source: { connector: local, subject: a.>, jetstream: { stream: S, durable: d, ack_wait: 1m } }
    processors:
      - filter: temperature > 30
      - map: { kw: kwh * 4.0 }
      - drop: [debug]
      - sample: 10
    sinks:
      - connector: local
        subject: b.{site}
        jetstream: { retries: 2 }
        msg_id: { field: id }
        buffer: { path: /tmp/x.db, max_size: 1MiB, overflow: block }
    dead_letter: { connector: local, subject: dlq.p }
health: { listen: ":9180", nats: { connector: local, interval: 5s } }
`;

/** Broken documents: what is wrong, and the document. Each is refused by schema and loader. */
const BROKEN: [string, string][] = [
  ["a misspelt key in a sink", GOOD_PIPELINE.replace("subject: b.{site}", "subjet: b.{site}")],
  ["an unknown top-level key", GOOD_CONNECTOR + "pipeline: {}\n"],
  ["an unknown connector type", GOOD_CONNECTOR.replace("type: nats", "type: kafka")],
  ["a connector without type", GOOD_CONNECTOR.replace("    type: nats\n", "")],
  ["a duration without unit", GOOD_CONNECTOR.replace("4MiB", "4MiB\n    ping_interval: 30")],
  ["a duration with a space", GOOD_CONNECTOR.replace("4MiB", "4MiB\n    ping_interval: 5 s")],
  ["a size in an unknown unit", GOOD_CONNECTOR.replace("4MiB", "4 megs")],
  ["a number below its bound", GOOD_CONNECTOR.replace("max_attempts: 5", "max_attempts: -2")],
  ["a value outside its enum", GOOD_PIPELINE.replace("overflow: block", "overflow: wait")],
  ["a pipeline without sinks", GOOD_PIPELINE.replace(/ {4}sinks:[\s\S]*?(?= {4}dead_letter)/, "")],
  ["a connector name with a space", GOOD_CONNECTOR.replace("  local:", "  my local:")],
  ["an unknown processor kind", GOOD_PIPELINE.replace("- drop: [debug]", "- dropp: [debug]")],
  [
    "a processor entry with two kinds",
    GOOD_PIPELINE.replace("- sample: 10", "- { sample: 10, drop: [x] }"),
  ],
  ["a processor setting of the wrong type", GOOD_PIPELINE.replace("- sample: 10", "- sample: ten")],
  ["a word where a number goes", GOOD_PIPELINE.replace("retries: 2", "retries: two")],
];

async function loaderRefuses(docs: string[], env: Record<string, string> = {}): Promise<boolean> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-schema-" });
  try {
    for (const [i, text] of docs.entries()) await Deno.writeTextFile(`${dir}/${i}.yaml`, text);
    await loadConfig([dir], { registry: builtinRegistry(), env: (n) => env[n] });
    return false;
  } catch (e) {
    if (e instanceof ConfigErrors) return true;
    throw e;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a valid configuration passes schema and loader, ${VAR} in a duration included", async () => {
  const validate = validator();
  for (const text of [GOOD_CONNECTOR, GOOD_PIPELINE]) {
    assert.ok(validate(parse(text)), JSON.stringify(validate.errors));
  }
  assert.equal(await loaderRefuses([GOOD_CONNECTOR, GOOD_PIPELINE]), false);
});

for (const [what, text] of BROKEN) {
  Deno.test(`the schema refuses ${what}, as sluice check does`, async () => {
    const validate = validator();
    assert.equal(validate(parse(text)), false, `the schema accepted ${what}`);
    const docs = text === GOOD_CONNECTOR || text.includes("connectors:")
      ? [text, GOOD_PIPELINE]
      : [GOOD_CONNECTOR, text];
    assert.equal(await loaderRefuses(docs), true, `sluice check accepted ${what}`);
  });
}

Deno.test("a connector type whose source is one of several shapes is composed shape by shape", () => {
  const registry = new Registry().register(defineConnectorType({
    type: "multi",
    summary: "Test type",
    connectorSchema: z.strictObject({ url: z.string() }),
    sourceSchema: z.union([
      z.strictObject({ topic: z.string() }),
      z.strictObject({ topics: z.array(z.string()) }),
    ]),
    sinkSchema: z.strictObject({ topic: z.string() }),
    addressKey: "topic",
    tokenSeparator: "/",
    secretKeys: [],
    urlKeys: ["url"],
    create: () => {
      throw new Error("not used");
    },
  }));
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  const validate = ajv.compile(configJsonSchema(registry));
  const doc = (source: unknown) => ({
    connectors: { m: { type: "multi", url: "x://y" } },
    pipelines: { p: { source, sinks: [{ connector: "m", topic: "t" }] } },
  });
  assert.ok(validate(doc({ connector: "m", topic: "a" })), JSON.stringify(validate.errors));
  assert.ok(validate(doc({ connector: "m", topics: ["a"] })), JSON.stringify(validate.errors));
  assert.equal(validate(doc({ connector: "m", topic: "a", topics: ["b"] })), false);
  assert.equal(validate(doc({ topic: "a" })), false, "connector is still required");
});
