/**
 * The effective configuration of a gateway, without a server: local pipelines plus deployed ones
 * validated against the gateway's connectors; a rejected version keeps the running one; a name
 * clash keeps the local pipeline; a deployed outbox goes under state_dir/outbox.
 */
import assert from "node:assert/strict";
import { loadConfigTexts } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { composeConfig } from "../src/fleet/compose.ts";
import type { AppliedPipeline } from "../src/fleet/state.ts";

const registry = builtinRegistry();
const local = loadConfigTexts([{
  path: "gw.yaml",
  text: `connectors:
  local: {type: nats}
fleet: {connector: local, id: gw-1, state_dir: /var/lib/sluice/fleet}
pipelines:
  mine:
    source: {connector: local, subject: in.mine}
    sinks: [{connector: local, subject: out.mine}]
`,
}], { registry });

function deployed(
  name: string,
  revision: number,
  connector = "local",
  extra = "",
): AppliedPipeline {
  return {
    key: `all.${name}`,
    revision,
    text: `pipelines:\n  ${name}:\n    source: {connector: ${connector}, subject: in.${name}}\n` +
      `    sinks: [{connector: ${connector}, subject: out.${name}${extra}}]\n`,
  };
}

Deno.test("composeConfig() adds valid deployed pipelines beside the local ones", () => {
  const c = composeConfig(local, new Map([["d", deployed("d", 3)]]), new Map(), { registry });
  assert.deepEqual([...c.config.pipelines.keys()].sort(), ["d", "mine"]);
  assert.deepEqual(c.outcomes.get("d"), { key: "all.d", revision: 3, outcome: "applied" });
  assert.equal(c.applied.get("d")?.revision, 3);
});

Deno.test("composeConfig() keeps the running version when the new one is invalid here", () => {
  const c = composeConfig(
    local,
    new Map([["d", deployed("d", 4, "nope")]]),
    new Map([["d", deployed("d", 3)]]),
    { registry },
  );
  const o = c.outcomes.get("d");
  assert.equal(o?.outcome, "rejected");
  assert.equal(o?.runningRevision, 3);
  assert.match(
    o?.error ?? "",
    /^all\.d@4:3:\d+: pipelines\.d\.source\.connector: unknown connector "nope"/,
  );
  assert.equal(c.applied.get("d")?.revision, 3);
  assert.ok(c.config.pipelines.has("d"));
});

Deno.test("composeConfig() runs nothing for an invalid pipeline never applied before", () => {
  const c = composeConfig(local, new Map([["d", deployed("d", 4, "nope")]]), new Map(), {
    registry,
  });
  assert.equal(c.outcomes.get("d")?.outcome, "rejected");
  assert.equal(c.outcomes.get("d")?.runningRevision, undefined);
  assert.ok(!c.config.pipelines.has("d"));
});

Deno.test("composeConfig() rejects a deployed pipeline with a local pipeline's name", () => {
  const c = composeConfig(local, new Map([["mine", deployed("mine", 5)]]), new Map(), {
    registry,
  });
  assert.match(
    c.outcomes.get("mine")?.error ?? "",
    /a local pipeline has the name "mine" \(gw\.yaml:5:3\)/,
  );
  assert.equal(c.config.pipelines.get("mine"), local.pipelines.get("mine"));
  assert.equal(c.applied.size, 0);
});

Deno.test("composeConfig() puts a deployed outbox under state_dir/outbox", () => {
  const c = composeConfig(
    local,
    new Map([["b", deployed("b", 6, "local", ", buffer: {path: b.db}")]]),
    new Map(),
    { registry },
  );
  assert.equal(
    c.config.pipelines.get("b")?.sinks[0]?.buffer?.path,
    "/var/lib/sluice/fleet/outbox/b.db",
  );
  const escape = composeConfig(
    local,
    new Map([["b", deployed("b", 7, "local", ", buffer: {path: ../b.db}")]]),
    new Map(),
    { registry },
  );
  assert.match(escape.outcomes.get("b")?.error ?? "", /outbox path is relative/);
});

Deno.test("composeConfig() reads a deployed file without environment", () => {
  const withEnv = deployed("e", 8).text.replace("in.e", "'${HOME}'");
  const c = composeConfig(
    local,
    new Map([["e", { key: "all.e", revision: 8, text: withEnv }]]),
    new Map(),
    { registry },
  );
  assert.match(c.outcomes.get("e")?.error ?? "", /HOME/);
  const withDefault = deployed("e", 9).text.replace("in.e", "'${HOME:-in.default}'");
  const d = composeConfig(
    local,
    new Map([["e", { key: "all.e", revision: 9, text: withDefault }]]),
    new Map(),
    { registry },
  );
  assert.equal(d.outcomes.get("e")?.outcome, "applied");
  assert.deepEqual(d.config.pipelines.get("e")?.source.settings, {
    subject: "in.default",
    format: "json",
  });
});
