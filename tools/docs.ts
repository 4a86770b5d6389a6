/**
 * `deno task docs`: writes the generated documentation: `docs/reference.md` and
 * `docs/sluice.schema.json` from the zod schemas, `docs/counters.md` from the counter
 * declarations. `--check` writes nothing and exits 1 when a file differs from what the code
 * generates (what `tests/docs_test.ts` asserts).
 *
 * @module
 */
import { configJsonSchemaText } from "../src/cli/schema.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { renderCounters } from "./counters_doc.ts";
import { renderReference } from "./reference.ts";

/** The generated files, relative to the repository root, with their expected text. */
export function generatedFiles(): { path: string; text: string }[] {
  const registry = builtinRegistry();
  return [
    { path: "docs/reference.md", text: renderReference(registry) },
    { path: "docs/sluice.schema.json", text: configJsonSchemaText(registry) },
    { path: "docs/counters.md", text: renderCounters() },
  ];
}

const say = (line: string) => Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));

if (import.meta.main) {
  const root = new URL("..", import.meta.url);
  const check = Deno.args.includes("--check");
  let stale = 0;
  for (const { path, text } of generatedFiles()) {
    const url = new URL(path, root);
    const current = await Deno.readTextFile(url).catch(() => undefined);
    if (current === text) continue;
    if (check) {
      stale++;
      say(`${path} is out of date: run deno task docs`);
    } else {
      await Deno.writeTextFile(url, text);
      say(`wrote ${path}`);
    }
  }
  Deno.exit(stale === 0 ? 0 : 1);
}
