/**
 * Load generators of the MQTT scenario, the MQTT counterparts of `flood.ts`, one process each:
 *
 * - `mqtt_flood.ts publish <url> <scenario> <events> [rate]` publishes `events` pre-encoded
 *   events of the scenario's pool with QoS 0 on `sensors/temperature/<zone>/<sensor>`, waiting
 *   every {@linkcode FLUSH_EVERY} until the socket took what was written, so its own memory stays
 *   flat; logs `published`. With `rate` (events/s) it paces itself to that steady rate.
 * - `mqtt_flood.ts count <url> <expected> [idle-ms]` subscribes to `alerts/#` with QoS 0, logs
 *   `started`, and once `expected` messages have arrived (or none for `idle-ms`, by default
 *   {@linkcode IDLE_MS}) logs `counted` with the time from the first to the last arrival.
 *
 * @module
 */
import mqtt from "mqtt";
import { buildPool, MQTT, report, type Scenario, scenario } from "./_scenarios.ts";

/** Events published between two waits for the socket. */
export const FLUSH_EVERY = 1_000;
/** A paced publisher checks the clock every this many events. */
export const PACE_EVERY = 50;
/** The counter gives up after this long without a message, once the first has arrived. */
export const IDLE_MS = 5_000;

async function publish(url: string, s: Scenario, events: number, rate?: number): Promise<void> {
  const client = await mqtt.connectAsync(url, {
    clientId: "bench-flood",
    clean: true,
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  const pool = buildPool(s);
  const encoder = new TextEncoder();
  const payloads = pool.tails.map((t) => encoder.encode(`{"ts":1718000000000.123${t}`));
  const topics = pool.subjects.map((subject) => subject.replaceAll(".", "/"));
  const size = topics.length;
  const start = performance.now();
  for (let i = 0; i < events; i++) {
    const k = i % size;
    if (rate !== undefined && i % PACE_EVERY === 0) {
      // Paced: wait until this event is due, so the offered rate is steady.
      const due = start + (i / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    if (i % FLUSH_EVERY === FLUSH_EVERY - 1) {
      // A QoS 0 publish calls back once its packet is written to the socket.
      await client.publishAsync(topics[k]!, payloads[k]! as Buffer, { qos: 0 });
    } else client.publish(topics[k]!, payloads[k]! as Buffer, { qos: 0 });
  }
  await client.endAsync();
  report("published", { events, ms: performance.now() - start });
}

async function count(url: string, expected: number, idleMs = IDLE_MS): Promise<void> {
  const client = await mqtt.connectAsync(url, {
    clientId: "bench-count",
    clean: true,
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  let n = 0;
  let first = 0;
  let last = 0;
  const { promise: done, resolve } = Promise.withResolvers<void>();
  client.on("message", () => {
    last = performance.now();
    if (n++ === 0) first = last;
    if (n === expected) resolve();
  });
  await client.subscribeAsync(MQTT.outputFilter, { qos: 0 });
  report("started");
  const idle = setInterval(() => {
    if (n > 0 && performance.now() - last > idleMs) resolve();
  }, 250);
  await done;
  clearInterval(idle);
  report("counted", { received: n, expected, first_to_last_ms: last - first });
  await client.endAsync();
}

if (import.meta.main) {
  const [mode, url, a, b, c] = Deno.args;
  if (mode === "publish" && url && a && b) {
    await publish(url, scenario(a), Number(b), c ? Number(c) : undefined);
  } else if (mode === "count" && url && a) await count(url, Number(a), b ? Number(b) : undefined);
  else {
    report(
      "usage: mqtt_flood.ts publish <url> <scenario> <events> [rate] | count <url> <expected> [idle-ms]",
    );
    Deno.exit(2);
  }
}
