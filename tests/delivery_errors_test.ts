// Errors an operator reads while delivery fails: a JetStream sink whose subject no stream captures,
// and the reason a disconnected connector cannot reconnect.
import assert from "node:assert/strict";
import { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { pollUntil } from "../dev/wait.ts";
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
