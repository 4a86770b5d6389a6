/**
 * `deno task bench`: Sluice against a hand-written nats.js program, on one nats-server started
 * for the run, on the same event stream.
 *
 * For every scenario of `_scenarios.ts` and both implementations (the hand-written
 * `baseline.ts` and the real CLI, `src/main.ts run`):
 *
 * - sustained throughput: `flood.ts publish` sends N events faster than the consumer takes them;
 *   `flood.ts count` receives every output and times the first to the last; every expected
 *   output must arrive and the consumer's own `in` count must equal N;
 * - end-to-end latency at fixed offered rates (`latency.ts`, send time in the payload, measured on
 *   a separate connection);
 * - peak RSS (`VmHWM`) and CPU time of the consumer, and the time from spawn to `started`.
 *
 * The JetStream scenarios (on the same server, started with JetStream) are driven differently:
 *
 * - `jetstream-source`: the events are published into a file stream first (its ingest rate is
 *   recorded), then the program under test consumes them with a fresh durable pull consumer; the
 *   window is again first to last output, and afterwards the consumer's state on the server must
 *   show every message acked, none pending and none redelivered; `jetstream-forward` is the same
 *   with the matches published into a second stream, which must then hold exactly the expected
 *   number of messages;
 * - `jetstream-sink` and `outbox`: `flood.ts window` publishes core events in a closed loop, at
 *   most `--window` outputs outstanding (below `max_in_flight`, so no send overflows), and counts
 *   the outputs; afterwards the sink stream must hold exactly the expected number of messages.
 *
 * The processor scenarios (`map-dedupe`, `dedupe-10k`, `window-1k`) are timed between a start
 * and an end mark that a pass-through pipeline forwards in order with the events (see
 * `_scenarios.ts`). The MQTT scenario (`mqtt-filter`) runs the same way on a mosquitto, with
 * `mqtt_flood.ts` and the MQTT.js baseline `mqtt_baseline.ts`.
 *
 * The JetStream and MQTT scenarios use `--js-events` events per run (a quarter of `--events` by
 * default). For diagnosis,
 * `--js-batch N` and `--js-max-ack-pending N` change the source's pull batch and consumer limit in
 * both programs, `--baseline-no-async-traces` turns nats.js's per-request stack capture off in
 * the baseline only, and `--baseline-config-stack` makes the baseline load a small configuration
 * with yaml, zod and CEL first (what those libraries alone hold: the floor of a configurable
 * program's memory); the results record them.
 *
 * Each measurement is repeated; the report gives the median and the range. Results go to
 * `bench/results/latest.{json,md}` (`quick.{json,md}` with `--quick`).
 *
 * Options: `--quick` (one repetition, fewer events, latency of the main scenario only: about
 * 90 s), `--reps N`, `--events N`, `--js-events N`, `--window N`, `--scenarios a,b`,
 * `--no-latency`, `--no-throughput`,
 * `--impl baseline|sluice`, `--cpu-prof DIR` (profile Sluice in the throughput runs),
 * `--shipped` (run Sluice with the start task's V8 flags and environment, as it is shipped, and
 * the hand-written programs alike; without it, plain `deno run`), `--bundle` (run Sluice from a
 * bundle built as the `bundle` task builds it, instead of `src/main.ts`), `--max-pending SIZE`
 * and `--v8-flags FLAGS` (diagnosis: change Sluice's settings, recorded in the results),
 * `--render FILE.json` (only rewrite the markdown of a results file).
 *
 * @module
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { Mosquitto } from "../dev/mosquitto.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { launchText, type Options, options, shippedLaunch } from "./_options.ts";
import { machine } from "./_proc.ts";
import { fmt, fmtInt, formatFiles, markdown } from "./_report.ts";
import type { Impl, Results } from "./_results.ts";
import { BENCH, Bench, jetstreamNote, log } from "./_runner.ts";
import { JETSTREAM } from "./_scenarios.ts";

/**
 * The MQTT broker of the MQTT scenario: a mosquitto on a free loopback port, when it runs. Its
 * per-client queue is unbounded: by default mosquitto drops QoS 0 messages to a subscriber that
 * is more than 1,000 behind, and a flood would then measure the broker's drops, not the program.
 */
async function mqttBroker(o: Options): Promise<Mosquitto | undefined> {
  if (!o.scenarios.some((s) => s.transport === "mqtt")) return undefined;
  return await Mosquitto.start({ extraConfig: "max_queued_messages 0" });
}

async function main(): Promise<void> {
  const o = options(Deno.args);
  if (o.render !== undefined) {
    const res = JSON.parse(await Deno.readTextFile(o.render)) as Results;
    const md = o.render.replace(/\.json$/, "") + ".md";
    await Deno.writeTextFile(md, markdown(res));
    await formatFiles([md]);
    log(`written to ${md}`);
    return;
  }
  await shippedLaunch(o);
  const started = performance.now();
  // JetStream is enabled for the JetStream scenarios; the core scenarios use no stream.
  await using server = await NatsServer.start({ jetstream: true });
  await using mqtt = await mqttBroker(o);
  const dir = await Deno.makeTempDir({ prefix: "sluice-bench-" });
  let nc: NatsConnection | undefined;
  const results: Results = {
    meta: {
      date: new Date().toISOString(),
      quick: o.quick,
      reps: o.reps,
      events: o.events,
      js_events: o.jsEvents,
      window: o.window,
      js_batch: o.jsBatch ?? JETSTREAM.batch,
      js_max_ack_pending: o.jsMaxAckPending ?? JETSTREAM.maxAckPending,
      baseline_no_async_traces: o.baselineNoAsyncTraces,
      baseline_config_stack: o.baselineConfigStack,
      phases: o.phases,
      max_pending: o.maxPending ?? "default",
      sluice_v8_flags: o.v8Flags ?? "",
      sluice_env: o.sluiceEnv,
      sluice_launch: launchText(o),
      machine: await machine(),
    },
    throughput: {},
    latency: {},
  };
  try {
    nc = await connect({ servers: server.url, name: "bench-admin" });
    const bench = new Bench(server, dir, o, await jetstreamManager(nc), mqtt);
    await bench.prepare();
    for (let rep = 0; rep < o.reps; rep++) {
      // Alternate the order, so that neither program always runs on a warmer machine.
      const impls = rep % 2 === 0 ? o.impls : [...o.impls].reverse();
      for (const s of o.scenarios) {
        const entry = results.throughput[s.name] ??= {};
        await bench.setUp(s);
        try {
          for (const impl of impls) {
            const r = await bench.throughput(impl, s);
            (entry[impl] ??= []).push(r);
            log(
              `rep ${rep + 1} throughput ${s.name.padEnd(12)} ${impl.padEnd(8)} ${
                fmtInt(r.eventsPerS).padStart(9)
              } ev/s  cpu ${fmt(r.cpuUsPerEvent, 2)} µs/ev (server ${
                fmt(r.serverCpuUsPerEvent ?? NaN, 2)
              })  peak ${fmt(r.peakRssMiB, 0)} MiB  ready ${
                fmt(r.readyMs, 0)
              } ms  out ${r.received}/${r.expected} in ${r.consumed}/${r.events}${
                jetstreamNote(r)
              }`,
            );
          }
        } finally {
          await bench.tearDown(s);
        }
      }
      for (const s of o.latencyScenarios) {
        const entry = results.latency[s.name] ??= {};
        const order: (Impl | "floor")[] = s === o.latencyScenarios[0] ? ["floor", ...impls] : impls;
        for (const impl of order) {
          const r = await bench.latency(impl, s);
          (entry[impl] ??= []).push(r);
          log(
            `rep ${rep + 1} latency    ${s.name.padEnd(12)} ${impl.padEnd(8)} ${
              r.phases.map((p) =>
                `${p.rate}/s ${fmt(p.p50, 2)}/${fmt(p.p99, 2)}/${fmt(p.p999, 2)} ms`
              ).join("  ")
            }  peak ${fmt(r.peakRssMiB, 0)} MiB`,
          );
        }
      }
    }
  } finally {
    await nc?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  results.meta.seconds = Math.round((performance.now() - started) / 1000);
  const name = o.quick ? "quick" : "latest";
  const out = `${BENCH}results`;
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(`${out}/${name}.json`, JSON.stringify(results, null, 2) + "\n");
  const md = markdown(results);
  await Deno.writeTextFile(`${out}/${name}.md`, md);
  await formatFiles([`${out}/${name}.json`, `${out}/${name}.md`]);
  log(`\n${md}\nwritten to bench/results/${name}.{json,md} in ${results.meta.seconds} s`);
}

if (import.meta.main) await main();
