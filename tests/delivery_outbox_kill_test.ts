// A core NATS sink with an outbox, its uplink nats-server SIGKILLed mid-stream: what was handed to
// the client (or the network) but never confirmed by the server goes back into the outbox.
import assert from "node:assert/strict";
import { NatsServer } from "../dev/nats_server.ts";
import {
  assertAllStored,
  client,
  configDir,
  event,
  killUplink,
  manager,
  natsConnector,
  publishEvents,
  startSluice,
} from "./_delivery.ts";

/** Runs Sluice forwarding ev.> from `local` to a core sink on `uplink` with an outbox. */
async function forwardWithOutbox(local: NatsServer, uplink: NatsServer, dir: string, file: string) {
  {
    await using up = await client(uplink);
    // The stream stores what the core sink publishes; Nats-Msg-Id drops replayed duplicates.
    await (await manager(up)).streams.add({ name: "UP", subjects: ["up.>"] });
  }
  await Deno.writeTextFile(
    file,
    `connectors:
${natsConnector("local", local.url)}${natsConnector("uplink", uplink.url)}
pipelines:
  forward:
    source: { connector: local, subject: ev.> }
    sinks:
      - connector: uplink
        subject: up.events
        msg_id: { field: id }
        buffer: { path: ${JSON.stringify(`${dir}/outbox.db`)} }
`,
  );
  const sluice = await startSluice(file);
  await sluice.waitForLog(
    (r) => r.msg === "connector connected" && r.connector === "uplink",
    15_000,
    "the uplink connector to connect",
  );
  return sluice;
}

Deno.test("core sink + outbox: uplink SIGKILLed mid-stream loses 0 of 20,000 events", async () => {
  await using local = await NatsServer.start();
  await using uplink = await NatsServer.start({ jetstream: true });
  await using cfg = await configDir("");
  await using sluice = await forwardWithOutbox(local, uplink, cfg.dir, cfg.file);
  await using nc = await client(local);
  const total = 20_000;
  // Killed while a flood is in full flow: whatever is on the wire or in a buffer then is lost
  // to the server and must come from the outbox.
  const killed = Promise.withResolvers<void>();
  const flood = (async () => {
    for (let i = 0; i < total; i++) {
      nc.publish("ev.a", event(i));
      if (i === 8_000) uplink.kill().then(killed.resolve, killed.reject);
      if ((i + 1) % 500 === 0) await nc.flush();
      if (i === 12_000) {
        await killed.promise;
        await uplink.restart();
      }
    }
    await nc.flush();
  })();
  await flood;
  await assertAllStored(uplink, total);
  assert.equal((await sluice.stop(30_000)).code, 0);
});

Deno.test("core sink + outbox: uplink frozen, then SIGKILLed: what sat unread in its buffers is sent again", async () => {
  await using local = await NatsServer.start();
  await using uplink = await NatsServer.start({ jetstream: true });
  await using cfg = await configDir("");
  await using sluice = await forwardWithOutbox(local, uplink, cfg.dir, cfg.file);
  await using nc = await client(local);
  const total = 20_000;

  await publishEvents(nc, "ev.a", 0, 6_000, 500);
  // Frozen first, so that what Sluice sends next sits unread in the uplink's socket buffers (as
  // on a congested link) when the server dies: sent, never received, never confirmed.
  Deno.kill(uplink.pid!, "SIGSTOP");
  await publishEvents(nc, "ev.a", 6_000, 6_000, 500);
  await killUplink(uplink, sluice);
  await uplink.restart();
  await publishEvents(nc, "ev.a", 12_000, total - 12_000, 500);
  await assertAllStored(uplink, total);
  assert.equal((await sluice.stop(30_000)).code, 0);
});
