// The `health:` config section: defaults, listen address forms, instance names, health over NATS,
// and the errors (declared twice, unknown connector, bad values) with their positions.
import assert from "node:assert/strict";
import type { HealthDecl } from "../src/config/config.ts";
import { type ConfigText, loadConfigTexts, type LoadOptions } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { ConfigErrors } from "../src/errors.ts";

const registry = builtinRegistry();

const BASE = `
connectors:
  local: { type: nats, servers: nats://127.0.0.1:4222 }
pipelines:
  alerts:
    source: { connector: local, subject: a.> }
    sinks: [{ connector: local, subject: b }]
`;

function load(
  files: Readonly<Record<string, string>>,
  options: Partial<LoadOptions> = {},
) {
  const texts: ConfigText[] = Object.entries(files).map(([path, text]) => ({ path, text }));
  return loadConfigTexts(texts, { registry, env: () => undefined, ...options });
}

function health(section: string, options: Partial<LoadOptions> = {}): HealthDecl | undefined {
  return load({ "c.yaml": BASE + section }, { hostname: () => "gw-host", ...options }).health;
}

function errorsOf(
  files: Readonly<Record<string, string>>,
  options: Partial<LoadOptions> = {},
): string[] {
  try {
    load(files, { hostname: () => "gw-host", ...options });
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.toString());
    throw e;
  }
  assert.fail("expected configuration errors");
}

Deno.test("no health section: health is undefined and nothing listens", () => {
  assert.equal(load({ "c.yaml": BASE }).health, undefined);
});

Deno.test("an empty health section listens on 127.0.0.1:9180 as the hostname", () => {
  const h = health("health: {}\n")!;
  assert.deepEqual(h.listen, { hostname: "127.0.0.1", port: 9180 });
  assert.equal(h.instance, "gw-host");
  assert.equal(h.nats, undefined);
  assert.deepEqual(h.location, { file: "c.yaml", line: 8, column: 1 });
});

Deno.test("health.listen: a port alone means loopback; other hosts are written out", () => {
  const listen = (v: string) => health(`health: { listen: ${v} }\n`)?.listen;
  assert.deepEqual(listen('":9180"'), { hostname: "127.0.0.1", port: 9180 });
  assert.deepEqual(listen("9181"), { hostname: "127.0.0.1", port: 9181 });
  assert.deepEqual(listen('"9182"'), { hostname: "127.0.0.1", port: 9182 });
  assert.deepEqual(listen("0.0.0.0:9180"), { hostname: "0.0.0.0", port: 9180 });
  assert.deepEqual(listen('"[::1]:9180"'), { hostname: "::1", port: 9180 });
  assert.deepEqual(listen("localhost:0"), { hostname: "localhost", port: 0 });
  assert.equal(listen("false"), undefined);
});

Deno.test("health.listen: bad ports and hosts are errors at the key", () => {
  for (const bad of ['"127.0.0.1:99999"', '"host:"', '"a b:9180"', '"::1:9180"', "true"]) {
    const errors = errorsOf({ "c.yaml": `${BASE}health:\n  listen: ${bad}\n` });
    assert.equal(errors.length, 1, `${bad}: ${errors}`);
    assert.match(errors[0]!, /^c\.yaml:9:\d+: health\.listen: /, bad);
  }
});

Deno.test("health.instance must be one subject token", () => {
  assert.equal(health("health: { instance: gw-01 }\n")?.instance, "gw-01");
  for (const bad of ['"gw.01"', '"gw 01"', '"gw*"', '""']) {
    const errors = errorsOf({ "c.yaml": `${BASE}health:\n  instance: ${bad}\n` });
    assert.equal(errors.length, 1, bad);
    assert.match(errors[0]!, /^c\.yaml:9:13: health\.instance: expected one subject token/);
  }
});

Deno.test("health.nats: connector and interval (default 10s)", () => {
  const h = health("health:\n  nats: { connector: local }\n")!;
  assert.deepEqual(h.nats, { connector: "local", interval: 10_000 });
  const fast = health("health:\n  nats: { connector: local, interval: 500ms }\n")!;
  assert.equal(fast.nats?.interval, 500);
});

Deno.test("health.nats: an unknown connector is an error naming the declared ones", () => {
  const errors = errorsOf({ "c.yaml": `${BASE}health:\n  nats: { connector: nope }\n` });
  assert.deepEqual(errors, [
    'c.yaml:9:22: health.nats.connector: unknown connector "nope": declared are local',
  ]);
});

Deno.test("health.nats: a too short or malformed interval is an error", () => {
  const short = errorsOf({
    "c.yaml": `${BASE}health:\n  nats: { connector: local, interval: 10ms }\n`,
  });
  assert.match(short[0]!, /health\.nats\.interval: expected an interval of at least 100ms/);
  const bad = errorsOf({
    "c.yaml": `${BASE}health:\n  nats: { connector: local, interval: soon }\n`,
  });
  assert.match(bad[0]!, /health\.nats\.interval: invalid duration "soon"/);
});

Deno.test("health declared in two files is an error naming both places", () => {
  const errors = errorsOf({
    "a.yaml": BASE + "health: { listen: 9180 }\n",
    "b.yaml": "\nhealth:\n  listen: 9181\n",
  });
  assert.deepEqual(errors, ["b.yaml:2:1: health: health is declared twice; first at a.yaml:8:1"]);
});

Deno.test("unknown keys in health are errors with a hint", () => {
  const errors = errorsOf({ "c.yaml": `${BASE}health:\n  listn: 9180\n` });
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /^c\.yaml:9:3: health\.listn: unknown key "listn".*"listen"/);
});

Deno.test("the default instance: the hostname, which must be a token for health over NATS", () => {
  const dotted = { hostname: () => "gw01.example.com" };
  // Without NATS the hostname only labels the snapshot.
  assert.equal(health("health: {}\n", dotted)?.instance, "gw01.example.com");
  const errors = errorsOf(
    { "c.yaml": `${BASE}health:\n  nats: { connector: local }\n` },
    dotted,
  );
  assert.deepEqual(errors, [
    'c.yaml:8:1: health: the hostname "gw01.example.com" is not a valid subject token for sluice.health.<instance>: set health.instance',
  ]);
});

Deno.test("the default instance: an unreadable hostname asks for health.instance", () => {
  const denied = {
    hostname: () => {
      throw new Deno.errors.NotCapable('Requires sys access to "hostname"');
    },
  };
  const errors = errorsOf({ "c.yaml": `${BASE}health: {}\n` }, denied);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /grant --allow-sys=hostname or set health\.instance$/);
  assert.equal(health("health: { instance: gw-1 }\n", denied)?.instance, "gw-1");
});
