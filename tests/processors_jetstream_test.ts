/**
 * Stateful processors on a JetStream source: events that dedupe drops and a window absorbs are
 * acknowledged at once (never redelivered), and the window's aggregate still comes out.
 */
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { NatsServer } from "../dev/nats_server.ts";
import { pollUntil } from "../dev/wait.ts";
import { configDir } from "../dev/config_dir.ts";
import { client, manager } from "./_delivery.ts";
import { collect, connector, startSluice } from "./_processors_e2e.ts";

Deno.test("a JetStream source acks events that dedupe drops and a window absorbs", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using nc = await client(server);
  const jsm = await manager(nc);
  await jsm.streams.add({ name: "EV", subjects: ["ev.>"] });
  const js = jetstream(nc);
  // Per sensor: 5 readings, of which dedupe forwards 3 (the first and two changes).
  for (const sensor of ["a", "b"]) {
    for (const t of [20, 20, 21, 21, 22]) {
      await js.publish(`ev.${sensor}`, JSON.stringify({ sensor, t }));
    }
  }
  const out = collect(nc, "out.>");
  await nc.flush();
  await using cfg = await configDir(
    connector(server.url) + `
pipelines:
  from-stream:
    source:
      connector: local
      subject: ev.>
      jetstream: { stream: EV, durable: sluice, ack_wait: 2s }
    processors:
      - dedupe: { key: sensor, value: t }
      - window:
          key: sensor
          size: 1h
          aggregates: { readings: { count: true }, t_max: { max: t } }
    sinks: [{ connector: local, subject: "out.{key}" }]
`,
  );
  await using sluice = await startSluice(cfg.file);
  const info = await pollUntil(
    async () => {
      const i = await jsm.consumers.info("EV", "sluice");
      return i.num_pending === 0 && i.num_ack_pending === 0 ? i : undefined;
    },
    20_000,
    "every stored event acknowledged",
  );
  assert.equal(info.delivered.stream_seq, 10);
  assert.equal(info.num_redelivered, 0);
  assert.equal(out.items.length, 0, "the window is still open");
  assert.equal((await sluice.stop()).code, 0);
  const got = await out.waitForCount(2, 10_000, "the partial windows");
  const windows = got.map((m) => m.json<Record<string, unknown>>())
    .sort((x, y) => String(x.key).localeCompare(String(y.key)));
  assert.deepEqual(windows.map((w) => [w.key, w.readings, w.t_max, w.partial]), [
    ["a", 3, 22, true],
    ["b", 3, 22, true],
  ]);
  const summary = await sluice.waitForMsg("pipeline summary");
  assert.deepEqual([summary.in, summary.filtered, summary.acked], [10, 4, 10]);
});
