/**
 * The configuration reference and the JSON Schema are generated from the zod schemas; the
 * committed files must be what the schemas generate today, so the docs cannot drift.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { keyPaths } from "../src/config/keys.ts";
import { fileSchema, pipelineSchema } from "../src/config/schema.ts";
import { duration, size } from "../src/config/fields.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { builtinProcessors } from "../src/processors/mod.ts";
import { generatedFiles } from "../tools/docs.ts";
import { flow, renderReference, rows } from "../tools/reference.ts";

const ROOT = new URL("../", import.meta.url);

for (const { path, text } of generatedFiles()) {
  Deno.test(`${path} is what the schemas generate (run deno task docs)`, async () => {
    const committed = await Deno.readTextFile(new URL(path, ROOT));
    assert.equal(committed, text, `${path} is out of date: run deno task docs`);
  });
}

Deno.test("the reference has a row for every key of every schema", () => {
  const reference = renderReference(builtinRegistry());
  const documented = (p: string) => reference.includes("| `" + p + "` |");
  const paths = [...keyPaths(fileSchema), ...keyPaths(pipelineSchema)];
  const registry = builtinRegistry();
  for (const name of registry.names()) {
    const t = registry.get(name)!;
    paths.push(
      ...keyPaths(t.connectorSchema),
      ...keyPaths(t.sourceSchema, "source"),
      ...keyPaths(t.sinkSchema, "sinks[]"),
    );
  }
  for (const kind of builtinProcessors().kinds()) {
    paths.push(`processors[].${kind.kind}`, ...keyPaths(kind.schema, `processors[].${kind.kind}`));
  }
  assert.ok(paths.length > 40, `only ${paths.length} keys found`);
  assert.deepEqual(paths.filter((p) => !documented(p)), []);
});

Deno.test("rows() gives type, written default, description and examples of each key", () => {
  const schema = z.strictObject({
    wait: duration("How long to wait").default(90_000),
    limit: size("How much to keep").default(64 * 1024 * 1024),
    mode: z.enum(["a", "b"]).default("a").describe("Which mode").meta({ examples: ["b"] }),
    nested: z.strictObject({ n: z.int().min(1).describe("A count") }).optional(),
    list: z.array(z.strictObject({ x: z.string().describe("An x") })).describe("Things"),
  });
  const got = rows(schema, "p.");
  assert.deepEqual(got.map((r) => [r.key, r.type, r.default]), [
    ["p.wait", "duration", "`90s`"],
    ["p.limit", "size", "`64MiB`"],
    ["p.mode", "`a`, `b`", "`a`"],
    ["p.nested", "map", "none"],
    ["p.nested.n", "integer ≥ 1", "required"],
    ["p.list", "list of map", "required"],
    ["p.list[].x", "string", "required"],
  ]);
  assert.equal(got[0]?.meaning, "How long to wait");
  assert.equal(got[2]?.meaning, "Which mode. Example: `b`");
});

Deno.test("flow() writes values as YAML does, quoting what YAML would read otherwise", () => {
  assert.equal(flow("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
  assert.equal(flow("true"), '"true"');
  assert.equal(flow("42"), '"42"');
  assert.equal(flow({ a: ["x", 1], b: false }), "{a: [x, 1], b: false}");
});
