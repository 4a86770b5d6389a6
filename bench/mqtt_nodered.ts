/**
 * MQTT → filter → MQTT, three programs on one mosquitto in one run: Sluice (`src/main.ts run` on
 * the `mqtt-filter` scenario's configuration), the hand-written MQTT.js program
 * (`mqtt_baseline.ts`) and Node-RED 5 (`_nodered.ts`: mqtt in → json → switch → mqtt out).
 *
 * Per run: a counter subscribes to the output topic (`mqtt_flood.ts count`), the program under
 * test starts and is ready once the broker logged its subscription, it idles a second, then
 * `mqtt_flood.ts publish` floods N events (≈30 % with `temperature > 30`) with QoS 0.
 *
 * By default the program is stopped (SIGSTOP) during the flood and continued (SIGCONT) once the
 * publisher is done: the events wait in the broker and the program drains them at its own pace.
 * On two cores a publisher that runs at the same time competes for the CPU and, at 35–50k
 * events/s, caps the faster programs (measured): what would be measured is the publisher.
 * `--live` floods while the program runs instead (the publisher's rate is in the report);
 * `--rate R` publishes at a steady R events/s while the program runs: what a gateway sees in
 * service, where CPU per event and memory matter more than the ceiling. Measured:
 * events/s over the first to the last output at the counter (every expected output must arrive),
 * the program's CPU time (user + system, `/proc/<pid>/stat`) over the flood per input event, its
 * peak RSS (`VmHWM`) and its RSS when idle. QoS 0 on every hop. The order of the programs rotates
 * between repetitions; the report gives medians and ranges.
 *
 * mosquitto limits each client's outgoing queue to 1,000 messages and then drops QoS 0 messages
 * too (2.0); a flood outruns every consumer here, so the bench's mosquitto has
 * `max_queued_messages 0` (no limit): the backlog waits in the broker, nothing is lost, and the
 * rate measured is the consumer's.
 *
 * Usage: `deno run -A bench/mqtt_nodered.ts [--events N] [--reps N] [--impls a,b,c]
 * [--live | --rate R]`
 * (defaults 200000, 3, sluice,baseline,nodered). Node-RED and Node 22 are installed into
 * `bench/.cache/node-red` on the first run (npm). Results: `bench/results/mqtt_nodered.{json,md}`
 * (`mqtt_nodered_live.*` with `--live`, `mqtt_nodered_rate<R>.*` with `--rate R`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Mosquitto } from "../dev/mosquitto.ts";
import { type LogRecord, SluiceProcess } from "../dev/sluice_process.ts";
import {
  installNodeRed,
  NODE_RED_CLIENT_ID,
  NODE_RED_VERSION,
  NODE_VERSION,
  NodeRed,
  type NodeRedInstall,
} from "./_nodered.ts";
import { formatFiles } from "./_report.ts";
import { CLOCK_TICKS_PER_S, cpuTicks, machine, procStatus } from "./_proc.ts";
import { BENCH, log } from "./_runner.ts";
import { buildPool, expectedOutputs, MQTT, scenario } from "./_scenarios.ts";
import { summarize } from "./_stats.ts";

const median = (xs: readonly number[]) => summarize(xs).median;

/** The programs compared. */
export type MqttImpl = "sluice" | "baseline" | "nodered";
const IMPLS: readonly MqttImpl[] = ["sluice", "baseline", "nodered"];
const TITLES: Record<MqttImpl, string> = {
  sluice: "Sluice",
  baseline: "hand-written MQTT.js (Deno)",
  nodered: `Node-RED ${NODE_RED_VERSION} (Node ${NODE_VERSION})`,
};
/** Client ids, as the broker logs them when each program subscribes. */
const CLIENT_IDS: Record<MqttImpl, string> = {
  sluice: "sluice-bench",
  baseline: "baseline-bench",
  nodered: NODE_RED_CLIENT_ID,
};
/** Permissions of Sluice: those of `deno task start`. */
const SLUICE_FLAGS = ["--allow-net", "--allow-read", "--allow-env", "--allow-sys=hostname"];
/** Permissions of the bench's MQTT.js children (MQTT.js reads env and files for its defaults). */
const CHILD_FLAGS = [
  "--allow-net=127.0.0.1",
  "--allow-env",
  "--allow-sys=hostname",
  "--allow-read",
];
const IDLE_SETTLE_MS = 1_000;
const READY_TIMEOUT_MS = 60_000;
/**
 * The counter gives up after this long without an output, once the first has arrived: Node-RED
 * went quiet for more than 5 s (the counter's default) in a run on a heavily loaded host.
 */
const COUNTER_IDLE_MS = 30_000;

/**
 * How the events are offered: all at once while the program is paused (`backlog`), as a flood
 * while it runs (`live`), or at a steady rate in events/s.
 */
export type Mode = "backlog" | "live" | number;

/** One run of one program. */
export interface MqttRun {
  eventsPerS: number;
  events: number;
  expected: number;
  received: number;
  /** The program's own count of input events (NaN for Node-RED, which does not report one). */
  consumed: number;
  /** The publisher's rate, to show it outran the program. */
  publishEventsPerS: number;
  cpuUsPerEvent: number;
  /** mosquitto's CPU time over the same interval, per event. */
  brokerCpuUsPerEvent: number;
  peakRssMiB: number;
  idleRssMiB: number;
  /** From spawn to the broker logging the program's subscription. */
  readyMs: number;
}

interface Started {
  pid: number;
  stop(): Promise<void>;
  consumed(): number;
  /** The tail of what the program printed, for a failed run. */
  output(): string;
  [Symbol.asyncDispose](): Promise<void>;
}

function child(file: string, args: string[]): SluiceProcess {
  return SluiceProcess.start(args, {
    runtime: ["deno"],
    entry: BENCH + file,
    denoFlags: CHILD_FLAGS,
  });
}

const summed = (records: readonly LogRecord[]) =>
  records.filter((r) => r.msg === "pipeline summary").reduce((n, r) => n + Number(r.in ?? 0), 0);

function fromSluiceProcess(p: SluiceProcess): Started {
  return {
    pid: p.pid,
    stop: async () => void await p.stop(30_000),
    consumed: () => summed(p.records),
    output: () => p.stderr().slice(-3000),
    [Symbol.asyncDispose]: () => p[Symbol.asyncDispose](),
  };
}

async function start(
  impl: MqttImpl,
  broker: Mosquitto,
  configDir: string,
  install: NodeRedInstall | undefined,
): Promise<Started> {
  if (impl === "baseline") return fromSluiceProcess(child("mqtt_baseline.ts", [broker.url]));
  if (impl === "sluice") {
    return fromSluiceProcess(
      SluiceProcess.start(["run", "--log-format", "json", configDir], {
        runtime: ["deno"],
        denoFlags: SLUICE_FLAGS,
        env: { MQTT_URL: broker.url },
      }),
    );
  }
  const red = await NodeRed.start(install!, broker.port);
  return {
    pid: red.pid,
    stop: () => red.stop(),
    consumed: () => NaN,
    output: () => red.output.slice(-3000),
    [Symbol.asyncDispose]: () => red[Symbol.asyncDispose](),
  };
}

/** The broker's process id: the mosquitto whose command line names its configuration file. */
async function pidOf(broker: Mosquitto): Promise<number> {
  const conf = `${broker.dir}/mosquitto.conf`;
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const cmdline = await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() => "");
    if (cmdline.split("\0").includes(conf)) return Number(e.name);
  }
  throw new Error(`No process runs mosquitto with "${conf}"`);
}

/** How many times the broker logged `id` subscribing to the source filter. */
function subscriptions(broker: Mosquitto, id: string): number {
  const line = ` ${id} 0 ${MQTT.sourceFilter}`;
  return broker.output.split("\n").filter((l) => l.endsWith(line)).length;
}

async function waitForSubscription(
  broker: Mosquitto,
  id: string,
  before: number,
  what: () => string,
): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  while (subscriptions(broker, id) <= before) {
    if (performance.now() > deadline) {
      throw new Error(`${id} did not subscribe within ${READY_TIMEOUT_MS} ms:\n${what()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function run(
  impl: MqttImpl,
  broker: Mosquitto,
  configDir: string,
  install: NodeRedInstall | undefined,
  events: number,
  mode: Mode,
): Promise<MqttRun> {
  const paused = mode === "backlog";
  const s = scenario("mqtt-filter");
  const expected = expectedOutputs(s, buildPool(s), events);
  // Node-RED slows down as its backlog grows (4,662 events/s over 500,000 events, loaded host).
  const timeout = 60_000 + events;
  await using counter = child("mqtt_flood.ts", [
    "count",
    broker.url,
    String(expected),
    String(COUNTER_IDLE_MS),
  ]);
  await counter.waitForMsg("started");
  const before = subscriptions(broker, CLIENT_IDS[impl]);
  const t0 = performance.now();
  await using program = await start(impl, broker, configDir, install);
  await waitForSubscription(broker, CLIENT_IDS[impl], before, () => broker.output.slice(-2000));
  const readyMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
  const idle = await procStatus(program.pid);
  const cpu0 = await cpuTicks(program.pid);
  const brokerPid = await pidOf(broker);
  const broker0 = await cpuTicks(brokerPid);
  // Paused, the program reads nothing: the flood waits in the broker, and the program then
  // drains it at its own pace, with the publisher no longer competing for the CPU.
  if (paused) Deno.kill(program.pid, "SIGSTOP");
  await using publisher = child("mqtt_flood.ts", [
    "publish",
    broker.url,
    s.name,
    String(events),
    ...(typeof mode === "number" ? [String(mode)] : []),
  ]);
  const published = await publisher.waitForMsg("published", timeout);
  if (paused) Deno.kill(program.pid, "SIGCONT");
  const counted = await counter.waitForMsg("counted", timeout).catch((e) => {
    diagnose(impl, broker, program);
    throw e;
  });
  const cpu1 = await cpuTicks(program.pid);
  const broker1 = await cpuTicks(brokerPid);
  const peak = await procStatus(program.pid);
  await program.stop();
  const received = Number(counted.received);
  const result: MqttRun = {
    eventsPerS: events / (Number(counted.first_to_last_ms) / 1000),
    events,
    expected,
    received,
    consumed: program.consumed(),
    publishEventsPerS: events / (Number(published.ms) / 1000),
    cpuUsPerEvent: ((cpu1 - cpu0) / CLOCK_TICKS_PER_S) * 1e6 / events,
    brokerCpuUsPerEvent: ((broker1 - broker0) / CLOCK_TICKS_PER_S) * 1e6 / events,
    peakRssMiB: peak.hwmKiB / 1024,
    idleRssMiB: idle.rssKiB / 1024,
    readyMs,
  };
  if (received !== expected || (impl !== "nodered" && result.consumed !== events)) {
    diagnose(impl, broker, program);
    log(
      `  LOSS: ${impl}: received ${received} of ${expected} outputs, consumed ${result.consumed} of ${events}`,
    );
  }
  return result;
}

/** Logs what the program and the broker said about it, after a run that lost outputs. */
function diagnose(impl: MqttImpl, broker: Mosquitto, program: Started): void {
  const id = CLIENT_IDS[impl];
  const said = broker.output.split("\n").filter((l) => l.includes(id)).slice(-20).join("\n");
  log(`  ${impl} printed:\n${program.output()}\n  mosquitto on ${id}:\n${said}`);
}

const f0 = (x: number) => Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "—";
const f1 = (x: number) => Number.isFinite(x) ? x.toFixed(1) : "—";
const f2 = (x: number) => Number.isFinite(x) ? x.toFixed(2) : "—";

/** `median (min–max)` of one measure over the repetitions. */
function cell(runs: readonly MqttRun[], pick: (r: MqttRun) => number, fmt: (x: number) => string) {
  const x = summarize(runs.map(pick));
  return x.n === 1 ? fmt(x.median) : `${fmt(x.median)} (${fmt(x.min)}–${fmt(x.max)})`;
}

/** The results as a markdown table with ratios against Node-RED and the hand-written program. */
export function markdown(
  meta: Record<string, unknown>,
  runs: Partial<Record<MqttImpl, MqttRun[]>>,
) {
  const lines = [
    `# MQTT → filter → MQTT: Sluice, hand-written MQTT.js, Node-RED`,
    "",
    `${meta.date}; ${meta.events} events per run, ${meta.reps} repetitions; ${meta.machine}; ` +
    `mosquitto ${meta.mosquitto}. Median (min–max). QoS 0 on every hop. ` +
    (meta.mode === "live"
      ? "Live: the flood runs while the program does."
      : meta.mode === "backlog"
      ? "Backlog: the program was paused during the flood and drained it from the broker."
      : `Paced: the events are published at a steady ${meta.mode} events/s.`),
    "",
    "| program | events/s | CPU µs/event | broker CPU µs/event | peak RSS MiB | idle RSS MiB | ready ms | outputs |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const impl of IMPLS) {
    const rs = runs[impl];
    if (!rs?.length) continue;
    const lost = rs.reduce((n, r) => n + r.expected - r.received, 0);
    lines.push(
      `| ${TITLES[impl]} | ${cell(rs, (r) => r.eventsPerS, f0)} | ${
        cell(rs, (r) => r.cpuUsPerEvent, f1)
      } | ${cell(rs, (r) => r.brokerCpuUsPerEvent, f1)} | ${cell(rs, (r) => r.peakRssMiB, f0)} | ${
        cell(rs, (r) => r.idleRssMiB, f0)
      } | ${cell(rs, (r) => r.readyMs, f0)} | ${lost === 0 ? "all" : `${lost} lost`} |`,
    );
  }
  lines.push(
    "",
    "| ratio (per repetition) | events/s | CPU per event | peak RSS |",
    "|---|---:|---:|---:|",
  );
  // Ratios within each repetition (both programs ran minutes apart, not hours), then their median.
  const ratio = (a: MqttImpl, b: MqttImpl, pick: (r: MqttRun) => number) => {
    const as = runs[a] ?? [];
    const bs = runs[b] ?? [];
    const per = as.slice(0, bs.length).map((r, k) => pick(r) / pick(bs[k]!));
    const x = summarize(per);
    return x.n <= 1 ? `${f2(x.median)}×` : `${f2(x.median)}× (${f2(x.min)}–${f2(x.max)})`;
  };
  for (const [a, b] of [["sluice", "baseline"], ["sluice", "nodered"], ["baseline", "nodered"]]) {
    if (!runs[a as MqttImpl]?.length || !runs[b as MqttImpl]?.length) continue;
    const row = (pick: (r: MqttRun) => number) => ratio(a as MqttImpl, b as MqttImpl, pick);
    lines.push(
      `| ${a} / ${b} | ${row((r) => r.eventsPerS)} | ${row((r) => r.cpuUsPerEvent)} | ${
        row((r) => r.peakRssMiB)
      } |`,
    );
  }
  lines.push(
    "",
    `Publisher rate (median): ${
      f0(median(Object.values(runs).flat().map((r) => r.publishEventsPerS)))
    } events/s.`,
    "",
  );
  return lines.join("\n");
}

async function mosquittoVersion(): Promise<string> {
  const out = await new Deno.Command("mosquitto", { args: ["-h"], stdout: "piped" }).output()
    .catch(() => undefined);
  const text = out ? new TextDecoder().decode(out.stdout) : "";
  return /version (\S+)/.exec(text)?.[1] ?? "unknown";
}

/** The command line of the comparison. */
export interface MqttOptions {
  events: number;
  reps: number;
  impls: MqttImpl[];
  mode: Mode;
}

/**
 * Parses the command line.
 *
 * @param argv The arguments.
 * @returns The options, defaults filled in.
 * @throws {RangeError} On an unknown program, a bad number, or `--live` with `--rate`.
 */
export function mqttOptions(argv: readonly string[]): MqttOptions {
  const { values: args } = parseArgs({
    args: [...argv],
    options: {
      events: { type: "string" },
      reps: { type: "string" },
      impls: { type: "string" },
      live: { type: "boolean" },
      rate: { type: "string" },
    },
  });
  const events = Number(args.events ?? 200_000);
  if (!Number.isInteger(events) || events < 1000 || events % 1000 !== 0) {
    throw new RangeError(`--events must be a positive multiple of 1000, got ${args.events}`);
  }
  const reps = Number(args.reps ?? 3);
  if (!Number.isInteger(reps) || reps < 1) {
    throw new RangeError(`--reps must be a positive integer, got ${args.reps}`);
  }
  const impls = (args.impls?.split(",") ?? [...IMPLS]) as MqttImpl[];
  for (const i of impls) {
    if (!IMPLS.includes(i)) {
      throw new RangeError(`--impls: unknown program "${i}": expected ${IMPLS.join(", ")}`);
    }
  }
  const rate = args.rate === undefined ? undefined : Number(args.rate);
  if (rate !== undefined && !(rate > 0 && Number.isFinite(rate))) {
    throw new RangeError(`--rate must be a positive number of events/s, got ${args.rate}`);
  }
  if (rate !== undefined && args.live) {
    throw new RangeError("--live and --rate exclude each other: --live floods, --rate paces");
  }
  return { events, reps, impls, mode: rate ?? (args.live ? "live" : "backlog") };
}

async function main(): Promise<void> {
  const { events, reps, impls, mode } = mqttOptions(Deno.args);
  const install = impls.includes("nodered")
    ? await installNodeRed(`${BENCH}.cache/node-red`)
    : undefined;
  const dir = await Deno.makeTempDir({ prefix: "sluice-bench-mqtt-" });
  await Deno.writeTextFile(`${dir}/bench.yaml`, scenario("mqtt-filter").yaml);
  const mach = await machine();
  const meta: Record<string, unknown> = {
    date: new Date().toISOString(),
    events,
    reps,
    machine: `${mach.nproc} × ${mach.cpu}, Deno ${mach.deno}`,
    mosquitto: await mosquittoVersion(),
    mode,
  };
  const runs: Partial<Record<MqttImpl, MqttRun[]>> = {};
  try {
    await using broker = await Mosquitto.start({
      extraConfig: "max_queued_messages 0\nlog_type subscribe\nlog_dest stderr",
    });
    for (let rep = 0; rep < reps; rep++) {
      // Rotate the order, so that no program always runs first on a cooler machine.
      const order = impls.map((_, k) => impls[(k + rep) % impls.length]!);
      for (const impl of order) {
        const r = await run(impl, broker, dir, install, events, mode);
        (runs[impl] ??= []).push(r);
        log(
          `rep ${rep + 1} ${impl.padEnd(8)} ${f0(r.eventsPerS).padStart(8)} ev/s  cpu ${
            f1(r.cpuUsPerEvent)
          } µs/ev (broker ${f1(r.brokerCpuUsPerEvent)})  peak ${f0(r.peakRssMiB)} MiB  idle ${
            f0(r.idleRssMiB)
          } MiB  ready ${f0(r.readyMs)} ms  out ${r.received}/${r.expected}  publisher ${
            f0(r.publishEventsPerS)
          } ev/s`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const out = `${BENCH}results`;
  const name = mode === "live"
    ? "mqtt_nodered_live"
    : mode === "backlog"
    ? "mqtt_nodered"
    : `mqtt_nodered_rate${mode}`;
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(
    `${out}/${name}.json`,
    JSON.stringify({ meta, runs }, null, 2) + "\n",
  );
  const md = markdown(meta, runs);
  await Deno.writeTextFile(`${out}/${name}.md`, md);
  await formatFiles([`${out}/${name}.json`, `${out}/${name}.md`]);
  log(`\n${md}\nwritten to bench/results/${name}.{json,md}`);
}

if (import.meta.main) await main();
