/**
 * The latency driver: publishes events at fixed offered rates with the send time in the payload,
 * and on a second connection receives the outputs and measures the time from send to arrival.
 * Both ends read one clock (`performance.now()` of this process).
 *
 * Usage: `latency.ts <url> <scenario> <rate:seconds,...> [direct]`, e.g. `1000:5,5000:4`. A
 * warm-up second precedes the phases and is not measured. With `direct` the driver subscribes to
 * the source subjects itself: the one-hop floor of the server and the client library. Logs one
 * `phase` record per rate with the percentiles, then `finished`.
 *
 * @module
 */
import { connect } from "@nats-io/transport-node";
import {
  buildPool,
  OUTPUT_SUBJECTS,
  report,
  type Scenario,
  scenario,
  timestampOf,
} from "./_scenarios.ts";
import { percentile } from "./_stats.ts";

/** Rate and length of the unmeasured warm-up. */
const WARMUP = { rate: 2_000, seconds: 1 };
/** After the last send of a phase, how long to wait for stragglers before counting them lost. */
const DRAIN_MS = 2_000;

interface Phase {
  rate: number;
  seconds: number;
}

function parsePhases(text: string): Phase[] {
  return text.split(",").map((p) => {
    const [rate, seconds] = p.split(":").map(Number);
    if (!(rate! > 0) || !(seconds! > 0)) throw new RangeError(`Invalid phase "${p}"`);
    return { rate: rate!, seconds: seconds! };
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(url: string, s: Scenario, phases: Phase[], direct: boolean): Promise<void> {
  const pub = await connect({ servers: url, name: "bench-latency-pub" });
  const sub = await connect({ servers: url, name: "bench-latency-sub" });
  const pool = buildPool(s);
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let samples: number[] = [];
  let phaseStart = 0;
  for (const subject of direct ? ["sensors.temperature.>"] : OUTPUT_SUBJECTS) {
    sub.subscribe(subject, {
      callback: (_err, msg) => {
        const now = performance.now();
        const sent = timestampOf(decoder.decode(msg.data));
        // Outputs of an earlier phase (or of the warm-up) arriving late are not this phase's.
        if (sent >= phaseStart) samples.push(now - sent);
      },
    });
  }
  await sub.flush();

  let k = 0;
  const run = async (phase: Phase): Promise<{ sent: number; expected: number }> => {
    const total = Math.round(phase.rate * phase.seconds);
    let sent = 0;
    let expected = 0;
    const start = performance.now();
    while (sent < total) {
      const due = Math.min(total, Math.floor((performance.now() - start) * phase.rate / 1000) + 1);
      for (; sent < due; sent++) {
        const i = k++ % pool.subjects.length;
        const ts = performance.now().toFixed(3);
        pub.publish(pool.subjects[i]!, encoder.encode(`{"ts":${ts}${pool.tails[i]}`));
        expected += direct ? 1 : s.outputs(pool, i);
      }
      await sleep(1);
    }
    await pub.flush();
    const deadline = performance.now() + DRAIN_MS;
    while (samples.length < expected && performance.now() < deadline) await sleep(10);
    return { sent, expected };
  };

  phaseStart = performance.now();
  await run(WARMUP);
  for (const phase of phases) {
    samples = [];
    phaseStart = performance.now();
    const { sent, expected } = await run(phase);
    const received = samples.length;
    samples.sort((a, b) => a - b);
    report("phase", {
      rate: phase.rate,
      seconds: phase.seconds,
      sent,
      expected,
      received,
      p50_ms: percentile(samples, 0.5),
      p99_ms: percentile(samples, 0.99),
      p999_ms: percentile(samples, 0.999),
      max_ms: samples[samples.length - 1] ?? NaN,
    });
  }
  report("finished");
  await pub.close();
  await sub.close();
}

if (import.meta.main) {
  const [url, name, phases, direct] = Deno.args;
  if (url === undefined || name === undefined || phases === undefined) {
    report("usage: latency.ts <url> <scenario> <rate:seconds,...> [direct]");
    Deno.exit(2);
  }
  await main(url, scenario(name), parsePhases(phases), direct === "direct");
}
