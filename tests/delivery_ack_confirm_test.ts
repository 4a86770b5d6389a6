// A JetStream source acks an event only once the core NATS sink's server has it: with the sink's
// uplink down, events are refused and redelivered, not acked out of the client's buffer and lost.
import assert from "node:assert/strict";
import { jetstream, type JetStreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../dev/nats_server.ts";
import { pollUntil } from "../dev/wait.ts";
import {
  assertAllStored,
  client,
  type ConfigDir,
  configDir,
  event,
  killUplink,
  manager,
  natsConnector,
  startSluice,
} from "./_delivery.ts";

/**
 * Stream EV on `local` (through `jsm`), stream UP on `uplink`, and a configuration that consumes
 * EV and sends every event to `up.events` on the uplink with a core sink.
 */
async function forwarding(
  local: NatsServer,
  uplink: NatsServer,
  jsm: JetStreamManager,
): Promise<ConfigDir> {
  await jsm.streams.add({ name: "EV", subjects: ["ev.>"] });
  {
    await using up = await client(uplink);
    await (await manager(up)).streams.add({ name: "UP", subjects: ["up.>"] });
  }
  return await configDir(`connectors:
${natsConnector("local", local.url)}${natsConnector("uplink", uplink.url)}
pipelines:
  from-stream:
    source:
      connector: local
      subject: ev.>
      jetstream: { stream: EV, durable: sluice, ack_wait: 30s, nak_delay: 100ms }
    sinks:
      - { connector: uplink, subject: up.events, msg_id: { field: id } }
`);
}

Deno.test("JetStream source + core sink: events sent while the uplink is down are redelivered, not lost", async () => {
  await using local = await NatsServer.start({ jetstream: true });
  await using uplink = await NatsServer.start({ jetstream: true });
  await using nc = await client(local);
  const jsm = await manager(nc);
  await using cfg = await forwarding(local, uplink, jsm);
  await using sluice = await startSluice(cfg.file);
  const js = jetstream(nc);
  const total = 3000;
  for (let i = 0; i < 100; i++) await js.publish("ev.a", event(i));

  await uplink.kill();
  for (let i = 100; i < total; i++) await js.publish("ev.a", event(i));
  // Sluice has handled events while the uplink was down: it acked all of them (the defect: they
  // were lost in the client's buffer) or refused some of them for redelivery.
  await pollUntil(
    async () => {
      const naked = sluice.records.some((r) =>
        r.msg === "event rejected" && /will be redelivered/.test(String(r.reason))
      );
      return naked || (await jsm.consumers.info("EV", "sluice")).num_pending === 0
        ? true
        : undefined;
    },
    30_000,
    "Sluice to handle the events sent while the uplink is down",
  );
  await uplink.restart();

  await assertAllStored(uplink, total);
  await pollUntil(
    async () => {
      const info = await jsm.consumers.info("EV", "sluice");
      return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
    },
    30_000,
    "every source message acked",
  );
  assert.equal((await sluice.stop(30_000)).code, 0);
});

Deno.test("JetStream source + core sink: events awaiting a confirmation the uplink never gives are redelivered", async () => {
  await using local = await NatsServer.start({ jetstream: true });
  await using uplink = await NatsServer.start({ jetstream: true });
  await using nc = await client(local);
  const jsm = await manager(nc);
  await using cfg = await forwarding(local, uplink, jsm);
  await using sluice = await startSluice(cfg.file);
  const js = jetstream(nc);
  const total = 2000;
  for (let i = 0; i < 500; i++) await js.publish("ev.a", event(i));
  // Frozen, the uplink reads nothing and answers no PING: what Sluice sends now was accepted by a
  // connected client, and every event of those batches waits for a confirmation that never comes.
  Deno.kill(uplink.pid!, "SIGSTOP");
  for (let i = 500; i < total; i++) await js.publish("ev.a", event(i));
  await pollUntil(
    async () => (await jsm.consumers.info("EV", "sluice")).num_ack_pending > 0 ? true : undefined,
    20_000,
    "events handed to Sluice and not yet acked",
  );
  await killUplink(uplink, sluice);
  await uplink.restart();
  await assertAllStored(uplink, total);
  assert.equal((await sluice.stop(30_000)).code, 0);
});
