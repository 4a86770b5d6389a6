// The bounds that keep one event from stalling the process, through the configuration and the
// real CLI against a real nats-server: `max_event_size` dead-letters an oversized event before it
// is decoded, `matches` is linear, and health and other events keep going meanwhile.
import assert from "node:assert/strict";
import { loadConfigTexts } from "../src/config/load.ts";
import { DEFAULT_MAX_EVENT_SIZE } from "../src/config/schema.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { ConfigErrors } from "../src/errors.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { Collector, withTimeout } from "../dev/wait.ts";
import { client, collectIds, configDir, natsConnector } from "./_delivery.ts";

const enc = new TextEncoder();

function pipelineConfig(extra: string): string {
  return `connectors:
  local: { type: nats, servers: nats://127.0.0.1:4222 }
pipelines:
  p:
    source: { connector: local, subject: ev.> }
    sinks: [{ connector: local, subject: out }]
${extra}`;
}

function load(text: string) {
  return loadConfigTexts([{ path: "p.yaml", text }], {
    registry: builtinRegistry(),
    env: () => undefined,
  });
}

Deno.test("max_event_size defaults to 1 MiB and takes a size", () => {
  assert.equal(load(pipelineConfig("")).pipelines.get("p")?.maxEventSize, DEFAULT_MAX_EVENT_SIZE);
  assert.equal(DEFAULT_MAX_EVENT_SIZE, 1024 * 1024);
  const custom = load(pipelineConfig("    max_event_size: 64KiB\n"));
  assert.equal(custom.pipelines.get("p")?.maxEventSize, 64 * 1024);
});

Deno.test("an invalid max_event_size is a config error at its line", () => {
  try {
    load(pipelineConfig("    max_event_size: lots\n"));
    assert.fail("expected a config error");
  } catch (e) {
    assert.ok(e instanceof ConfigErrors, String(e));
    assert.match(e.message, /p\.yaml:7:\d+: pipelines\.p\.max_event_size: invalid size "lots"/);
  }
});

Deno.test("a filter whose cost grows with the square of the event is a config error", () => {
  try {
    load(pipelineConfig("    filter: items.exists(a, items.exists(b, a == b))\n"));
    assert.fail("expected a config error");
  } catch (e) {
    assert.ok(e instanceof ConfigErrors, String(e));
    assert.match(e.message, /p\.yaml:7:\d+: pipelines\.p\.filter: .*square of the event size/);
  }
});

Deno.test("a pathological event is dead-lettered or filtered quickly; health and other events go on", async () => {
  await using local = await NatsServer.start();
  await using cfg = await configDir(`connectors:
${natsConnector("local", local.url)}
pipelines:
  names:
    source: { connector: local, subject: ev.> }
    filter: 'event.name.matches("^(a+)+$")'
    max_event_size: 8KiB
    sinks: [{ connector: local, subject: out.names }]
    dead_letter: { connector: local, subject: dlq.names }
health:
  listen: 127.0.0.1:0
`);
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  const listening = await sluice.waitForMsg("health listening", 30_000);
  const url = String(listening.url);
  await sluice.waitForMsg("started", 30_000);
  await using nc = await client(local);
  const out = await collectIds(nc, "out.>");
  const dead = new Collector<{ id: unknown; error: string | undefined }>();
  nc.subscribe("dlq.>", {
    callback: (_err, msg) => {
      const id = (JSON.parse(new TextDecoder().decode(msg.data)) as { id?: unknown }).id;
      dead.push({ id, error: msg.headers?.get("Sluice-Error") });
    },
  });
  await nc.flush();

  const send = (event: Record<string, unknown>) => nc.publish("ev.a", JSON.stringify(event));
  send({ id: "first", name: "aaa" });
  // A backtracking engine needs ~2^40 steps on this name; RE2 reads it once.
  send({ id: "evil", name: "a".repeat(40) + "!" });
  // Over max_event_size: refused before it is decoded or evaluated.
  nc.publish("ev.a", enc.encode(JSON.stringify({ id: "huge", name: "a", pad: "x".repeat(9000) })));
  // A `constructor` key no longer makes `event.name` unreadable.
  send({ id: "ctor", name: "aaaa", constructor: { x: 1 } });
  await nc.flush();
  const health = await withTimeout(fetch(`${url}/status`), 10_000, "/status to answer");
  assert.equal(health.status, 200);
  await health.body?.cancel();
  send({ id: "last", name: "a" });
  await nc.flush();

  await out.waitForIds(3, 20_000, "the three matching events");
  assert.deepEqual([...out.ids].sort(), ["ctor", "first", "last"]);
  const [letter] = await dead.waitForCount(1, 10_000, "the dead letter");
  assert.equal(letter?.id, "huge");
  assert.match(letter?.error ?? "", /^event of \d+ bytes exceeds max_event_size \(8192 bytes\)$/);
  const stopped = await sluice.stop();
  assert.equal(stopped.code, 0);
  const summary = sluice.records.find((r) => r.msg === "pipeline summary");
  assert.equal(summary?.in, 5);
  assert.equal(summary?.dead_lettered, 1);
  assert.equal(summary?.filtered, 1); // "evil"
  assert.equal(summary?.errors, 1); // "huge", refused before decoding
  assert.equal(summary?.oversized, 1);
});
