/**
 * Throughput of the store-and-forward outbox (SQLite, WAL, synchronous=FULL): appends that are
 * durable when their promise resolves, group-committed per event-loop turn, and the replay path
 * (read a batch, delete it). Run with
 * `deno bench --allow-read --allow-write bench/outbox_bench.ts`.
 *
 * @module
 */

import { Outbox, type OutboxRecord } from "../src/engine/outbox.ts";

const dir = Deno.makeTempDirSync({ prefix: "sluice-outbox-bench-" });
const payload = new TextEncoder().encode(
  JSON.stringify({ id: "e-000001", site: "gw-01", temperature: 31.5, humidity: 40, ts: 1 }),
);
const record: OutboxRecord = {
  subject: "sensors.gw-01.temperature",
  data: payload,
  headers: undefined,
  extra: undefined,
  hasEvent: true,
};

let n = 0;
function open(name: string): Promise<Outbox> {
  return Outbox.open({
    path: `${dir}/${name}-${n++}.db`,
    maxBytes: 1024 * 1024 * 1024,
    overflow: "drop_newest",
  });
}

const burst = await open("burst");
Deno.bench("append 1000 events in one turn, await durability (one fsync)", {
  group: "append",
  baseline: true,
}, async () => {
  const appends: Promise<unknown>[] = [];
  for (let i = 0; i < 1000; i++) appends.push(burst.append(record));
  await Promise.all(appends);
});

const single = await open("single");
Deno.bench("append 1 event, await durability (one fsync each)", { group: "append" }, async () => {
  await single.append(record);
});

const replay = await open("replay");
Deno.bench(
  "replay: read 512 events and delete them (one fsync)",
  { group: "replay" },
  async (b) => {
    const appends: Promise<unknown>[] = [];
    for (let i = 0; i < 512; i++) appends.push(replay.append(record));
    await Promise.all(appends);
    b.start();
    const batch = replay.head(512);
    replay.remove(batch[batch.length - 1]!.seq);
    b.end();
  },
);

globalThis.addEventListener("unload", () => {
  for (const o of [burst, single, replay]) o.close();
  Deno.removeSync(dir, { recursive: true });
});
