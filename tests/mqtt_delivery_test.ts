/**
 * MQTT delivery guarantees through the real CLI against real mosquitto brokers: a persistent
 * session keeps QoS 1 messages while Sluice is killed, receiving resumes after broker restarts
 * (with and without the session), and a QoS 1 message is not acknowledged before its sink
 * accepted it.
 */
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { configDir } from "../dev/config_dir.ts";
import { collect, testClient } from "../dev/mqtt_client.ts";
import { Mosquitto } from "../dev/mosquitto.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { Collector, pollUntil } from "../dev/wait.ts";

interface Snapshot {
  connectors: { name: string; state: string; reconnects: number }[];
  pipelines: { name: string; "in_flight": number; counters: { in: number } }[];
}

async function nats(server: NatsServer): Promise<NatsConnection & AsyncDisposable> {
  const nc = await connect({ servers: server.url });
  return Object.assign(nc, { [Symbol.asyncDispose]: () => nc.close() });
}

function natsCollect(nc: NatsConnection, subject: string): Collector<Msg> {
  const c = new Collector<Msg>();
  nc.subscribe(subject, { callback: (_e, m) => c.push(m) });
  return c;
}

/** Starts Sluice with health on a free port; returns it with the health URL. */
async function startSluice(file: string): Promise<{ sluice: SluiceProcess; url: string }> {
  const sluice = SluiceProcess.start(["run", "--log-format", "json", file]);
  const health = await sluice.waitForMsg("health listening");
  await sluice.waitForMsg("started");
  return { sluice, url: String(health.url) };
}

async function status(url: string): Promise<Snapshot> {
  const r = await fetch(`${url}/status`);
  return await r.json() as Snapshot;
}

async function readyz(url: string): Promise<number> {
  const r = await fetch(`${url}/readyz`);
  await r.body?.cancel();
  return r.status;
}

function gatewayConfig(mqttUrl: string, natsUrl: string): string {
  return `connectors:
  devices:
    type: mqtt
    url: ${mqttUrl}
    client_id: gw-delivery-test
    reconnect: { wait: 100ms, jitter: 50ms }
  uplink:
    type: nats
    servers: ${natsUrl}
pipelines:
  readings:
    source: { connector: devices, topic: "sensors/#", qos: 1 }
    sinks: [{ connector: uplink, subject: "up.{_tokens[1]}" }]
health:
  listen: 127.0.0.1:0
`;
}

/** Counts deliveries per id, so loss and duplicates are both visible. */
function countIds(msgs: readonly Msg[]): Map<number, number> {
  const seen = new Map<number, number>();
  for (const m of msgs) {
    const id = (m.json() as { id: number }).id;
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return seen;
}

Deno.test("QoS 1 messages published while Sluice is SIGKILLed all arrive after its restart", async () => {
  await using broker = await Mosquitto.start();
  await using server = await NatsServer.start();
  await using nc = await nats(server);
  const up = natsCollect(nc, "up.>");
  await nc.flush();
  await using cfg = await configDir(gatewayConfig(broker.url, server.url));
  await using device = await testClient(broker.url);

  const first = await startSluice(cfg.file);
  await using sluice1 = first.sluice;
  for (let id = 0; id < 50; id++) {
    await device.publishAsync(`sensors/d${id % 5}`, JSON.stringify({ id }), { qos: 1 });
  }
  // A core NATS sink counts an event as accepted once its client has it, so the kill waits for
  // the uplink to have everything (the mid-stream kill is tested with a QoS 1 sink below).
  await up.waitForCount(50, 10_000, "the readings before the kill");
  sluice1.signal("SIGKILL");
  assert.equal((await sluice1.status).signal, "SIGKILL");

  // Published while Sluice is gone: the broker queues them in its session.
  for (let id = 50; id < 150; id++) {
    await device.publishAsync(`sensors/d${id % 5}`, JSON.stringify({ id }), { qos: 1 });
  }

  const second = await startSluice(cfg.file);
  await using sluice2 = second.sluice;
  await up.waitFor(() => countIds(up.items).size === 150, 20_000, "all 150 ids on the uplink");
  const seen = countIds(up.items);
  for (let id = 0; id < 150; id++) {
    assert.equal(seen.get(id), 1, `id ${id} arrived ${seen.get(id) ?? 0} times`);
  }
  sluice2.signal("SIGTERM");
  assert.equal((await sluice2.status).code, 0);
});

Deno.test("SIGKILL in the middle of a QoS 1 stream to a QoS 1 sink: nothing lost, duplicates counted", async () => {
  await using devices = await Mosquitto.start();
  await using cloud = await Mosquitto.start();
  await using cfg = await configDir(`connectors:
  devices:
    type: mqtt
    url: ${devices.url}
    client_id: gw-midstream
    reconnect: { wait: 100ms, jitter: 50ms }
  cloud:
    type: mqtt
    url: ${cloud.url}
    client_id: gw-midstream-cloud
pipelines:
  forward:
    source: { connector: devices, topic: "sensors/+", qos: 1 }
    sinks: [{ connector: cloud, topic: "cloud/{_tokens[1]}", qos: 1 }]
health:
  listen: 127.0.0.1:0
`);
  await using watcher = await testClient(cloud.url);
  const got = await collect(watcher, "cloud/#");
  await using device = await testClient(devices.url);
  const first = await startSluice(cfg.file);
  await using sluice1 = first.sluice;
  const total = 400;
  const publishing = (async () => {
    for (let id = 0; id < total; id++) {
      await device.publishAsync(`sensors/d${id % 7}`, JSON.stringify({ id }), { qos: 1 });
    }
  })();
  await got.waitForCount(40, 10_000, "some messages at the sink");
  sluice1.signal("SIGKILL");
  await sluice1.status;
  await publishing;
  const second = await startSluice(cfg.file);
  await using sluice2 = second.sluice;
  const ids = () => new Set(got.items.map((m) => (JSON.parse(m.payload) as { id: number }).id));
  await got.waitFor(() => ids().size === total, 20_000, `all ${total} ids at the sink`);
  const duplicates = got.items.length - total;
  // deno-lint-ignore no-console -- the count is reported, not asserted (at least once)
  console.log(`mid-stream SIGKILL: ${total} ids, ${duplicates} duplicates`);
  sluice2.signal("SIGTERM");
  assert.equal((await sluice2.status).code, 0);
});

for (const persistence of [true, false]) {
  Deno.test(`broker restart ${persistence ? "with" : "without"} persistence: receiving resumes, /readyz 503 while it is down`, async () => {
    await using broker = await Mosquitto.start({ persistence });
    await using server = await NatsServer.start();
    await using nc = await nats(server);
    const up = natsCollect(nc, "up.>");
    await nc.flush();
    await using cfg = await configDir(gatewayConfig(broker.url, server.url));
    const { sluice: s, url } = await startSluice(cfg.file);
    await using sluice = s;
    {
      await using device = await testClient(broker.url);
      await device.publishAsync("sensors/a", '{"id":1}', { qos: 1 });
      await up.waitForCount(1, 10_000, "a reading before the restart");
    }
    assert.equal(await readyz(url), 200);

    await broker.stop();
    await sluice.waitForMsg("connector disconnected");
    await pollUntil(async () => (await readyz(url)) === 503 || undefined, 10_000, "readyz 503");
    const down = await status(url);
    assert.notEqual(down.connectors.find((c) => c.name === "devices")?.state, "connected");

    await broker.resume();
    const back = await sluice.waitForLog(
      (r) => r.msg === "connector reconnected" && r.connector === "devices",
      15_000,
      "the mqtt connector to reconnect",
    );
    assert.equal(back.session_present, persistence);
    if (!persistence) {
      await sluice.waitForMsg("broker has no session for this client: subscribing again");
    }
    await pollUntil(async () => (await readyz(url)) === 200 || undefined, 10_000, "readyz 200");

    // Receiving resumes. Without the session the subscription is made again asynchronously:
    // publish until one arrives rather than guess when the SUBACK came.
    await using device = await testClient(broker.url);
    await pollUntil(
      async () => {
        await device.publishAsync("sensors/b", '{"id":2}', { qos: 1 });
        return up.items.some((m) => m.subject === "up.b") || undefined;
      },
      15_000,
      "a reading after the restart",
      200,
    );
    const after = await status(url);
    assert.equal(after.connectors.find((c) => c.name === "devices")?.reconnects, 1);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /sluice_connector_reconnects_total\{[^}]*connector="devices"[^}]*\} 1/);
    assert.match(
      metrics,
      /sluice_connector_messages_in_total\{[^}]*connector="devices"[^}]*\} [1-9]/,
    );
    sluice.signal("SIGTERM");
    assert.equal((await sluice.status).code, 0);
  });
}

Deno.test("a QoS 1 message is not acknowledged before its slow sink accepted it", async () => {
  await using devices = await Mosquitto.start();
  await using cloud = await Mosquitto.start();
  await using cfg = await configDir(`connectors:
  devices:
    type: mqtt
    url: ${devices.url}
    client_id: gw-slow-sink
    reconnect: { wait: 100ms, jitter: 50ms }
  cloud:
    type: mqtt
    url: ${cloud.url}
    client_id: gw-slow-sink-cloud
    reconnect: { wait: 100ms, jitter: 50ms }
pipelines:
  forward:
    source: { connector: devices, topic: "sensors/+", qos: 1 }
    sinks: [{ connector: cloud, topic: "cloud/{_tokens[1]}", qos: 1 }]
health:
  listen: 127.0.0.1:0
`);
  const { sluice: s, url } = await startSluice(cfg.file);
  await using sluice1 = s;
  // The sink's broker goes away: its QoS 1 publishes wait for a PUBACK that cannot come.
  await cloud.stop();
  await sluice1.waitForLog((r) => r.msg === "connector disconnected" && r.connector === "cloud");
  {
    await using device = await testClient(devices.url);
    for (let id = 1; id <= 3; id++) {
      await device.publishAsync(`sensors/s${id}`, JSON.stringify({ id }), { qos: 1 });
    }
  }
  // All three are held: received, handed to the sink, not acknowledged to the devices broker.
  await pollUntil(
    async () => (await status(url)).pipelines[0]?.in_flight === 3 || undefined,
    10_000,
    "3 messages in flight",
  );
  // If they had been acknowledged, this stop would lose them: the sink holds them in memory only.
  // A graceful stop does not wait for them forever.
  sluice1.signal("SIGTERM");
  await sluice1.waitForMsg(
    "stopping with messages not yet acknowledged; the broker delivers them again",
    30_000,
  );
  assert.equal((await sluice1.status).code, 0);

  await cloud.resume();
  await using watcher = await testClient(cloud.url);
  const got = await collect(watcher, "cloud/#");
  const second = await startSluice(cfg.file);
  await using sluice2 = second.sluice;
  const msgs = await got.waitForCount(3, 15_000, "the three held messages at the sink");
  assert.deepEqual(msgs.map((m) => m.topic).sort(), ["cloud/s1", "cloud/s2", "cloud/s3"]);
  await pollUntil(
    async () => (await status(second.url)).pipelines[0]?.in_flight === 0 || undefined,
    10_000,
    "nothing in flight",
  );
  sluice2.signal("SIGTERM");
  assert.equal((await sluice2.status).code, 0);
});

Deno.test("a sink failure keeps the PUBACK held and hands the message over again until it is accepted", async () => {
  await using broker = await Mosquitto.start();
  // A JetStream sink whose stream does not exist yet: every send fails until it is created.
  await using uplink = await NatsServer.start({ jetstream: true });
  await using cfg = await configDir(`connectors:
  devices:
    type: mqtt
    url: ${broker.url}
    client_id: gw-retry
  uplink:
    type: nats
    servers: ${uplink.url}
pipelines:
  readings:
    source: { connector: devices, topic: "sensors/+", qos: 1 }
    sinks:
      - connector: uplink
        subject: "up.{_tokens[1]}"
        jetstream: { timeout: 500ms, retries: 0 }
health:
  listen: 127.0.0.1:0
`);
  const { sluice: s, url } = await startSluice(cfg.file);
  await using sluice = s;
  {
    await using device = await testClient(broker.url);
    await device.publishAsync("sensors/r1", '{"id":1}', { qos: 1 });
  }
  await sluice.waitForLog((r) =>
    r.msg === "event rejected" && /redelivered/.test(String(r.reason))
  );
  assert.equal((await status(url)).pipelines[0]?.in_flight, 1);
  await using nc = await nats(uplink);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "UP", subjects: ["up.>"] });
  await pollUntil(
    async () => (await jsm.streams.info("UP")).state.messages === 1 || undefined,
    20_000,
    "the retried reading in the stream",
    100,
  );
  await pollUntil(
    async () => (await status(url)).pipelines[0]?.in_flight === 0 || undefined,
    10_000,
    "the message settled",
  );
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});

Deno.test("held QoS 1 messages are bounded by max_in_flight: the broker keeps the rest", async () => {
  await using devices = await Mosquitto.start();
  await using cloud = await Mosquitto.start({ persistence: true });
  await using cfg = await configDir(`connectors:
  devices:
    type: mqtt
    url: ${devices.url}
    client_id: gw-bounded
    max_in_flight: 2
  cloud:
    type: mqtt
    url: ${cloud.url}
    client_id: gw-bounded-cloud
    reconnect: { wait: 100ms, jitter: 50ms }
pipelines:
  forward:
    source: { connector: devices, topic: "sensors/+", qos: 1 }
    sinks: [{ connector: cloud, topic: "cloud/{_tokens[1]}", qos: 1 }]
health:
  listen: 127.0.0.1:0
`);
  const { sluice: s, url } = await startSluice(cfg.file);
  await using sluice = s;
  await using watcher = await testClient(cloud.url, {
    clientId: "bounded-watcher",
    clean: false,
    reconnectPeriod: 100,
    properties: { sessionExpiryInterval: 600 },
  });
  const got = await collect(watcher, "cloud/#");
  await cloud.stop();
  await sluice.waitForLog((r) => r.msg === "connector disconnected" && r.connector === "cloud");
  {
    await using device = await testClient(devices.url);
    for (let id = 1; id <= 6; id++) {
      await device.publishAsync(`sensors/s${id}`, JSON.stringify({ id }), { qos: 1 });
    }
  }
  const held = await pollUntil(
    async () => {
      const p = (await status(url)).pipelines[0];
      return p?.in_flight === 2 ? p : undefined;
    },
    10_000,
    "2 messages in flight",
  );
  // The broker sent no third one: it waits for a PUBACK (MQTT 5 Receive Maximum).
  assert.equal(held.counters.in, 2);
  await cloud.resume();
  const msgs = await got.waitForCount(6, 20_000, "all six at the sink");
  assert.deepEqual(msgs.map((m) => m.topic).sort(), [1, 2, 3, 4, 5, 6].map((i) => `cloud/s${i}`));
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});
