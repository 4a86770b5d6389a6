/**
 * MQTT over TLS (CA, client certificate) and credentials, through the real CLI: a verified
 * connection works; a wrong CA or wrong password stops Sluice with a clear error and exit 1, and
 * the password never appears in its output.
 */
import assert from "node:assert/strict";
import { configDir } from "../dev/config_dir.ts";
import { collect, testClient } from "../dev/mqtt_client.ts";
import { makeCertificates } from "../dev/certs.ts";
import { Mosquitto } from "../dev/mosquitto.ts";
import { runSluice, SluiceProcess } from "../dev/sluice_process.ts";

const LOOP = `pipelines:
  loop:
    source: { connector: devices, topic: "in/+" }
    sinks: [{ connector: devices, topic: "out/{_tokens[1]}" }]
`;

async function tempDir(): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-certs-" });
  return { dir, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

Deno.test("mqtts with a private CA and a client certificate: the broker is verified, events flow", async () => {
  await using tmp = await tempDir();
  const certs = await makeCertificates(tmp.dir);
  await using broker = await Mosquitto.start({
    tls: { ...certs, requireCertificate: true },
  });
  await using cfg = await configDir(`connectors:
  devices:
    type: mqtt
    url: ${broker.tlsUrl}
    client_id: gw-tls
    tls: { ca_file: ${certs.caFile}, cert_file: ${certs.clientCertFile}, key_file: ${certs.clientKeyFile} }
${LOOP}`);
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  const connected = await sluice.waitForMsg("connector connected");
  assert.equal(connected.server, broker.tlsUrl);
  await sluice.waitForMsg("started");
  // The test client uses the plain listener of the same broker.
  await using device = await testClient(broker.url);
  const out = await collect(device, "out/#");
  await device.publishAsync("in/t", '{"v":1}', { qos: 1 });
  const [m] = await out.waitForCount(1, 10_000, "the message routed over TLS");
  assert.equal(m?.topic, "out/t");
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});

Deno.test("mqtts with a CA that did not sign the broker's certificate: clear error, exit 1", async () => {
  await using tmp = await tempDir();
  const certs = await makeCertificates(tmp.dir);
  await using broker = await Mosquitto.start({ tls: certs });
  await using cfg = await configDir(`connectors:
  devices:
    type: mqtt
    url: ${broker.tlsUrl}
    tls: { ca_file: ${certs.otherCaFile} }
${LOOP}`);
  const r = await runSluice(["run", cfg.file]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /the broker's certificate was not accepted/);
  assert.match(r.stderr, /tls\.ca_file/);
});

Deno.test("wrong password: clear error naming auth, exit 1, the password never printed", async () => {
  await using broker = await Mosquitto.start({ users: { "gw-01": "right-pass-123" } });
  const secret = "wrong-pass-s3cr3t";
  await using cfg = await configDir(`connectors:
  devices:
    type: mqtt
    url: ${broker.url}
    auth: { username: gw-01, password: ${secret} }
${LOOP}`);
  for (const version of ["5", "3.1.1"]) {
    const text = (await Deno.readTextFile(cfg.file)).replace(
      /auth:/,
      `version: ${version}\n    auth:`,
    );
    const file = `${cfg.dir}/v${version}.yaml`;
    await Deno.writeTextFile(file, text);
    const r = await runSluice(["run", file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /refused the connection: (bad user name or password|not authorized)/);
    assert.match(r.stderr, /check auth:/);
    assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), "password printed");
  }
  // The right password works.
  await Deno.writeTextFile(
    cfg.file,
    (await Deno.readTextFile(cfg.file)).replace(secret, "right-pass-123"),
  );
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  await sluice.waitForMsg("started");
  sluice.signal("SIGTERM");
  assert.equal((await sluice.status).code, 0);
});
