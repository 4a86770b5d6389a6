/**
 * MQTT connector end to end through the real CLI: wildcard routing MQTT → NATS and NATS → MQTT with
 * templates, retained messages, user properties, and template failures to the dead letter.
 */
import assert from "node:assert/strict";
import { connect, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { configDir } from "../dev/config_dir.ts";
import { collect, testClient } from "../dev/mqtt_client.ts";
import { Mosquitto } from "../dev/mosquitto.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { Collector } from "../dev/wait.ts";

function connectors(mqttUrl: string, natsUrl: string, extra = ""): string {
  return `connectors:
  devices:
    type: mqtt
    url: ${mqttUrl}
    client_id: sluice-routing-test
    reconnect: { wait: 100ms, jitter: 50ms }
${extra}
  uplink:
    type: nats
    servers: ${natsUrl}
    reconnect: { wait: 100ms, jitter: 50ms }
`;
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

async function startSluice(file: string): Promise<SluiceProcess> {
  const sluice = SluiceProcess.start(["run", "--log-format", "json", file]);
  await sluice.waitForMsg("started");
  return sluice;
}

Deno.test("mqtt → nats: + and # filters, _tokens from / levels, filter on _tokens and _headers", async () => {
  await using broker = await Mosquitto.start();
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connectors(broker.url, server.url) + `
pipelines:
  temperatures:
    source: { connector: devices, topic: sensors/+/temperature, qos: 1 }
    filter: temperature > 30 && _tokens[0] == "sensors"
    sinks: [{ connector: uplink, subject: "temp.{_tokens[1]}" }]
  everything:
    source: { connector: devices, topic: "plant/#", qos: 0 }
    filter: '_subject.startsWith("plant/") && (!has(_headers.skip))'
    sinks: [{ connector: uplink, subject: "plant.{_tokens[1]}.{_tokens[2]}" }]
    dead_letter: { connector: uplink, subject: dlq.plant }
`,
  );
  await using sluice = await startSluice(cfg.file);
  await using nc = await nats(server);
  const temps = natsCollect(nc, "temp.>");
  const plant = natsCollect(nc, "plant.>");
  const dlq = natsCollect(nc, "dlq.>");
  await nc.flush();
  await using device = await testClient(broker.url);

  await device.publishAsync("sensors/dev-1/temperature", '{"temperature": 31}', { qos: 1 });
  await device.publishAsync("sensors/dev-2/temperature", '{"temperature": 20}', { qos: 1 });
  await device.publishAsync("sensors/dev-3/humidity", '{"temperature": 99}', { qos: 1 });
  await device.publishAsync("sensors/dev-4/temperature/x", '{"temperature": 99}', { qos: 1 });
  await device.publishAsync("sensors/dev-5/temperature", '{"temperature": 35.5}', { qos: 1 });
  await device.publishAsync("plant/hall-a/line-2", '{"v":1}', {
    qos: 0,
    properties: { userProperties: { skip: "yes" } },
  });
  await device.publishAsync("plant/hall-a/line-3", '{"v":2}', { qos: 0 });
  // Too few levels for {_tokens[2]}: dead-lettered, with the reason in a header.
  await device.publishAsync("plant/hall-b", '{"v":3}', { qos: 0 });

  const got = await temps.waitForCount(2, 10_000, "two temperatures");
  assert.deepEqual(got.map((m) => [m.subject, m.string()]), [
    ["temp.dev-1", '{"temperature": 31}'],
    ["temp.dev-5", '{"temperature": 35.5}'],
  ]);
  const p = await plant.waitForCount(1, 10_000, "plant message");
  assert.deepEqual([p[0]!.subject, p[0]!.string()], ["plant.hall-a.line-3", '{"v":2}']);
  const d = await dlq.waitForCount(1, 10_000, "dead letter");
  assert.equal(d[0]!.string(), '{"v":3}');
  assert.match(d[0]!.headers?.get("Sluice-Error") ?? "", /_tokens\[2\].*missing/);
  assert.equal(d[0]!.headers?.get("Sluice-Subject"), "plant/hall-b");
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
  assert.equal(temps.items.length, 2);
  assert.equal(plant.items.length, 1);
});

Deno.test("nats → mqtt: topic templates, QoS 1, retain for a late subscriber, headers as user properties, bad values dead-lettered", async () => {
  await using broker = await Mosquitto.start();
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connectors(broker.url, server.url) + `
pipelines:
  commands:
    source: { connector: uplink, subject: commands.> }
    sinks:
      - connector: devices
        topic: "actuators/{device}/set/{_tokens[1]}"
        qos: 1
        retain: true
        pass_headers: true
    dead_letter: { connector: devices, topic: dlq/commands, qos: 1 }
`,
  );
  await using sluice = await startSluice(cfg.file);
  await using nc = await nats(server);
  await using watcher = await testClient(broker.url);
  const live = await collect(watcher, "actuators/#");
  const h = headers();
  h.set("trace-id", "t-1");
  nc.publish("commands.valve", '{"device":"v-7","open":true}', { headers: h });
  nc.publish("commands.valve", '{"device":"a/b","open":true}'); // '/' in a level
  nc.publish("commands.valve", '{"device":"+","open":true}'); // a wildcard
  nc.publish("commands.valve", '{"device":"","open":true}'); // an empty level
  nc.publish("commands.pump", '{"device":"p-1","on":1}');
  await nc.flush();
  await live.waitForCount(2, 10_000, "two commands published");

  // A subscriber that connects only now still sees the last retained message per topic.
  await using late = await testClient(broker.url);
  const dlq = await collect(late, "dlq/#");
  const set = await collect(late, "actuators/#");
  const got = await set.waitForCount(2, 10_000, "two retained commands");
  const byTopic = new Map(got.map((m) => [m.topic, m]));
  assert.equal(byTopic.get("actuators/v-7/set/valve")?.payload, '{"device":"v-7","open":true}');
  assert.equal(byTopic.get("actuators/v-7/set/valve")?.retain, true);
  assert.deepEqual({ ...byTopic.get("actuators/v-7/set/valve")?.userProperties }, {
    "trace-id": "t-1",
  });
  assert.equal(byTopic.get("actuators/p-1/set/pump")?.payload, '{"device":"p-1","on":1}');
  // The dead letter is not retained, so it must be read live: publish again now.
  nc.publish("commands.valve", '{"device":"x#y","open":true}');
  const d = await dlq.waitForCount(1, 10_000, "a dead letter");
  assert.equal(d[0]!.payload, '{"device":"x#y","open":true}');
  assert.match(String(d[0]!.userProperties?.["Sluice-Error"]), /contains '#'/);
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});

Deno.test("the gateway example: device readings reach the uplink, commands reach the devices", async () => {
  await using broker = await Mosquitto.start();
  await using server = await NatsServer.start();
  await Deno.remove("/tmp/sluice-gateway", { recursive: true }).catch(() => {});
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", "examples/gateway"], {
    env: { MQTT_URL: broker.url, NATS_URL: server.url, SLUICE_CLIENT_ID: "gw-example-test" },
  });
  await sluice.waitForMsg("started");
  await using nc = await nats(server);
  const up = natsCollect(nc, "gw-01.>");
  await nc.flush();
  await using device = await testClient(broker.url);
  const set = await collect(device, "actuators/#");
  const status = await collect(device, "gateways/+/status");
  await status.waitFor((m) => m.payload === "online", 10_000, "the gateway's birth");
  await device.publishAsync("sensors/t-1/temperature", '{"temperature":21.5}', { qos: 1 });
  await device.publishAsync("sensors/t-1/temperature", '{"temperature":999}', { qos: 1 });
  const [reading] = await up.waitForCount(1, 10_000, "a reading on the uplink");
  assert.equal(reading?.subject, "gw-01.temperature.t-1");
  assert.deepEqual(reading?.json(), { temperature: 21.5, device: "t-1" });
  nc.publish("gw-01.commands.setpoint", '{"device":"valve-3","setpoint":19}');
  const [command] = await set.waitForCount(1, 10_000, "a command at the device");
  assert.deepEqual([command?.topic, command?.payload], [
    "actuators/valve-3/set",
    '{"device":"valve-3","setpoint":19}',
  ]);
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
  await status.waitFor((m) => m.payload === "offline", 10_000, "the gateway's will");
  // The second pipeline on the same topic filter got the reading too: its open one-minute window
  // is sent, partial, on the graceful stop.
  const average = await up.waitFor(
    (m) => m.subject === "gw-01.temperature-1m.t-1",
    10_000,
    "the partial one-minute average",
  );
  const avg = average.json() as Record<string, unknown>;
  assert.deepEqual([avg.key, avg.temperature_avg, avg.readings, avg.partial], [
    "t-1",
    21.5,
    1,
    true,
  ]);
  // The implausible 999 was filtered out; only the command the test sent is beside the reading.
  assert.deepEqual(up.items.map((m) => m.subject), [
    "gw-01.temperature.t-1",
    "gw-01.commands.setpoint",
    "gw-01.temperature-1m.t-1",
  ]);
});
