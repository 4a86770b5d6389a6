/**
 * The store-and-forward outbox with MQTT: on an MQTT sink while its broker is down, and on a NATS
 * uplink fed by an MQTT source, where a replayed event still renders `{_tokens[N]}` from the MQTT
 * topic's `/` levels.
 */
import assert from "node:assert/strict";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { configDir } from "../dev/config_dir.ts";
import { collect, testClient } from "../dev/mqtt_client.ts";
import { Mosquitto } from "../dev/mosquitto.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { pollUntil } from "../dev/wait.ts";

Deno.test("an outbox on an MQTT sink keeps events while its broker is down and sends them in order", async () => {
  await using server = await NatsServer.start();
  // With persistence the watcher's session queues what Sluice sends before it is back.
  await using broker = await Mosquitto.start({ persistence: true });
  await using cfg = await configDir("");
  await Deno.writeTextFile(
    cfg.file,
    `connectors:
  local:
    type: nats
    servers: ${server.url}
  devices:
    type: mqtt
    url: ${broker.url}
    client_id: gw-outbox-sink
    reconnect: { wait: 100ms, jitter: 50ms }
pipelines:
  commands:
    source: { connector: local, subject: cmd.> }
    sinks:
      - connector: devices
        topic: "act/{_tokens[1]}"
        qos: 1
        buffer: { path: ${JSON.stringify(`${cfg.dir}/outbox.db`)} }
`,
  );
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  await sluice.waitForMsg("started");
  await using watcher = await testClient(broker.url, {
    clientId: "outbox-watcher",
    clean: false,
    reconnectPeriod: 100,
    properties: { sessionExpiryInterval: 600 },
  });
  const got = await collect(watcher, "act/#");
  await broker.stop();
  await sluice.waitForLog((r) => r.msg === "connector disconnected" && r.connector === "devices");
  const nc = await connect({ servers: server.url });
  try {
    for (let i = 0; i < 20; i++) nc.publish(`cmd.v${i % 3}`, JSON.stringify({ i }));
    await nc.flush();
    await sluice.waitForMsg("sink unavailable, keeping events in the outbox");
    await broker.resume();
    const msgs = await got.waitForCount(20, 15_000, "the 20 stored events");
    assert.deepEqual(
      msgs.map((m) => (JSON.parse(m.payload) as { i: number }).i),
      [...Array(20).keys()],
    );
    assert.equal(msgs[4]?.topic, "act/v1");
  } finally {
    await nc.close();
  }
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});

Deno.test("MQTT → NATS uplink with an outbox: replayed events keep the topic's / tokens", async () => {
  await using broker = await Mosquitto.start();
  // The uplink stores what reaches it, so nothing depends on when the test subscribes.
  await using uplink = await NatsServer.start({ jetstream: true });
  {
    const nc = await connect({ servers: uplink.url });
    await (await jetstreamManager(nc)).streams.add({ name: "UP", subjects: ["up.>"] });
    await nc.close();
  }
  await using cfg = await configDir("");
  await Deno.writeTextFile(
    cfg.file,
    `connectors:
  devices:
    type: mqtt
    url: ${broker.url}
    client_id: gw-outbox-uplink
  uplink:
    type: nats
    servers: ${uplink.url}
    reconnect: { wait: 100ms, jitter: 50ms }
pipelines:
  readings:
    source: { connector: devices, topic: "sensors/+/temperature", qos: 1 }
    filter: _tokens[2] == "temperature"
    sinks:
      - connector: uplink
        subject: "up.{_tokens[1]}"
        buffer: { path: ${JSON.stringify(`${cfg.dir}/outbox.db`)} }
health:
  listen: 127.0.0.1:0
`,
  );
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  const health = String((await sluice.waitForMsg("health listening")).url);
  await sluice.waitForMsg("started");
  // Buffered-only connectors connect in the background: wait for it before pulling the plug.
  await sluice.waitForLog((r) => r.msg === "connector connected" && r.connector === "uplink");
  await uplink.kill();
  await sluice.waitForLog((r) => r.msg === "connector disconnected" && r.connector === "uplink");
  await using device = await testClient(broker.url);
  for (let i = 0; i < 10; i++) {
    await device.publishAsync(`sensors/d${i % 2}/temperature`, JSON.stringify({ i }), { qos: 1 });
  }
  await sluice.waitForMsg("sink unavailable, keeping events in the outbox");
  // All ten handled (in the outbox) before the uplink comes back.
  await pollUntil(
    async () => {
      const s = await (await fetch(`${health}/status`)).json() as {
        pipelines: { counters: { in: number }; "in_flight": number }[];
      };
      return (s.pipelines[0]?.counters.in === 10 && s.pipelines[0]?.in_flight === 0) || undefined;
    },
    10_000,
    "all ten readings handled",
  );
  await uplink.restart();
  const nc = await connect({ servers: uplink.url });
  try {
    const jsm = await jetstreamManager(nc);
    await pollUntil(
      async () => (await jsm.streams.info("UP")).state.messages >= 10 || undefined,
      15_000,
      "the 10 stored readings in the uplink stream",
      100,
    );
    const consumer = await jetstream(nc).consumers.get("UP", { deliver_policy: DeliverPolicy.All });
    const got: [string, number][] = [];
    for await (const m of await consumer.fetch({ max_messages: 10, expires: 2000 })) {
      got.push([m.subject, (m.json() as { i: number }).i]);
    }
    assert.deepEqual(got, [...Array(10).keys()].map((i) => [`up.d${i % 2}`, i]));
  } finally {
    await nc.close();
  }
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});
