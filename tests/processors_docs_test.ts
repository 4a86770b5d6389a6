/**
 * docs/processors.md must describe every registered processor kind and every key of its
 * settings, and its examples must compile, so the reference cannot fall behind the code.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { keyPaths } from "../src/config/keys.ts";
import { compileChain } from "../src/processors/chain.ts";
import { builtinProcessors } from "../src/processors/mod.ts";

const doc = await Deno.readTextFile(new URL("../docs/processors.md", import.meta.url));

Deno.test("docs/processors.md has a section per processor kind naming each of its settings", () => {
  for (const kind of builtinProcessors().kinds()) {
    const start = doc.indexOf("## `" + kind.kind + "`");
    assert.ok(start >= 0, `a section for ${kind.kind}`);
    const end = doc.indexOf("\n## ", start + 1);
    const section = doc.slice(start, end < 0 ? undefined : end);
    const missing = keyPaths(kind.schema).filter((k) => !section.includes("`" + k + "`"));
    assert.deepEqual(missing, [], `settings of ${kind.kind} in its section`);
  }
  assert.ok(doc.includes("## Per-sink `when`"));
});

Deno.test("the processor examples of docs/processors.md compile", () => {
  const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  let chains = 0;
  for (const block of blocks) {
    const value = parse(block) as Record<string, unknown>;
    const lists = "processors" in value
      ? [value.processors]
      : Object.values((value.pipelines ?? {}) as Record<string, { processors?: unknown }>)
        .map((p) => p.processors);
    for (const list of lists.filter((l) => l !== undefined)) {
      const { problems } = compileChain(builtinProcessors(), undefined, list, {});
      assert.deepEqual(problems, [], block);
      chains++;
    }
  }
  assert.ok(chains >= 9, `examples found: ${chains}`);
});
