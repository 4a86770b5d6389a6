/**
 * Load generators of the throughput runs, one process each so that neither steals the other's
 * event loop:
 *
 * - `flood.ts publish <url> <scenario> <events>` publishes `events` pre-encoded events of the
 *   scenario's pool as fast as the server takes them, awaiting a flush every
 *   {@linkcode FLUSH_EVERY} so that its own memory stays flat; logs `published`. A scenario with
 *   marks gets a start mark before the events and an end mark after them.
 * - `flood.ts count <url> <scenario> <expected>` subscribes to the output subjects, logs
 *   `started`, and once `expected` messages have arrived (or none for {@linkcode IDLE_MS}) logs
 *   `counted` with the time from the first to the last arrival. With marks, it waits for the end
 *   mark too and times the marks instead; with a `sumField`, it sums that field of the outputs
 *   instead of counting them.
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
  MARKS,
  OUTPUT_SUBJECTS,
  report,
  type Scenario,
  scenario,
} from "./_scenarios.ts";

/** Events published between two awaited flushes. */
export const FLUSH_EVERY = 10_000;
/** The counter gives up after this long without a message, once the first has arrived. */
export const IDLE_MS = 5_000;

async function publish(url: string, s: Scenario, events: number): Promise<void> {
  const nc = await connect({ servers: url, name: "bench-flood" });
  const pool = buildPool(s);
  const encoder = new TextEncoder();
  // A fixed, realistic-looking timestamp: the throughput runs do not measure latency.
  const payloads = pool.tails.map((t) => encoder.encode(`{"ts":1718000000000.123${t}`));
  const subjects = pool.subjects;
  const size = subjects.length;
  const start = performance.now();
  if (s.marks) nc.publish(MARKS.source, encoder.encode(`{"mark":"start"}`));
  for (let i = 0; i < events; i++) {
    const k = i % size;
    nc.publish(subjects[k]!, payloads[k]!);
    if (i % FLUSH_EVERY === FLUSH_EVERY - 1) await nc.flush();
  }
  if (s.marks) nc.publish(MARKS.source, encoder.encode(`{"mark":"end"}`));
  await nc.flush();
  report("published", { events, ms: performance.now() - start });
  await nc.close();
}

async function count(url: string, s: Scenario, expected: number): Promise<void> {
  const nc = await connect({ servers: url, name: "bench-count" });
  let n = 0;
  let first = 0;
  let last = 0;
  let marks = 0;
  let markStart = NaN;
  let markEnd = NaN;
  let lastOutput = 0;
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const finished = () => n >= expected && (!s.marks || marks === 2);
  const decoder = new TextDecoder();
  const field = s.sumField;
  for (const subject of OUTPUT_SUBJECTS) {
    nc.subscribe(subject, {
      callback: (_err, msg) => {
        last = performance.now();
        lastOutput = last;
        if (n === 0) first = last;
        if (field === undefined) n++;
        else {
          try {
            n += Number(JSON.parse(decoder.decode(msg.data))[field]) || 0;
          } catch {
            // Not JSON: counts for nothing, and the run shows a loss.
          }
        }
        if (finished()) resolve();
      },
    });
  }
  if (s.marks) {
    nc.subscribe(MARKS.sink, {
      callback: (_err, msg) => {
        const now = performance.now();
        if (decoder.decode(msg.data).includes("start")) markStart = now;
        else markEnd = now;
        marks++;
        last = now;
        if (finished()) resolve();
      },
    });
  }
  // Outputs that come after the end mark (a program that queues events) end the run instead;
  // a window's outputs are its clock's, not the events', so its end is the mark's.
  const markedEnd = () => (field === undefined ? Math.max(markEnd, lastOutput) : markEnd);
  await nc.flush();
  report("started");
  const idle = setInterval(() => {
    if ((n > 0 || marks > 0) && performance.now() - last > IDLE_MS) resolve();
  }, 250);
  await done;
  clearInterval(idle);
  report("counted", {
    received: n,
    expected,
    first_to_last_ms: s.marks ? markedEnd() - markStart : last - first,
  });
  await nc.close();
}

/** In the closed loop, the publisher yields to the event loop after this many events at most. */
const YIELD_EVERY = 256;

async function windowed(url: string, s: Scenario, events: number, window: number): Promise<void> {
  const pub = await connect({ servers: url, name: "bench-window-pub" });
  const sub = await connect({ servers: url, name: "bench-window-sub" });
  const pool = buildPool(s);
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
    const k = sent % pool.subjects.length;
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
  if (mode === "publish" && url && a && b) await publish(url, scenario(a), Number(b));
  else if (mode === "count" && url && a && b) await count(url, scenario(a), Number(b));
  else if (mode === "window" && url && a && b && c) {
    await windowed(url, scenario(a), Number(b), Number(c));
  } else {
    report(
      "usage: flood.ts publish <url> <scenario> <events> | count <url> <scenario> <expected> | " +
        "window <url> <scenario> <events> <window>",
    );
    Deno.exit(2);
  }
}
