/**
 * The README's configuration reference (with the guides in docs/, e.g. docs/fleet.md for the
 * `fleet:` section) must name every key the schemas accept, so the docs cannot fall behind the code.
 */
import assert from "node:assert/strict";
import { keyPaths } from "../src/config/keys.ts";
import { fileSchema, pipelineSchema } from "../src/config/schema.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";

const docs = new URL("../docs/", import.meta.url);
const guides = [...Deno.readDirSync(docs)].filter((e) => e.name.endsWith(".md"))
  .map((e) => Deno.readTextFileSync(new URL(e.name, docs)));
const readme = [await Deno.readTextFile(new URL("../README.md", import.meta.url)), ...guides]
  .join("\n");

function undocumented(paths: string[]): string[] {
  return paths.filter((p) => !readme.includes("`" + p + "`"));
}

Deno.test("README documents every top-level and pipeline key", () => {
  const paths = [
    ...keyPaths(fileSchema),
    // dead_letter takes a sink's keys; the README says so instead of repeating them.
    ...keyPaths(pipelineSchema).filter((p) => !p.startsWith("dead_letter.")),
  ];
  assert.deepEqual(undocumented(paths), []);
});

Deno.test("README documents every key of every connector type", () => {
  const registry = builtinRegistry();
  for (const name of registry.names()) {
    const t = registry.get(name)!;
    const paths = [
      ...keyPaths(t.connectorSchema),
      ...keyPaths(t.sourceSchema, "source"),
      ...keyPaths(t.sinkSchema, "sinks[]"),
    ];
    assert.deepEqual(undocumented(paths), [], `connector type ${name}`);
  }
});

Deno.test("keyPaths() walks nested objects and lists", () => {
  const paths = keyPaths(pipelineSchema);
  assert.ok(paths.includes("source.connector"));
  assert.ok(paths.includes("sinks[].connector"));
  assert.ok(paths.includes("filter"));
});
