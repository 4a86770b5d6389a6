/**
 * Processor state over a reload of the real CLI (SIGHUP): a pipeline that a reload leaves
 * unchanged keeps its dedupe state, and one restarted only because its connector changed takes
 * its processors along (dedupe still suppresses, a window keeps its open window).
 */
import assert from "node:assert/strict";
import type { LogRecord, SluiceProcess } from "../dev/sluice_process.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { configDir } from "../dev/config_dir.ts";
import { client, collect, connector, startSluice } from "./_processors_e2e.ts";

const DEDUPE = `
  by-exception:
    source: { connector: local, subject: temps.> }
    processors:
      - dedupe: { key: _subject, value: t }
    sinks: [{ connector: local, subject: out.temps }]
`;

const WINDOW = `
  hourly:
    source: { connector: local, subject: meters.> }
    processors:
      - window: { size: 1h, aggregates: { n: { count: true } } }
    sinks: [{ connector: local, subject: out.hourly }]
`;

function other(filter: string): string {
  return `
  other:
    source: { connector: local, subject: other.> }
    filter: ${filter}
    sinks: [{ connector: local, subject: out.other }]
`;
}

function reloaded(sluice: SluiceProcess): Promise<LogRecord> {
  return sluice.waitForMsg("reloaded");
}

Deno.test("SIGHUP that changes another pipeline keeps dedupe's state: a repeat is still suppressed", async () => {
  await using server = await NatsServer.start();
  const base = connector(server.url) + "pipelines:" + DEDUPE;
  await using cfg = await configDir(base + other("x > 1"));
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const out = collect(nc, "out.temps");
  await nc.flush();
  nc.publish("temps.a", '{"t":20}');
  await out.waitForCount(1, 10_000, "the first reading");

  await Deno.writeTextFile(cfg.file, base + other("x > 2"));
  sluice.signal("SIGHUP");
  const r = await reloaded(sluice);
  assert.deepEqual(r.stopped, ["other"]);
  assert.deepEqual(r.started, ["other"]);

  nc.publish("temps.a", '{"t":20}'); // a repeat: suppressed only if the state survived
  nc.publish("temps.a", '{"t":21}');
  await out.waitForCount(2, 10_000, "the changed reading");
  assert.deepEqual(out.items.map((m) => m.string()), ['{"t":20}', '{"t":21}']);
});

Deno.test("SIGHUP that replaces the connector restarts pipelines with their processors' state", async () => {
  await using server = await NatsServer.start();
  const pipelines = "pipelines:" + DEDUPE + WINDOW;
  await using cfg = await configDir(connector(server.url) + pipelines);
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const temps = collect(nc, "out.temps");
  const hourly = collect(nc, "out.hourly");
  await nc.flush();
  nc.publish("temps.a", '{"t":20}');
  nc.publish("meters.a", '{"kwh":1}');
  nc.publish("meters.a", '{"kwh":2}');
  await temps.waitForCount(1, 10_000, "the first reading");

  await Deno.writeTextFile(cfg.file, connector(server.url, "sluice-renamed") + pipelines);
  sluice.signal("SIGHUP");
  const r = await reloaded(sluice);
  assert.deepEqual(r.connectors_replaced, ["local"]);
  assert.deepEqual([...(r.started as string[])].sort(), ["by-exception", "hourly"]);
  assert.equal(hourly.items.length, 0, "no partial window on a restart that keeps the chain");

  nc.publish("temps.a", '{"t":20}');
  nc.publish("temps.a", '{"t":22}');
  nc.publish("meters.a", '{"kwh":3}');
  await temps.waitForCount(2, 10_000, "the changed reading");
  assert.deepEqual(temps.items.map((m) => m.string()), ['{"t":20}', '{"t":22}']);

  assert.equal((await sluice.stop()).code, 0);
  const [window] = await hourly.waitForCount(1, 10_000, "the partial window");
  const w = window!.json<Record<string, unknown>>();
  assert.equal(w.partial, true);
  assert.equal(w.n, 3, "the events before and after the reload");
});
