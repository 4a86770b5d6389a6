/**
 * Load generators of the throughput runs, one process each so that neither steals the other's
 * event loop:
 *
 * - `flood.ts publish <url> <events> <malformed:0|1>` publishes `events` pre-encoded events as
 *   fast as the server takes them, awaiting a flush every {@linkcode FLUSH_EVERY} so that its own
 *   memory stays flat; logs `published`.
 * - `flood.ts count <url> <expected>` subscribes to the output subjects, logs `started`, and once
 *   `expected` messages have arrived (or none for {@linkcode IDLE_MS}) logs `counted` with the
 *   times of the first and the last arrival.
 *
 * @module
 */
import { connect } from "@nats-io/transport-node";
import { buildPool, OUTPUT_SUBJECTS, POOL_SIZE, report } from "./_scenarios.ts";

/** Events published between two awaited flushes. */
export const FLUSH_EVERY = 10_000;
/** The counter gives up after this long without a message, once the first has arrived. */
export const IDLE_MS = 5_000;

async function publish(url: string, events: number, malformed: boolean): Promise<void> {
  const nc = await connect({ servers: url, name: "bench-flood" });
  const pool = buildPool(malformed);
  const encoder = new TextEncoder();
  // A fixed, realistic-looking timestamp: the throughput runs do not measure latency.
  const payloads = pool.tails.map((t) => encoder.encode(`{"ts":1718000000000.123${t}`));
  const subjects = pool.subjects;
  const start = performance.now();
  for (let i = 0; i < events; i++) {
    const k = i % POOL_SIZE;
    nc.publish(subjects[k]!, payloads[k]!);
    if (i % FLUSH_EVERY === FLUSH_EVERY - 1) await nc.flush();
  }
  await nc.flush();
  report("published", { events, ms: performance.now() - start });
  await nc.close();
}

async function count(url: string, expected: number): Promise<void> {
  const nc = await connect({ servers: url, name: "bench-count" });
  let n = 0;
  let first = 0;
  let last = 0;
  const { promise: done, resolve } = Promise.withResolvers<void>();
  for (const subject of OUTPUT_SUBJECTS) {
    nc.subscribe(subject, {
      callback: () => {
        last = performance.now();
        if (n++ === 0) first = last;
        if (n === expected) resolve();
      },
    });
  }
  await nc.flush();
  report("started");
  const idle = setInterval(() => {
    if (n > 0 && performance.now() - last > IDLE_MS) resolve();
  }, 250);
  await done;
  clearInterval(idle);
  report("counted", { received: n, expected, first_to_last_ms: last - first });
  await nc.close();
}

if (import.meta.main) {
  const [mode, url, a, b] = Deno.args;
  if (mode === "publish" && url && a) await publish(url, Number(a), b === "1");
  else if (mode === "count" && url && a) await count(url, Number(a));
  else {
    report("usage: flood.ts publish <url> <events> <0|1> | count <url> <expected>");
    Deno.exit(2);
  }
}
