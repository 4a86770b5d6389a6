/**
 * The processor chain through the real CLI against a real nats-server: reshaped events leave as
 * compact JSON while unchanged ones keep their bytes, per-sink `when` routes, an evaluation error
 * is dead-lettered naming the processor, and counters keep counting across a reload.
 */
import assert from "node:assert/strict";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { configDir } from "../dev/config_dir.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { Collector } from "../dev/wait.ts";

function connector(url: string): string {
  return `connectors:
  local:
    type: nats
    servers: ${url}
    reconnect: { wait: 100ms, jitter: 50ms }
`;
}

function collect(nc: NatsConnection, subject: string): Collector<Msg> {
  const c = new Collector<Msg>();
  nc.subscribe(subject, { callback: (_err, msg) => c.push(msg) });
  return c;
}

const METERS = `
pipelines:
  meters:
    source: { connector: local, subject: meters.> }
    filter: kwh >= 0
    processors:
      - map:
          kw: kwh * 4.0
          site: _tokens[1]
      - drop: [debug]
      - rename: { kwh: energy }
    sinks:
      - { connector: local, subject: "uplink.{site}", when: kw > 10 }
      - { connector: local, subject: all.meters }
    dead_letter: { connector: local, subject: dlq.meters }
  passthrough:
    source: { connector: local, subject: raw.> }
    processors:
      - drop: [debug]
    sinks: [{ connector: local, subject: raw-out }]
`;

Deno.test("sluice run reshapes events, routes by when, and names the failing processor", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(connector(server.url) + METERS);
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  await sluice.waitForMsg("started");
  const nc = await connect({ servers: server.url });
  try {
    const uplink = collect(nc, "uplink.>");
    const all = collect(nc, "all.meters");
    const dlq = collect(nc, "dlq.meters");
    const raw = collect(nc, "raw-out");
    await nc.flush();

    nc.publish("meters.oslo.m1", '{"kwh": 3, "debug": true}');
    nc.publish("meters.bergen.m2", '{"kwh": 2}');
    nc.publish("meters.oslo.m3", '{"kwh": -1}');
    nc.publish("meters.oslo.m4", '{"kwh": "x"}');
    // Odd spacing proves an event no processor changed is forwarded as its bytes.
    nc.publish("raw.a", '{ "v" :1 }');
    nc.publish("raw.b", '{"v":2,"debug":1}');

    await all.waitForCount(2, 10_000, "both valid meter events on the all sink");
    await uplink.waitForCount(1, 10_000, "the one event with kw > 10");
    await dlq.waitForCount(1, 10_000, "the event whose filter failed");
    await raw.waitForCount(2, 10_000, "both raw events");

    assert.deepEqual(all.items.map((m) => m.string()), [
      '{"kw":12,"site":"oslo","energy":3}',
      '{"kw":8,"site":"bergen","energy":2}',
    ]);
    assert.equal(uplink.items[0]!.subject, "uplink.oslo");
    assert.equal(uplink.items[0]!.string(), '{"kw":12,"site":"oslo","energy":3}');
    assert.equal(
      dlq.items[0]!.string(),
      '{"kwh": "x"}',
      "the dead letter carries the original bytes",
    );
    assert.match(dlq.items[0]!.headers?.get("Sluice-Error") ?? "", /^filter failed/);
    assert.deepEqual(raw.items.map((m) => m.string()), ['{ "v" :1 }', '{"v":2}']);
  } finally {
    await nc.close();
  }
  assert.equal((await sluice.stop()).code, 0);
});

Deno.test("an evaluation error in a processor is dead-lettered with the processor named", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connector(server.url) + `
pipelines:
  meters:
    source: { connector: local, subject: meters.> }
    processors:
      - filter: has(event.kwh)
      - map: { kw: kwh * 4.0 }
    sinks: [{ connector: local, subject: out }]
    dead_letter: { connector: local, subject: dlq }
`,
  );
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  await sluice.waitForMsg("started");
  const nc = await connect({ servers: server.url });
  try {
    const dlq = collect(nc, "dlq");
    const out = collect(nc, "out");
    await nc.flush();
    nc.publish("meters.a", '{"kwh": "lots"}');
    nc.publish("meters.b", '{"kwh": 1}');
    await dlq.waitForCount(1, 10_000, "the dead letter");
    await out.waitForCount(1, 10_000, "the good event");
    assert.match(dlq.items[0]!.headers?.get("Sluice-Error") ?? "", /^processors\[1\] map: /);
    assert.equal(dlq.items[0]!.headers?.get("Sluice-Subject"), "meters.a");
  } finally {
    await nc.close();
  }
  await sluice.stop();
  const summary = await sluice.waitForMsg("pipeline summary");
  assert.deepEqual([summary.in, summary.passed, summary.dead_lettered, summary.errors], [
    2,
    1,
    1,
    1,
  ]);
});

Deno.test("counters keep counting when a reload restarts a changed pipeline", async () => {
  await using server = await NatsServer.start();
  const yaml = (limit: number) =>
    connector(server.url) + `
pipelines:
  p:
    source: { connector: local, subject: in.> }
    filter: n > ${limit}
    sinks: [{ connector: local, subject: out }]
`;
  await using cfg = await configDir(yaml(0));
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  await sluice.waitForMsg("started");
  const nc = await connect({ servers: server.url });
  try {
    const out = collect(nc, "out");
    await nc.flush();
    for (let n = 1; n <= 3; n++) nc.publish("in.a", `{"n":${n}}`);
    await out.waitForCount(3, 10_000, "three events before the reload");
    await Deno.writeTextFile(cfg.file, yaml(-1));
    sluice.signal("SIGHUP");
    const reloaded = await sluice.waitForMsg("reloaded");
    assert.deepEqual(reloaded.started, ["p"]);
    for (let n = 4; n <= 5; n++) nc.publish("in.a", `{"n":${n}}`);
    await out.waitForCount(5, 10_000, "two more after the reload");
  } finally {
    await nc.close();
  }
  await sluice.stop();
  const summary = await sluice.waitForMsg("pipeline summary");
  assert.deepEqual([summary.in, summary.passed], [5, 5], "totals over the whole process");
});
