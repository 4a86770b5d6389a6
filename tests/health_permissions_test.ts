// The example nats-server permissions of deploy/nats-server-health-permissions.conf, against a real
// server with Sluice as the gateway: only the gateway publishes heartbeats and answers health, an
// operator can ask for health, and any other user can do neither.
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../dev/nats_server.ts";
import { REPO_ROOT } from "../dev/sluice_process.ts";
import { Collector } from "../dev/wait.ts";
import { configDir, startSluice } from "./_delivery.ts";

const EXAMPLE = `${REPO_ROOT}deploy/nats-server-health-permissions.conf`;
const PASSWORDS = {
  SLUICE_GATEWAY_PASSWORD: "gateway-test-secret",
  SLUICE_OPERATOR_PASSWORD: "operator-test-secret",
  DEVICE_PASSWORD: "device-test-secret",
};

interface Beat {
  instance: string;
  spoofed?: boolean;
}

/** A permission violation the server reported to a client. */
interface Violation {
  operation: string;
  subject: string;
}

async function login(server: NatsServer, user: string, pass: string) {
  const nc = await connect({ servers: server.url, user, pass, name: `test-${user}` });
  const violations = new Collector<Violation>();
  (async () => {
    for await (const s of nc.status()) {
      if (s.type !== "error") continue;
      const e = s.error as { operation?: string; subject?: string };
      if (e.operation && e.subject) {
        violations.push({ operation: e.operation, subject: e.subject });
      }
    }
  })().catch(() => {});
  return Object.assign(nc, {
    violations,
    [Symbol.asyncDispose]: () => nc.close().catch(() => {}),
  });
}

/** Waits for the server to refuse `operation` on `subject` to this client. */
function refused(
  nc: NatsConnection & { violations: Collector<Violation> },
  operation: string,
  subject: string,
): Promise<Violation> {
  return nc.violations.waitFor(
    (v) => v.operation === operation && v.subject === subject,
    10_000,
    `the server to refuse ${operation} on ${subject}`,
  );
}

Deno.test("health permissions: only the gateway beats and answers; an operator asks; a device can do neither", async () => {
  for (const [k, v] of Object.entries(PASSWORDS)) Deno.env.set(k, v);
  await using server = await NatsServer.start({ extraConfig: await Deno.readTextFile(EXAMPLE) });
  await using cfg = await configDir(`connectors:
  gw:
    type: nats
    servers: ${server.url}
    auth: { user: sluice-gateway, password: ${PASSWORDS.SLUICE_GATEWAY_PASSWORD} }
pipelines:
  alerts:
    source: { connector: gw, subject: sensors.> }
    sinks: [{ connector: gw, subject: alerts.high }]
health:
  listen: false
  instance: gw-1
  nats: { connector: gw, interval: 200ms }
`);
  await using sluice = await startSluice(cfg.file);
  await using operator = await login(server, "sluice-operator", PASSWORDS.SLUICE_OPERATOR_PASSWORD);
  await using device = await login(server, "device", PASSWORDS.DEVICE_PASSWORD);

  // The gateway publishes heartbeats and answers health requests; the operator sees and asks.
  const beats = new Collector<Beat>();
  operator.subscribe("sluice.heartbeat.>", { callback: (_e, m) => beats.push(m.json<Beat>()) });
  await operator.flush();
  await beats.waitForCount(1, 15_000, "a heartbeat from the gateway");
  const reply = await operator.request("sluice.health.gw-1", "", { timeout: 10_000 });
  assert.equal(reply.json<{ process: { instance: string } }>().process.instance, "gw-1");

  // A device cannot publish a heartbeat: the server refuses it and nobody receives it.
  device.publish("sluice.heartbeat.gw-1", JSON.stringify({ instance: "gw-1", spoofed: true }));
  await refused(device, "publish", "sluice.heartbeat.gw-1");
  // Nor can it answer health requests: it may not subscribe to them.
  device.subscribe("sluice.health.>", { callback: () => {} });
  await refused(device, "subscription", "sluice.health.>");
  // Nor ask for health.
  device.publish("sluice.health.gw-1", "");
  await refused(device, "publish", "sluice.health.gw-1");

  // The operator cannot publish heartbeats either, nor answer health requests.
  operator.publish("sluice.heartbeat.gw-1", JSON.stringify({ instance: "gw-1", spoofed: true }));
  await refused(operator, "publish", "sluice.heartbeat.gw-1");
  operator.subscribe("sluice.health.gw-1", { callback: () => {} });
  await refused(operator, "subscription", "sluice.health.gw-1");

  // Refused messages were dropped by the server: later heartbeats are all the gateway's own.
  const seen = beats.items.length;
  await beats.waitForCount(seen + 2, 15_000, "two more heartbeats");
  assert.deepEqual(beats.items.filter((b) => b.spoofed), []);
  // Health is still answered by the gateway alone.
  const again = await operator.request("sluice.health.gw-1", "", { timeout: 10_000 });
  assert.equal(again.json<{ process: { instance: string } }>().process.instance, "gw-1");
  assert.equal((await sluice.stop()).code, 0);
});

/** The per-gateway user of docs/health-permissions.md ("Several gateways on one account"). */
async function perGatewayUser(): Promise<string> {
  const doc = await Deno.readTextFile(`${REPO_ROOT}docs/health-permissions.md`);
  const section = doc.slice(doc.indexOf("## Several gateways on one account"));
  const block = /```\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, "the per-gateway example in docs/health-permissions.md");
  return block;
}

Deno.test("health permissions: a per-gateway user beats and answers only as its own instance", async () => {
  Deno.env.set("GW_BERLIN_1_PASSWORD", "berlin-test-secret");
  Deno.env.set("SLUICE_OPERATOR_PASSWORD", PASSWORDS.SLUICE_OPERATOR_PASSWORD);
  await using server = await NatsServer.start({
    extraConfig: `authorization {
  users = [
${await perGatewayUser()}
    {
      user = "sluice-operator"
      password = $SLUICE_OPERATOR_PASSWORD
      permissions = {
        publish = { allow = ["sluice.health.>"] }
        subscribe = { allow = ["sluice.heartbeat.>", "_INBOX.>"] }
      }
    }
  ]
}`,
  });
  await using cfg = await configDir(`connectors:
  gw:
    type: nats
    servers: ${server.url}
    auth: { user: gw-berlin-1, password: berlin-test-secret }
pipelines:
  alerts:
    source: { connector: gw, subject: sensors.> }
    sinks: [{ connector: gw, subject: alerts.high }]
health:
  listen: false
  instance: gw-berlin-1
  nats: { connector: gw, interval: 200ms }
`);
  await using sluice = await startSluice(cfg.file);
  await using operator = await login(server, "sluice-operator", PASSWORDS.SLUICE_OPERATOR_PASSWORD);
  const beats = new Collector<Beat>();
  operator.subscribe("sluice.heartbeat.>", { callback: (_e, m) => beats.push(m.json<Beat>()) });
  await operator.flush();
  await beats.waitForCount(1, 15_000, "a heartbeat from gw-berlin-1");
  assert.equal(beats.items[0]?.instance, "gw-berlin-1");
  // allow_responses lets the gateway answer without a publish permission on reply subjects.
  const reply = await operator.request("sluice.health.gw-berlin-1", "", { timeout: 10_000 });
  assert.equal(reply.json<{ process: { instance: string } }>().process.instance, "gw-berlin-1");

  // The same user cannot beat for another instance.
  await using impostor = await login(server, "gw-berlin-1", "berlin-test-secret");
  impostor.publish("sluice.heartbeat.gw-paris-1", "{}");
  await refused(impostor, "publish", "sluice.heartbeat.gw-paris-1");
  assert.equal((await sluice.stop()).code, 0);
});
