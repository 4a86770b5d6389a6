/**
 * Reload tests: SIGHUP and `run --watch` in a real process against a real nats-server.
 */
import assert from "node:assert/strict";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../dev/nats_server.ts";
import { type LogRecord, SluiceProcess } from "../dev/sluice_process.ts";
import { Collector } from "../dev/wait.ts";
import { connectorsOf, isEmptyPlan, planReload } from "../src/engine/reload.ts";
import { loadConfigTexts } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";

function connectors(url: string): string {
  return `connectors:
  local:
    type: nats
    servers: ${url}
    name: sluice-reload
`;
}

function pipeline(name: string, subject: string, filter: string, sink: string): string {
  return `  ${name}:
    source: { connector: local, subject: "${subject}" }
    filter: ${JSON.stringify(filter)}
    sinks: [{ connector: local, subject: ${sink} }]
`;
}

async function sluiceWith(
  yaml: string,
  args: string[] = [],
): Promise<{ sluice: SluiceProcess; file: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-reload-" });
  const file = `${dir}/sluice.yaml`;
  await Deno.writeTextFile(file, yaml);
  const sluice = SluiceProcess.start(["run", "--log-format", "json", ...args, file]);
  await sluice.waitForMsg("started");
  return {
    sluice,
    file,
    async [Symbol.asyncDispose]() {
      await sluice[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function collect(nc: NatsConnection, subject: string): Collector<Msg> {
  const c = new Collector<Msg>();
  nc.subscribe(subject, { callback: (_e, m) => c.push(m) });
  return c;
}

/** Waits for the n-th log record with `msg` (1-based), so repeated reloads are told apart. */
function nth(sluice: SluiceProcess, msg: string, n: number): Promise<LogRecord> {
  let seen = 0;
  return sluice.waitForLog((r) => r.msg === msg && ++seen === n, 15_000, `${msg} #${n}`);
}

async function sluiceCid(server: NatsServer): Promise<number> {
  const ours = (await server.connz()).connections.filter((c) => c.name === "sluice-reload");
  assert.equal(ours.length, 1);
  return ours[0]!.cid;
}

Deno.test("SIGHUP adds, changes and removes pipelines and keeps the connection", async () => {
  await using server = await NatsServer.start();
  const base = connectors(server.url) + "pipelines:\n";
  const hot = pipeline("hot", "sensors.temperature.>", "temperature > 30", "alerts.hot");
  await using run = await sluiceWith(base + hot);
  const nc = await connect({ servers: server.url });
  try {
    const hotOut = collect(nc, "alerts.hot");
    const humidOut = collect(nc, "alerts.humid");
    await nc.flush();
    const cid = await sluiceCid(server);

    // Change the filter and add a pipeline.
    await Deno.writeTextFile(
      run.file,
      base + pipeline("hot", "sensors.temperature.>", "temperature > 40", "alerts.hot") +
        pipeline("humid", "sensors.humidity.>", "humidity > 90", "alerts.humid"),
    );
    run.sluice.signal("SIGHUP");
    const first = await nth(run.sluice, "reloaded", 1);
    assert.deepEqual(first.started, ["hot", "humid"]);
    assert.deepEqual(first.stopped, ["hot"]);
    assert.deepEqual(first.connectors_replaced, []);

    nc.publish("sensors.temperature.a", '{"temperature":35}'); // passed before, not now
    nc.publish("sensors.temperature.a", '{"temperature":45}');
    nc.publish("sensors.humidity.a", '{"humidity":95}');
    await hotOut.waitForCount(1, 10_000, "one hot alert");
    await humidOut.waitForCount(1, 10_000, "one humid alert");
    assert.equal(hotOut.items[0]!.string(), '{"temperature":45}');
    assert.equal(await sluiceCid(server), cid, "same connection after the reload");

    // Remove the added pipeline.
    await Deno.writeTextFile(
      run.file,
      base + pipeline("hot", "sensors.temperature.>", "temperature > 40", "alerts.hot"),
    );
    run.sluice.signal("SIGHUP");
    const second = await nth(run.sluice, "reloaded", 2);
    assert.deepEqual(second.stopped, ["humid"]);
    assert.deepEqual(second.started, []);
    assert.equal(second.kept, 1);
    nc.publish("sensors.humidity.a", '{"humidity":99}');
    nc.publish("sensors.temperature.a", '{"temperature":50}');
    await hotOut.waitForCount(2, 10_000, "the sentinel alert");
    assert.equal(humidOut.items.length, 1, "the removed pipeline routes nothing");
    assert.equal(await sluiceCid(server), cid, "same connection after the second reload");
  } finally {
    await nc.close();
  }
});

Deno.test("an invalid config on SIGHUP is rejected and the running pipelines go on", async () => {
  await using server = await NatsServer.start();
  const yaml = connectors(server.url) + "pipelines:\n" +
    pipeline("hot", "sensors.temperature.>", "temperature > 30", "alerts.hot");
  await using run = await sluiceWith(yaml);
  const nc = await connect({ servers: server.url });
  try {
    const out = collect(nc, "alerts.hot");
    await nc.flush();
    await Deno.writeTextFile(run.file, yaml.replace("temperature > 30", "temperature >"));
    run.sluice.signal("SIGHUP");
    const rejected = await run.sluice.waitForMsg(
      "reload rejected: the running configuration stays",
    );
    assert.match(String(rejected.errors), /sluice\.yaml:\d+:\d+: pipelines\.hot\.filter/);
    nc.publish("sensors.temperature.a", '{"temperature":35}');
    await out.waitForCount(1, 10_000, "an alert from the old pipeline");
  } finally {
    await nc.close();
  }
});

Deno.test("events delivered before a reload are not lost", async () => {
  await using server = await NatsServer.start();
  const base = connectors(server.url) + "pipelines:\n";
  await using run = await sluiceWith(
    base + pipeline("all", "in.>", "n >= 0", "out.all"),
  );
  const nc = await connect({ servers: server.url });
  try {
    const out = collect(nc, "out.all");
    await nc.flush();
    const total = 10_000;
    for (let i = 0; i < total; i++) nc.publish("in.x", `{"n":${i}}`);
    await nc.flush();
    await Deno.writeTextFile(run.file, base + pipeline("all", "in.>", "n >= -1", "out.all"));
    run.sluice.signal("SIGHUP");
    await nth(run.sluice, "reloaded", 1);
    await out.waitForCount(total, 15_000, "every event delivered before the reload");
    const ids = new Set(out.items.map((m) => (m.json() as { n: number }).n));
    assert.equal(ids.size, total);
  } finally {
    await nc.close();
  }
});

Deno.test("run --watch reloads when a config file changes", async () => {
  await using server = await NatsServer.start();
  const base = connectors(server.url) + "pipelines:\n";
  await using run = await sluiceWith(
    base + pipeline("hot", "sensors.temperature.>", "temperature > 30", "alerts.hot"),
    ["--watch"],
  );
  await run.sluice.waitForMsg("watching config files");
  await Deno.writeTextFile(
    run.file,
    base + pipeline("hot", "sensors.temperature.>", "temperature > 40", "alerts.hot"),
  );
  const reloaded = await nth(run.sluice, "reloaded", 1);
  assert.equal(reloaded.changed, true);
  assert.deepEqual(reloaded.started, ["hot"]);
});

function load(yaml: string) {
  return loadConfigTexts([{ path: "x.yaml", text: yaml }], {
    registry: builtinRegistry(),
    env: () => undefined,
  });
}

const TWO = `connectors:
  a: { type: nats, servers: "nats://127.0.0.1:1" }
  b: { type: nats, servers: "nats://127.0.0.1:2" }
pipelines:
  p1:
    source: { connector: a, subject: x }
    sinks: [{ connector: a, subject: y }]
  p2:
    source: { connector: a, subject: x }
    sinks: [{ connector: b, subject: y }]
`;

Deno.test("planReload() keeps everything when nothing changed", () => {
  const plan = planReload(load(TWO), load(TWO));
  assert.ok(isEmptyPlan(plan));
  assert.deepEqual(plan.keepPipelines, ["p1", "p2"]);
});

Deno.test("planReload() restarts the pipelines on a changed connector only", () => {
  const plan = planReload(load(TWO), load(TWO.replace("127.0.0.1:2", "127.0.0.1:3")));
  assert.deepEqual(plan.replaceConnectors, ["b"]);
  assert.deepEqual(plan.stopPipelines, ["p2"]);
  assert.deepEqual(plan.startPipelines, ["p2"]);
  assert.deepEqual(plan.keepPipelines, ["p1"]);
});

Deno.test("planReload() sees added and removed connectors and pipelines", () => {
  const next = load(
    TWO.replace(/ {2}b: .*\n/, "  c: { type: nats }\n").replace(
      / {2}p2:[\s\S]*$/,
      "  p3:\n    source: { connector: c, subject: x }\n    sinks: [{ connector: c, subject: y }]\n",
    ),
  );
  const plan = planReload(load(TWO), next);
  assert.deepEqual(plan.addConnectors, ["c"]);
  assert.deepEqual(plan.removeConnectors, ["b"]);
  assert.deepEqual(plan.stopPipelines, ["p2"]);
  assert.deepEqual(plan.startPipelines, ["p3"]);
});

Deno.test("connectorsOf() lists source, sink and dead-letter connectors once", () => {
  const cfg = load(TWO.replace(
    "sinks: [{ connector: b, subject: y }]",
    "sinks: [{ connector: b, subject: y }, { connector: a, subject: z }]\n    dead_letter: { connector: b, subject: d }",
  ));
  assert.deepEqual(connectorsOf(cfg.pipelines.get("p2")!), ["a", "b"]);
});

Deno.test("health shows reload counts and where the last rejected config failed, not its values", async () => {
  await using server = await NatsServer.start();
  const yaml = connectors(server.url) + "health: { listen: 127.0.0.1:0 }\npipelines:\n" +
    pipeline("hot", "sensors.temperature.>", "temperature > 30", "alerts.hot");
  await using run = await sluiceWith(yaml);
  const { url } = await run.sluice.waitForMsg("health listening");
  // A secret in a wrong place: neither the log nor health may echo it.
  await Deno.writeTextFile(
    run.file,
    yaml.replace(
      "    name: sluice-reload\n",
      "    name: sluice-reload\n    auth: s3cr3t-token-value\n",
    ),
  );
  run.sluice.signal("SIGHUP");
  const rejected = await run.sluice.waitForMsg("reload rejected: the running configuration stays");
  assert.match(String(rejected.errors), /connectors\.local\.auth: expected a map, got a string/);
  assert.doesNotMatch(run.sluice.stderr(), /s3cr3t/);
  const status = await (await fetch(`${url}/status`)).json();
  assert.equal(status.reloads.rejected, 1);
  assert.match(
    status.reloads.last_error,
    /^1 configuration error; first at .*sluice\.yaml:\d+:\d+: connectors\.local\.auth/,
  );
  assert.doesNotMatch(JSON.stringify(status), /s3cr3t/);
});
