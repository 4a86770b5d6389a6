// Store-and-forward outbox against real nats-servers: a local server for sources and an "uplink"
// server (JetStream) for sinks, which is killed, paused and restarted under Sluice.
import assert from "node:assert/strict";
import type { JetStreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../dev/nats_server.ts";
import type { SluiceProcess } from "../dev/sluice_process.ts";
import { pollUntil, withTimeout } from "../dev/wait.ts";
import {
  assertAllStored,
  client,
  configDir,
  manager,
  natsConnector,
  publishEvents,
  rssKiB,
  startSluice,
  storedIds,
  streamCount,
} from "./_delivery.ts";

function config(
  local: NatsServer,
  uplink: NatsServer,
  outbox: string,
  options: { buffer?: string; sink?: string } = {},
): string {
  return `connectors:
${natsConnector("local", local.url)}${natsConnector("uplink", uplink.url)}
pipelines:
  forward:
    source: { connector: local, subject: ev.> }
    sinks:
      - connector: uplink
        subject: up.events
        ${options.sink ?? "jetstream: { timeout: 1s, retries: 1 }\n        msg_id: { field: id }"}
        buffer: { path: ${JSON.stringify(outbox)}${options.buffer ? `, ${options.buffer}` : ""} }
`;
}

async function upStream(uplink: NatsServer): Promise<JetStreamManager & AsyncDisposable> {
  const nc = await client(uplink);
  const jsm = await manager(nc);
  return Object.assign(jsm, { [Symbol.asyncDispose]: () => nc.close() });
}

/** Starts Sluice and waits until its uplink connector is connected (it connects in the background). */
async function startWithUplink(file: string): Promise<SluiceProcess> {
  const sluice = await startSluice(file);
  await sluice.waitForLog(
    (r) => r.msg === "connector connected" && r.connector === "uplink",
    15_000,
    "the uplink connector to connect",
  );
  return sluice;
}

function summary(sluice: SluiceProcess): Record<string, unknown> {
  const r = sluice.records.find((r) => r.msg === "pipeline summary");
  assert.ok(r, "a pipeline summary at exit");
  return r;
}

Deno.test("uplink SIGKILLed mid-stream: every event reaches the uplink once it is back", async () => {
  await using local = await NatsServer.start();
  await using uplink = await NatsServer.start({ jetstream: true });
  {
    await using jsm = await upStream(uplink);
    await jsm.streams.add({ name: "UP", subjects: ["up.>"] });
  }
  await using cfg = await configDir("");
  await Deno.writeTextFile(cfg.file, config(local, uplink, `${cfg.dir}/outbox.db`));
  await using sluice = await startWithUplink(cfg.file);
  await using nc = await client(local);
  const total = 20_000;

  await publishEvents(nc, "ev.a", 0, 6_000, 500);
  await uplink.kill();
  await publishEvents(nc, "ev.a", 6_000, 6_000, 500);
  await sluice.waitForMsg("sink unavailable, keeping events in the outbox");
  await uplink.restart();
  await publishEvents(nc, "ev.a", 12_000, total - 12_000, 500);

  // Duplicates of retries and replays are dropped by the stream (Nats-Msg-Id).
  await assertAllStored(uplink, total, 90_000);
  await sluice.stop(30_000);
  const s = summary(sluice);
  assert.equal(s.in, total);
  assert.ok(Number(s.buffered) > 0, "some events went through the outbox");
  // deno-lint-ignore no-console -- the measurement is reported, not asserted
  console.log(`outbox: buffered ${s.buffered}, replayed ${s.replayed} of ${total} events`);
});

Deno.test("a PubAck failure learned after send, uplink up, falls back into the outbox and is sent later", async () => {
  await using local = await NatsServer.start();
  await using uplink = await NatsServer.start({ jetstream: true });
  await using cfg = await configDir("");
  // No stream captures up.events yet: every publish is answered "no responders", after send.
  await Deno.writeTextFile(
    cfg.file,
    config(local, uplink, `${cfg.dir}/outbox.db`, {
      sink: "jetstream: { timeout: 1s, retries: 0 }\n        msg_id: { field: id }",
    }),
  );
  await using sluice = await startWithUplink(cfg.file);
  await using nc = await client(local);
  const total = 50;
  await publishEvents(nc, "ev.a", 0, total, 50);
  const kept = await sluice.waitForMsg("sink unavailable, keeping events in the outbox");
  assert.match(String(kept.reason), /no stream captures subject "up\.events"/);
  await using jsm = await upStream(uplink);
  await jsm.streams.add({ name: "UP", subjects: ["up.>"] });
  await assertAllStored(uplink, total, 30_000);
  await sluice.stop(30_000);
  const s = summary(sluice);
  assert.equal(s.in, total);
  assert.equal(s.buffered, total);
  assert.equal(s.errors, 0);
  assert.equal(s.dead_lettered, 0);
});

Deno.test("stopped while PubAcks are outstanding, Sluice keeps the unconfirmed events in the outbox", async () => {
  await using local = await NatsServer.start();
  await using uplink = await NatsServer.start({ jetstream: true });
  await using cfg = await configDir("");
  await Deno.writeTextFile(
    cfg.file,
    config(local, uplink, `${cfg.dir}/outbox.db`, {
      sink: "jetstream: { timeout: 2s, retries: 0 }\n        msg_id: { field: id }",
    }),
  );
  // A subscriber that never answers holds every publish without a PubAck until the timeout.
  await using up = await client(uplink);
  const total = 10;
  const silent = up.subscribe("up.events", { max: total });
  const received = (async () => {
    for await (const _ of silent) { /* counted by max */ }
  })();
  await up.flush();
  {
    await using sluice = await startWithUplink(cfg.file);
    await using nc = await client(local);
    await publishEvents(nc, "ev.a", 0, total, total);
    await withTimeout(received, 20_000, "every publish at the uplink");
    await sluice.stop(30_000);
    const closed = sluice.records.find((r) =>
      r.msg === "outbox closed with events kept for the next run"
    );
    assert.equal(closed?.events, total);
    assert.equal(summary(sluice).buffered, total);
  }
  await using jsm = await upStream(uplink);
  await jsm.streams.add({ name: "UP", subjects: ["up.>"] });
  await using _again = await startWithUplink(cfg.file);
  await assertAllStored(uplink, total, 30_000);
});

Deno.test("the outbox survives a Sluice restart and is sent when the uplink returns", async () => {
  await using local = await NatsServer.start();
  await using uplink = await NatsServer.start({ jetstream: true });
  {
    await using jsm = await upStream(uplink);
    await jsm.streams.add({ name: "UP", subjects: ["up.>"] });
  }
  await using cfg = await configDir("");
  await Deno.writeTextFile(cfg.file, config(local, uplink, `${cfg.dir}/outbox.db`));
  const count = 500;
  {
    await using sluice = await startWithUplink(cfg.file);
    await uplink.kill();
    await using nc = await client(local);
    await sluice.waitForLog(
      (r) => r.msg === "connector disconnected" && r.connector === "uplink",
      15_000,
      "the uplink to be seen as down",
    );
    await publishEvents(nc, "ev.a", 0, count, 100);
    await sluice.stop(30_000);
    const kept = sluice.records.find((r) =>
      r.msg === "outbox closed with events kept for the next run"
    );
    assert.equal(kept?.events, count);
  }
  // The gateway restarts while the uplink is still down: it starts and keeps the outbox.
  await using second = await startSluice(cfg.file);
  await uplink.restart();
  await using jsm = await upStream(uplink);
  await pollUntil(
    async () => (await streamCount(jsm)) >= count ? true : undefined,
    60_000,
    `${count} events replayed from the outbox`,
  );
  await using up = await client(uplink);
  assert.deepEqual((await storedIds(up, count)).missing(count), []);
  await second.waitForMsg("outbox empty, sending directly", 30_000);
});

for (const overflow of ["drop_oldest", "drop_newest"] as const) {
  Deno.test(`a full outbox with overflow: ${overflow} counts what it drops`, async () => {
    await using local = await NatsServer.start();
    await using uplink = await NatsServer.start({ jetstream: true });
    {
      await using jsm = await upStream(uplink);
      await jsm.streams.add({ name: "UP", subjects: ["up.>"] });
    }
    await using cfg = await configDir("");
    await Deno.writeTextFile(
      cfg.file,
      config(local, uplink, `${cfg.dir}/outbox.db`, {
        buffer: `max_size: 16KiB, overflow: ${overflow}`,
      }),
    );
    const count = 1000;
    await using sluice = await startWithUplink(cfg.file);
    await uplink.kill();
    await sluice.waitForLog(
      (r) => r.msg === "connector disconnected" && r.connector === "uplink",
      15_000,
      "the uplink to be seen as down",
    );
    await using nc = await client(local);
    await publishEvents(nc, "ev.a", 0, count, 100);
    await sluice.waitForLog(
      (r) =>
        overflow === "drop_oldest"
          ? r.msg === "event rejected" && r.kind === "outbox_overflow"
          : r.msg === "outbox full, refusing events",
      15_000,
      "the outbox to overflow",
    );
    await sluice.stop(30_000);
    const s = summary(sluice);
    const kept = Number(
      sluice.records.find((r) => r.msg === "outbox closed with events kept for the next run")
        ?.events ?? 0,
    );
    assert.equal(s.in, count);
    assert.ok(kept > 0 && kept < count, `outbox kept ${kept}`);
    if (overflow === "drop_oldest") {
      assert.equal(Number(s.buffer_dropped), count - kept);
    } else {
      assert.equal(Number(s.sink_errors), count - kept);
      assert.equal(s.buffer_dropped, undefined);
    }
  });
}

Deno.test("a stalled uplink keeps Sluice's memory bounded; the outbox absorbs the flood", async () => {
  await using local = await NatsServer.start();
  await using uplink = await NatsServer.start({ jetstream: true });
  {
    await using jsm = await upStream(uplink);
    await jsm.streams.add({ name: "UP", subjects: ["up.>"] });
  }
  await using cfg = await configDir("");
  await Deno.writeTextFile(
    cfg.file,
    config(local, uplink, `${cfg.dir}/outbox.db`, {
      buffer: "max_size: 4MiB, overflow: drop_oldest",
      sink: "jetstream: { timeout: 500ms, retries: 0, max_in_flight: 256 }\n        msg_id: hash",
    }),
  );
  await using sluice = await startWithUplink(cfg.file);
  const idle = await rssKiB(sluice.pid);
  // SIGSTOP: the uplink's TCP connection stays up but nothing is answered, as with a dead link
  // that the client has not noticed yet, or a very slow one.
  Deno.kill(uplink.pid!, "SIGSTOP");
  let peak = 0;
  try {
    await using nc = await client(local);
    for (let round = 0; round < 20; round++) {
      await publishEvents(nc, "ev.a", round * 10_000, 10_000, 1000);
      peak = Math.max(peak, await rssKiB(sluice.pid));
    }
    await sluice.waitForLog(
      (r) => r.msg === "event rejected" && r.kind === "outbox_overflow",
      30_000,
      "the outbox to overflow",
    );
    peak = Math.max(peak, await rssKiB(sluice.pid));
  } finally {
    Deno.kill(uplink.pid!, "SIGCONT");
  }
  await sluice.stop(60_000);
  const s = summary(sluice);
  // deno-lint-ignore no-console -- the measurement is reported, not asserted
  console.log(
    `RSS idle ${Math.round(idle / 1024)} MiB, peak ${Math.round(peak / 1024)} MiB; ` +
      `buffered ${s.buffered}, dropped ${s.buffer_dropped}, replayed ${s.replayed}`,
  );
  assert.equal(s.in, 200_000);
  assert.ok(Number(s.buffer_dropped) > 0);
  assert.ok(peak < 512 * 1024, `peak RSS ${peak} KiB stays under 512 MiB`);
});
