// Errors an operator reads while delivery fails: a JetStream sink whose subject no stream captures,
// and the reason a disconnected connector cannot reconnect.
import assert from "node:assert/strict";
import { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { pollUntil, withTimeout } from "../dev/wait.ts";
import { client, configDir, event, natsConnector, startSluice } from "./_delivery.ts";

Deno.test("a JetStream sink whose subject no stream captures names the subject, not 'jetstream is not enabled'", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using cfg = await configDir(`connectors:
${natsConnector("local", server.url)}
pipelines:
  to-stream:
    source: { connector: local, subject: ev.> }
    sinks:
      - { connector: local, subject: up.events, jetstream: { retries: 0, timeout: 1s } }
`);
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  nc.publish("ev.a", event(1));
  await nc.flush();
  const failed = await sluice.waitForMsg("jetstream publish failed", 20_000);
  assert.match(String(failed.error), /no stream captures subject "up\.events"/);
  assert.doesNotMatch(String(failed.error), /jetstream is not enabled/);
  const rejected = await sluice.waitForMsg("event rejected");
  assert.match(String(rejected.reason), /no stream captures subject "up\.events"/);
  assert.equal((await sluice.stop()).code, 0);
});

Deno.test("a JetStream sink failure learned after send dead-letters the original event, once each", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using cfg = await configDir(`connectors:
${natsConnector("local", server.url)}
pipelines:
  to-stream:
    source: { connector: local, subject: ev.> }
    processors:
      - map:
          doubled: temperature * 2.0
    sinks:
      - { connector: local, subject: up.events, jetstream: { retries: 0, timeout: 1s } }
    dead_letter: { connector: local, subject: dlq.to-stream }
`);
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const dead: { data: string; error?: string; subject?: string }[] = [];
  const sub = nc.subscribe("dlq.to-stream", { max: 3 });
  const threeDead = (async () => {
    for await (const m of sub) {
      dead.push({
        data: m.string(),
        error: m.headers?.get("Sluice-Error"),
        subject: m.headers?.get("Sluice-Subject"),
      });
    }
  })();
  await nc.flush();
  for (let i = 0; i < 3; i++) nc.publish("ev.a", event(i));
  await nc.flush();
  await withTimeout(threeDead, 20_000, "three dead letters");
  // The failure comes back after send returned (the PubAck's absence), yet the dead letter holds
  // the event as it arrived, not the mapped one the sink was given.
  assert.deepEqual(
    dead.map((d) => d.data).sort(),
    [0, 1, 2].map((i) => new TextDecoder().decode(event(i))),
  );
  for (const d of dead) {
    assert.match(d.error ?? "", /^sink error: no PubAck after 1 attempts: no stream captures/);
    assert.equal(d.subject, "ev.a");
  }
  await sluice.stop();
  const summary = sluice.records.find((r) => r.msg === "pipeline summary");
  assert.equal(summary?.in, 3);
  assert.equal(summary?.dead_lettered, 3);
});

interface StatusConnector {
  name: string;
  state: string;
  "last_error": { message: string } | null;
}

Deno.test("while disconnected, connector health names the last connection error", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(`connectors:
${natsConnector("local", server.url)}
pipelines:
  alerts:
    source: { connector: local, subject: sensors.> }
    sinks: [{ connector: local, subject: alerts.high }]
health:
  listen: 127.0.0.1:0
`);
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  const listening = await sluice.waitForMsg("health listening", 30_000);
  const url = String(listening.url);
  await sluice.waitForMsg("started");

  await server.kill();
  const local = await pollUntil(
    async () => {
      const status = await (await fetch(`${url}/status`)).json() as {
        connectors: StatusConnector[];
      };
      const c = status.connectors.find((c) => c.name === "local");
      return c && c.state !== "connected" && /refused/i.test(c.last_error?.message ?? "")
        ? c
        : undefined;
    },
    20_000,
    "connector health to name the refused connection",
  );
  assert.match(local.last_error?.message ?? "", /connection refused/i);
  const readyz = await fetch(`${url}/readyz`);
  assert.equal(readyz.status, 503);
  assert.match(await readyz.text(), /last error: connection refused/i);
  assert.equal((await sluice.stop()).code, 0);
});
