/**
 * A core NATS sink without an outbox, on a connection that is down, refuses events: they are
 * counted as sink errors and dead-lettered, never counted as passed and lost (nats.js discards
 * what it buffered while disconnected when it dials again).
 */
import assert from "node:assert/strict";
import { connect, type Msg } from "@nats-io/transport-node";
import { configDir } from "../dev/config_dir.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { Collector } from "../dev/wait.ts";
import { killUplink } from "./_delivery.ts";

Deno.test("a core sink whose uplink is down refuses events: counted and dead-lettered, not lost", async () => {
  await using local = await NatsServer.start();
  await using uplink = await NatsServer.start();
  await using cfg = await configDir(`
connectors:
  local: { type: nats, servers: "${local.url}", reconnect: { wait: 100ms, jitter: 0ms } }
  uplink: { type: nats, servers: "${uplink.url}", reconnect: { wait: 100ms, jitter: 0ms } }
pipelines:
  up:
    source: { connector: local, subject: ev.> }
    sinks: [{ connector: uplink, subject: up.ev }]
    dead_letter: { connector: local, subject: dlq.up }
`);
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  await sluice.waitForMsg("started");
  const nc = await connect({ servers: local.url });
  try {
    const dlq = new Collector<Msg>();
    nc.subscribe("dlq.up", { callback: (_e, m) => dlq.push(m) });
    await killUplink(uplink, sluice);
    for (let i = 0; i < 50; i++) nc.publish("ev.a", JSON.stringify({ i }));
    await nc.flush();
    const letters = await dlq.waitForCount(50, 10_000, "every refused event dead-lettered");
    assert.match(
      letters[0]!.headers?.get("Sluice-Error") ?? "",
      /uplink.*(reconnecting|disconnected)/,
    );
    assert.deepEqual(letters.map((m) => (m.json() as { i: number }).i), [...Array(50).keys()]);
  } finally {
    await nc.close();
  }
  await sluice.stop();
  const summary = sluice.records.find((r) => r.msg === "pipeline summary")!;
  assert.deepEqual([summary.in, summary.sink_errors, summary.dead_lettered], [50, 50, 50]);
});
