/**
 * MQTT connection behaviour through the real CLI: will and birth messages, a client-id clash
 * reported and backed off from, MQTT 3.1.1, and fail-over across a URL list.
 */
import assert from "node:assert/strict";
import { configDir } from "../dev/config_dir.ts";
import { collect, testClient } from "../dev/mqtt_client.ts";
import { freePort, Mosquitto } from "../dev/mosquitto.ts";
import { runSluice, SluiceProcess } from "../dev/sluice_process.ts";

function config(url: string, connector: string, pipelines: string): string {
  return `connectors:
  devices:
    type: mqtt
    url: ${url}
    reconnect: { wait: 100ms, jitter: 50ms }
${connector}
pipelines:
${pipelines}
`;
}

const LOOP = `  loop:
    source: { connector: devices, topic: "in/+" }
    sinks: [{ connector: devices, topic: "out/{_tokens[1]}" }]`;

Deno.test("birth on every start, will published on a graceful stop and by the broker after a SIGKILL", async () => {
  await using broker = await Mosquitto.start();
  await using cfg = await configDir(config(
    broker.url,
    `    client_id: gw-will
    will: { topic: gateways/gw-will/status, payload: offline, qos: 1, retain: true }
    birth: { topic: gateways/gw-will/status, payload: online, qos: 1, retain: true }`,
    LOOP,
  ));
  await using watcher = await testClient(broker.url);
  const status = await collect(watcher, "gateways/+/status");

  const s1 = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  await using sluice1 = s1;
  await status.waitFor((m) => m.payload === "online", 10_000, "birth");
  sluice1.signal("SIGTERM");
  assert.equal((await sluice1.status).code, 0);
  await status.waitFor((m) => m.payload === "offline", 10_000, "will on a graceful stop");

  const s2 = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  await using sluice2 = s2;
  const before = status.items.length;
  await status.waitFor(
    (m) => m.payload === "online" && status.items.indexOf(m) >= before,
    10_000,
    "birth again",
  );
  sluice2.signal("SIGKILL");
  await sluice2.status;
  await status.waitFor(
    (m) => m.payload === "offline" && status.items.indexOf(m) > before,
    10_000,
    "will sent by the broker",
  );
  // Retained: a late subscriber sees the last state.
  await using late = await testClient(broker.url);
  const last = await collect(late, "gateways/gw-will/status");
  const [retained] = await last.waitForCount(1, 10_000, "the retained status");
  assert.equal(retained?.payload, "offline");
  assert.equal(retained?.retain, true);
});

Deno.test("a client-id clash is reported clearly and backed off, not a reconnect storm", async () => {
  await using broker = await Mosquitto.start();
  await using cfg = await configDir(config(broker.url, "    client_id: gw-clash", LOOP));
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  await sluice.waitForMsg("started");
  // Another client with the same id, reconnecting as eagerly as Sluice would.
  await using other = await testClient(broker.url, {
    clientId: "gw-clash",
    clean: false,
    reconnectPeriod: 100,
    properties: { sessionExpiryInterval: 60 },
  });
  const backoff = await sluice.waitForLog(
    (r) => r.msg.includes("is another client using the same client id"),
    20_000,
    "the clash to be reported",
  );
  assert.equal(backoff.client_id, "gw-clash");
  assert.equal(backoff.level, "error");
  // Backing off: the wait grows well beyond the configured 100ms.
  assert.ok(Number(backoff.retry_in_ms) >= 400, `retry_in_ms ${backoff.retry_in_ms}`);
  other.end(true);
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});

Deno.test("MQTT 3.1.1 (version: 3.1.1 read as text by YAML), QoS 1 both ways", async () => {
  await using broker = await Mosquitto.start();
  await using cfg = await configDir(
    config(broker.url, "    version: 3.1.1\n    client_id: gw-v311", LOOP),
  );
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  await sluice.waitForMsg("started");
  await using device = await testClient(broker.url, { protocolVersion: 4 });
  const out = await collect(device, "out/#");
  await device.publishAsync("in/a", '{"v":1}', { qos: 1 });
  const [m] = await out.waitForCount(1, 10_000, "the forwarded message");
  assert.deepEqual([m?.topic, m?.payload], ["out/a", '{"v":1}']);
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});

Deno.test("fail-over: a URL list is tried in turn until a broker answers", async () => {
  await using broker = await Mosquitto.start();
  const dead = `mqtt://127.0.0.1:${freePort()}`;
  await using cfg = await configDir(
    config(`[${dead}, ${broker.url}]`, "    client_id: gw-failover", LOOP),
  );
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  const connected = await sluice.waitForMsg("connector connected");
  assert.equal(connected.server, broker.url);
  await sluice.waitForMsg("started");
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});

Deno.test("an MQTT connector needs no more permissions than the start task grants", async () => {
  await using broker = await Mosquitto.start();
  await using cfg = await configDir(config(broker.url, "    client_id: gw-perms", LOOP));
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file], {
    denoFlags: [
      "--allow-net",
      `--allow-read=${cfg.dir}`,
      "--allow-env=NATS_URL,SLUICE_CLIENT_NAME,LOG_TOKENS,LOG_STREAM",
      "--allow-sys=hostname",
    ],
  });
  await sluice.waitForMsg("started");
  await using device = await testClient(broker.url);
  const out = await collect(device, "out/#");
  await device.publishAsync("in/p", '{"v":1}', { qos: 1 });
  await out.waitForCount(1, 10_000, "the forwarded message");
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});

Deno.test("the default client id without --allow-sys=hostname: a clear error, exit 1", async () => {
  await using broker = await Mosquitto.start();
  await using cfg = await configDir(config(broker.url, "", LOOP));
  const r = await runSluice(["run", cfg.file], {
    denoFlags: ["--allow-net", `--allow-read=${cfg.dir}`, "--allow-env"],
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /the default client id needs the host name: .*--allow-sys=hostname.*or set client_id/,
  );
});
