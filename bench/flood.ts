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
 * - `flood.ts window <url> <scenario> <events> <window>` does both in one process, in a closed
 *   loop: it publishes only while fewer than `window` of the outputs it has caused are still to
 *   arrive, so that a sink that bounds what is in flight (a JetStream sink's `max_in_flight`) is
 *   kept busy without being overrun; logs `published` and `counted` like the two above.
 *
 * @module
 */
import { connect } from "@nats-io/transport-node";
import { setImmediate } from "node:timers";
import {
  buildPool,
  OUTPUT_SUBJECTS,
  POOL_SIZE,
  report,
  type Scenario,
  scenario,
} from "./_scenarios.ts";

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

/** In the closed loop, the publisher yields to the event loop after this many events at most. */
const YIELD_EVERY = 256;

async function windowed(url: string, s: Scenario, events: number, window: number): Promise<void> {
  const pub = await connect({ servers: url, name: "bench-window-pub" });
  const sub = await connect({ servers: url, name: "bench-window-sub" });
  const pool = buildPool(s.malformed);
  const encoder = new TextEncoder();
  const payloads = pool.tails.map((t) => encoder.encode(`{"ts":1718000000000.123${t}`));
  const outputs = pool.tails.map((_, i) => s.outputs(pool, i));
  let caused = 0;
  let received = 0;
  let first = 0;
  let last = 0;
  let room: (() => void) | undefined;
  for (const subject of OUTPUT_SUBJECTS) {
    sub.subscribe(subject, {
      callback: () => {
        last = performance.now();
        if (received++ === 0) first = last;
        if (room && caused - received < window) {
          room();
          room = undefined;
        }
      },
    });
  }
  await sub.flush();
  const start = performance.now();
  const idle = () => performance.now() - Math.max(last, start) > IDLE_MS;
  // Outputs that never come (a loss) would stop the loop for good: give up after IDLE_MS.
  let stalled = false;
  const watchdog = setInterval(() => {
    if (room && idle()) {
      stalled = true;
      room();
    }
  }, 250);
  let sent = 0;
  for (; sent < events && !stalled; sent++) {
    if (caused - received >= window) {
      await new Promise<void>((resolve) => room = resolve);
      room = undefined;
      if (stalled) break;
    } else if (sent % YIELD_EVERY === 0) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    const k = sent % POOL_SIZE;
    pub.publish(pool.subjects[k]!, payloads[k]!);
    caused += outputs[k]!;
  }
  clearInterval(watchdog);
  await pub.flush();
  report("published", { events: sent, ms: performance.now() - start });
  while (received < caused && !idle()) await new Promise((r) => setTimeout(r, 50));
  report("counted", { received, expected: caused, first_to_last_ms: last - first });
  await pub.close();
  await sub.close();
}

if (import.meta.main) {
  const [mode, url, a, b, c] = Deno.args;
  if (mode === "publish" && url && a) await publish(url, Number(a), b === "1");
  else if (mode === "count" && url && a) await count(url, Number(a));
  else if (mode === "window" && url && a && b && c) {
    await windowed(url, scenario(a), Number(b), Number(c));
  } else {
    report(
      "usage: flood.ts publish <url> <events> <0|1> | count <url> <expected> | " +
        "window <url> <scenario> <events> <window>",
    );
    Deno.exit(2);
  }
}
