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
 *   show every message acked, none pending and none redelivered;
 * - `jetstream-sink` and `outbox`: `flood.ts window` publishes core events in a closed loop, at
 *   most `--window` outputs outstanding (below `max_in_flight`, so no send overflows), and counts
 *   the outputs; afterwards the sink stream must hold exactly the expected number of messages.
 *
 * They use `--js-events` events per run (a quarter of `--events` by default). For diagnosis,
 * `--js-batch N` and `--js-max-ack-pending N` change the source's pull batch and consumer limit in
 * both programs, and `--baseline-no-async-traces` turns nats.js's per-request stack capture off in
 * the baseline only; the results record them.
 *
 * Each measurement is repeated; the report gives the median and the range. Results go to
 * `bench/results/latest.{json,md}` (`quick.{json,md}` with `--quick`).
 *
 * Options: `--quick` (one repetition, fewer events, latency of the main scenario only: under a
 * minute), `--reps N`, `--events N`, `--js-events N`, `--window N`, `--scenarios a,b`,
 * `--no-latency`, `--no-throughput`,
 * `--impl baseline|sluice`, `--cpu-prof DIR` (profile Sluice in the throughput runs),
 * `--max-pending SIZE` and `--v8-flags FLAGS` (diagnosis: change Sluice's settings, recorded in
 * the results), `--render FILE.json` (only rewrite the markdown of a results file).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type JetStreamManager, jetstreamManager, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { NatsServer } from "../dev/nats_server.ts";
import { type LogRecord, REPO_ROOT, SluiceProcess } from "../dev/sluice_process.ts";
import {
  BENCH_DIR,
  buildPool,
  expectedOutputs,
  JETSTREAM,
  POOL_SIZE,
  type Scenario,
  scenario,
  SCENARIOS,
} from "./_scenarios.ts";
import { summarize, type Summary } from "./_stats.ts";

/** Implementations under test. */
type Impl = "baseline" | "sluice";

/** Permissions of Sluice: those of `deno task start`. */
const SLUICE_FLAGS = ["--allow-net", "--allow-read", "--allow-env", "--allow-sys=hostname"];
/** Permissions of the bench's own children: loopback only. */
const CHILD_FLAGS = ["--allow-net=127.0.0.1", "--allow-env", "--allow-sys=hostname"];
const BENCH = `${REPO_ROOT}bench/`;
const CLOCK_TICKS_PER_S = 100;

interface Options {
  quick: boolean;
  reps: number;
  events: number;
  /** Events per run of the JetStream scenarios. */
  jsEvents: number;
  /** Outputs outstanding in the closed loop of the JetStream sink scenarios. */
  window: number;
  /** Diagnosis: pull batch and `max_ack_pending` of the JetStream source, in both programs. */
  jsBatch: number | undefined;
  jsMaxAckPending: number | undefined;
  /** Diagnosis: nats.js `noAsyncTraces` in the baseline. */
  baselineNoAsyncTraces: boolean;
  scenarios: Scenario[];
  latencyScenarios: Scenario[];
  phases: { rate: number; seconds: number }[];
  throughput: boolean;
  impls: Impl[];
  cpuProf: string | undefined;
  /** Overrides the connector's `max_pending` (diagnosis only; the report says so). */
  maxPending: string | undefined;
  /** V8 flags for Sluice (`--v8-flags=...`), to try memory settings; the report says so. */
  v8Flags: string | undefined;
  /** Only rewrite the markdown report from this results file. */
  render: string | undefined;
}

function options(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      reps: { type: "string" },
      events: { type: "string" },
      "js-events": { type: "string" },
      window: { type: "string" },
      "js-batch": { type: "string" },
      "js-max-ack-pending": { type: "string" },
      "baseline-no-async-traces": { type: "boolean", default: false },
      scenarios: { type: "string" },
      "no-latency": { type: "boolean", default: false },
      "no-throughput": { type: "boolean", default: false },
      impl: { type: "string" },
      "cpu-prof": { type: "string" },
      "max-pending": { type: "string" },
      "v8-flags": { type: "string" },
      render: { type: "string" },
    },
  });
  const quick = values.quick;
  const scenarios = values.scenarios ? values.scenarios.split(",").map(scenario) : [...SCENARIOS];
  const events = Number(values.events ?? (quick ? 150_000 : 1_000_000));
  const jsEvents = Number(
    values["js-events"] ?? Math.max(POOL_SIZE, Math.round(events / 4 / POOL_SIZE) * POOL_SIZE),
  );
  for (const [flag, n] of [["--events", events], ["--js-events", jsEvents]] as const) {
    if (!Number.isInteger(n) || n < POOL_SIZE || n % POOL_SIZE !== 0) {
      throw new RangeError(`${flag} must be a positive multiple of ${POOL_SIZE}, got ${n}`);
    }
  }
  const window = Number(values.window ?? JETSTREAM.maxInFlight / 2);
  if (!Number.isInteger(window) || window < 1) {
    throw new RangeError(`--window must be a positive integer, got ${values.window}`);
  }
  const impl = values.impl;
  if (impl !== undefined && impl !== "baseline" && impl !== "sluice") {
    throw new RangeError(`--impl must be baseline or sluice, got "${impl}"`);
  }
  const positive = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${flag} must be a positive integer`);
    return n;
  };
  return {
    quick,
    reps: Number(values.reps ?? (quick ? 1 : 3)),
    events,
    jsEvents,
    window,
    jsBatch: positive("--js-batch", values["js-batch"]),
    jsMaxAckPending: positive("--js-max-ack-pending", values["js-max-ack-pending"]),
    baselineNoAsyncTraces: values["baseline-no-async-traces"],
    scenarios: values["no-throughput"] ? [] : scenarios,
    // The latency driver publishes to core NATS and its phases assume a core source.
    latencyScenarios: values["no-latency"]
      ? []
      : quick
      ? scenarios.filter((s) => s.name === "filter")
      : scenarios.filter((s) => s.transport === "core"),
    phases: quick
      ? [{ rate: 1_000, seconds: 1 }, { rate: 5_000, seconds: 1 }, { rate: 20_000, seconds: 1 }]
      : [{ rate: 1_000, seconds: 8 }, { rate: 5_000, seconds: 4 }, { rate: 20_000, seconds: 3 }],
    throughput: !values["no-throughput"],
    impls: impl ? [impl] : ["baseline", "sluice"],
    cpuProf: values["cpu-prof"],
    maxPending: values["max-pending"],
    v8Flags: values["v8-flags"],
    render: values.render,
  };
}

/** One throughput run of one implementation. */
interface ThroughputRun {
  eventsPerS: number;
  events: number;
  expected: number;
  received: number;
  /** Sum of the consumer's own `in` counts. */
  consumed: number;
  publishMs: number;
  windowMs: number;
  readyMs: number;
  peakRssMiB: number;
  /** Anonymous (private) part of the resident set at the end of the run, without mapped files. */
  endAnonMiB: number;
  /** Mapped files (mostly the deno executable) in the resident set at the end of the run. */
  endFileMiB: number;
  idleRssMiB: number;
  cpuUsPerEvent: number;
  /** CPU time of nats-server over the same interval, per event. */
  serverCpuUsPerEvent?: number;
  /** Sends the program refused or that failed (`sink_errors`; the baseline's `errors`). */
  sinkErrors?: number;
  /** JetStream source: messages the program says it acked. */
  acked?: number;
  /** JetStream source: the consumer's ack floor on the server after the run (= events when all acked). */
  serverAcked?: number;
  /** JetStream source: messages still pending or unacked on the server after the run. */
  serverPending?: number;
  /** JetStream source: messages the server delivered more than once. */
  redelivered?: number;
  /** JetStream source: rate at which the server stored the core publishes of the stream's fill. */
  ingestEventsPerS?: number;
  /** JetStream sink: messages in the sink stream after the run. */
  stored?: number;
}

/** Events or outputs a run did not account for: 0 in every valid run. */
function lostIn(x: ThroughputRun): number {
  return (x.expected - x.received) + (x.events - x.consumed) +
    (x.serverAcked === undefined ? 0 : x.events - x.serverAcked + (x.serverPending ?? 0)) +
    (x.stored === undefined ? 0 : x.expected - x.stored) + (x.sinkErrors ?? 0);
}

/** One latency phase of one implementation. */
interface LatencyPhase {
  rate: number;
  sent: number;
  expected: number;
  received: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

interface LatencyRun {
  phases: LatencyPhase[];
  readyMs: number;
  peakRssMiB: number;
}

class Bench {
  readonly #server: NatsServer;
  readonly #dir: string;
  readonly #o: Options;
  /** The bench's own connection: creates, fills, inspects and deletes the JetStream streams. */
  readonly #jsm: JetStreamManager;
  /** Ingest rate of the current fill of the source stream. */
  #ingest = NaN;

  constructor(server: NatsServer, dir: string, o: Options, jsm: JetStreamManager) {
    this.#server = server;
    this.#dir = dir;
    this.#o = o;
    this.#jsm = jsm;
  }

  /** Where outbox files go; Sluice may write there. */
  get #data(): string {
    return `${this.#dir}/data`;
  }

  #events(s: Scenario): number {
    return s.transport === "core" ? this.#o.events : this.#o.jsEvents;
  }

  /** Spawns a bench program (`bench/<file>`) with loopback-only permissions. */
  #child(file: string, args: string[]): SluiceProcess {
    return SluiceProcess.start(args, {
      runtime: ["deno"],
      entry: BENCH + file,
      denoFlags: CHILD_FLAGS,
    });
  }

  /** Spawns the consumer under test. */
  #consumer(impl: Impl, s: Scenario, profile = false): SluiceProcess {
    if (impl === "baseline") {
      const settings = {
        batch: this.#o.jsBatch,
        maxAckPending: this.#o.jsMaxAckPending,
        noAsyncTraces: this.#o.baselineNoAsyncTraces || undefined,
      };
      return this.#child("baseline.ts", [this.#server.url, s.name, JSON.stringify(settings)]);
    }
    const prof = profile && this.#o.cpuProf
      ? ["--cpu-prof", `--cpu-prof-dir=${this.#o.cpuProf}`]
      : [];
    return SluiceProcess.start(["run", "--log-format", "json", `${this.#dir}/${s.name}`], {
      runtime: ["deno"],
      denoFlags: [
        ...prof,
        ...(this.#o.v8Flags ? [`--v8-flags=${this.#o.v8Flags}`] : []),
        ...SLUICE_FLAGS,
        `--allow-write=${this.#data}`,
      ],
      env: { NATS_URL: this.#server.url },
    });
  }

  /** Runs `sluice check` once per scenario: validates the configs and warms the module cache. */
  async prepare(): Promise<void> {
    await Deno.mkdir(this.#data, { recursive: true });
    for (const s of SCENARIOS) {
      const dir = `${this.#dir}/${s.name}`;
      await Deno.mkdir(dir, { recursive: true });
      let yaml = (this.#o.maxPending === undefined
        ? s.yaml
        : s.yaml.replace("    name: sluice-bench\n", `$&    max_pending: ${this.#o.maxPending}\n`))
        .replaceAll(BENCH_DIR, this.#data);
      if (this.#o.jsBatch) {
        yaml = yaml.replace(/^( +batch: )\d+$/m, `$1${this.#o.jsBatch}`);
      }
      if (this.#o.jsMaxAckPending) {
        yaml = yaml.replace(/^( +max_ack_pending: )\d+$/m, `$1${this.#o.jsMaxAckPending}`);
      }
      await Deno.writeTextFile(`${dir}/bench.yaml`, yaml);
      await using check = SluiceProcess.start(["check", dir], {
        runtime: ["deno"],
        denoFlags: [...SLUICE_FLAGS, `--allow-write=${this.#data}`],
        env: { NATS_URL: this.#server.url },
      });
      const status = await check.status;
      if (status.code !== 0) {
        throw new Error(`Sluice rejected the bench config of "${s.name}":\n${check.stderr()}`);
      }
    }
  }

  /**
   * Before a scenario's runs: a JetStream source scenario gets its stream, filled with the
   * events; a sink scenario gets an empty sink stream.
   */
  async setUp(s: Scenario): Promise<void> {
    if (s.transport === "jetstream-source") {
      const events = this.#events(s);
      await this.#jsm.streams.add({
        name: JETSTREAM.sourceStream,
        subjects: ["sensors.temperature.>"],
        storage: StorageType.File,
      });
      await using publisher = this.#child("flood.ts", [
        "publish",
        this.#server.url,
        String(events),
        "0",
      ]);
      const published = await publisher.waitForMsg("published", 60_000 + events / 20);
      // Core publishes are stored behind the server's answer to the publisher's flush: wait.
      const stored = await this.#waitForMessages(JETSTREAM.sourceStream, events, 30_000);
      if (stored !== events) {
        throw new Error(`The source stream holds ${stored} of ${events} events after the fill`);
      }
      this.#ingest = events / (Number(published.ms) / 1000);
    } else if (s.transport === "jetstream-sink") {
      await this.#jsm.streams.add({
        name: JETSTREAM.sinkStream,
        subjects: [JETSTREAM.sinkSubject],
        storage: StorageType.File,
      });
    }
  }

  /** After a scenario's runs: removes its stream, so that no other scenario's events are stored. */
  async tearDown(s: Scenario): Promise<void> {
    const stream = s.transport === "jetstream-source"
      ? JETSTREAM.sourceStream
      : s.transport === "jetstream-sink"
      ? JETSTREAM.sinkStream
      : undefined;
    if (stream) await this.#jsm.streams.delete(stream).catch(() => false);
  }

  async #waitForMessages(stream: string, want: number, ms: number): Promise<number> {
    const deadline = performance.now() + ms;
    let n = 0;
    for (;;) {
      n = (await this.#jsm.streams.info(stream)).state.messages;
      if (n >= want || performance.now() > deadline) return n;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async throughput(impl: Impl, s: Scenario): Promise<ThroughputRun> {
    if (s.transport === "jetstream-source") {
      await this.#jsm.consumers.delete(JETSTREAM.sourceStream, JETSTREAM.durable).catch(() =>
        false
      );
    } else if (s.transport === "jetstream-sink") {
      await this.#jsm.streams.purge(JETSTREAM.sinkStream);
      // An outbox left by an earlier run would be replayed into this one.
      for await (const e of Deno.readDir(this.#data)) {
        await Deno.remove(`${this.#data}/${e.name}`, { recursive: true });
      }
    }
    const events = this.#events(s);
    const expected = expectedOutputs(s, buildPool(s.malformed), events);
    const timeout = 60_000 + events / 20;
    // The window driver counts the outputs itself; the others have a separate counter.
    await using counter = s.transport === "jetstream-sink"
      ? undefined
      : this.#child("flood.ts", ["count", this.#server.url, String(expected)]);
    await counter?.waitForMsg("started");
    const t0 = performance.now();
    await using consumer = this.#consumer(impl, s, true);
    await consumer.waitForMsg("started", 30_000);
    const readyMs = performance.now() - t0;
    // A JetStream source starts consuming the filled stream as it starts: the few milliseconds
    // between `started` and this reading are not in its CPU time (a fraction of a per cent).
    const idle = await procStatus(consumer.pid);
    const cpu0 = await cpuTicks(consumer.pid);
    const server0 = await cpuTicks(this.#server.pid!);
    await using publisher = s.transport === "jetstream-source"
      ? undefined
      : s.transport === "jetstream-sink"
      ? this.#child("flood.ts", [
        "window",
        this.#server.url,
        s.name,
        String(events),
        String(this.#o.window),
      ])
      : this.#child("flood.ts", [
        "publish",
        this.#server.url,
        String(events),
        s.malformed ? "1" : "0",
      ]);
    const published = await publisher?.waitForMsg("published", timeout);
    const counted = await (counter ?? publisher!).waitForMsg("counted", timeout);
    const cpu1 = await cpuTicks(consumer.pid);
    const server1 = await cpuTicks(this.#server.pid!);
    const peak = await procStatus(consumer.pid);
    await consumer.stop(30_000);
    const sums = summaries(consumer.records);
    const total = (f: (r: LogRecord) => unknown) => sums.reduce((n, r) => n + Number(f(r) ?? 0), 0);
    const consumed = total((r) => r.in);
    const windowMs = Number(counted.first_to_last_ms);
    const received = Number(counted.received);
    const js: Partial<ThroughputRun> = {};
    if (s.transport !== "core") {
      js.sinkErrors = total((r) => impl === "baseline" ? r.errors : r.sink_errors);
    }
    if (s.transport === "jetstream-source") {
      const info = await this.#jsm.consumers.info(JETSTREAM.sourceStream, JETSTREAM.durable);
      js.acked = total((r) => r.acked);
      js.serverAcked = info.ack_floor.stream_seq;
      js.serverPending = info.num_pending + info.num_ack_pending;
      js.redelivered = info.num_redelivered;
      js.ingestEventsPerS = this.#ingest;
    } else if (s.transport === "jetstream-sink") {
      js.stored = (await this.#jsm.streams.info(JETSTREAM.sinkStream)).state.messages;
    }
    const run: ThroughputRun = {
      eventsPerS: events / (windowMs / 1000),
      events,
      expected,
      received,
      consumed,
      publishMs: published ? Number(published.ms) : NaN,
      windowMs,
      readyMs,
      peakRssMiB: peak.hwmKiB / 1024,
      endAnonMiB: peak.anonKiB / 1024,
      endFileMiB: peak.fileKiB / 1024,
      idleRssMiB: idle.rssKiB / 1024,
      cpuUsPerEvent: ((cpu1 - cpu0) / CLOCK_TICKS_PER_S) * 1e6 / events,
      serverCpuUsPerEvent: ((server1 - server0) / CLOCK_TICKS_PER_S) * 1e6 / events,
      ...js,
    };
    if (lostIn(run) !== 0) {
      log(
        `  LOSS: ${impl} ${s.name}: received ${received} of ${expected} outputs, consumed ${consumed} of ${events} events` +
          (run.sinkErrors ? `, ${run.sinkErrors} sink errors` : "") +
          (run.serverAcked === undefined
            ? ""
            : `, server ack floor ${run.serverAcked}, ${run.serverPending} pending`) +
          (run.stored === undefined ? "" : `, ${run.stored} stored`),
      );
    }
    return run;
  }

  async latency(impl: Impl | "floor", s: Scenario): Promise<LatencyRun> {
    const phases = this.#o.phases.map((p) => `${p.rate}:${p.seconds}`).join(",");
    const t0 = performance.now();
    await using consumer = impl === "floor" ? undefined : this.#consumer(impl, s);
    await consumer?.waitForMsg("started", 30_000);
    const readyMs = performance.now() - t0;
    const args = [this.#server.url, s.name, phases, ...(impl === "floor" ? ["direct"] : [])];
    await using driver = this.#child("latency.ts", args);
    const seconds = this.#o.phases.reduce((t, p) => t + p.seconds + 2, 5);
    await driver.waitForMsg("finished", seconds * 1000 + 30_000);
    const peak = consumer ? (await procStatus(consumer.pid)).hwmKiB / 1024 : NaN;
    await consumer?.stop(30_000);
    const result = driver.records.filter((r) => r.msg === "phase").map((r) => ({
      rate: Number(r.rate),
      sent: Number(r.sent),
      expected: Number(r.expected),
      received: Number(r.received),
      p50: Number(r.p50_ms),
      p99: Number(r.p99_ms),
      p999: Number(r.p999_ms),
      max: Number(r.max_ms),
    }));
    for (const p of result) {
      if (p.received !== p.expected) {
        log(`  LOSS: ${impl} ${s.name} @${p.rate}/s: received ${p.received} of ${p.expected}`);
      }
    }
    return { phases: result, readyMs, peakRssMiB: peak };
  }
}

/** The JetStream checks of a run, for the progress log. */
function jetstreamNote(r: ThroughputRun): string {
  const parts: string[] = [];
  if (r.sinkErrors !== undefined) parts.push(`sink errors ${r.sinkErrors}`);
  if (r.serverAcked !== undefined) {
    parts.push(
      `acked ${r.acked} (server: floor ${r.serverAcked}, pending ${r.serverPending}, redelivered ${r.redelivered})`,
      `stream ingest ${fmtInt(r.ingestEventsPerS ?? NaN)} ev/s`,
    );
  }
  if (r.stored !== undefined) parts.push(`stored ${r.stored}`);
  return parts.length ? `  ${parts.join("  ")}` : "";
}

function summaries(records: readonly LogRecord[]): LogRecord[] {
  return records.filter((r) => r.msg === "pipeline summary");
}

/**
 * Deno grants `/proc` only with `--allow-all`; `cat` (allowed by name) reads it instead.
 */
async function readProc(path: string): Promise<string> {
  const out = await new Deno.Command("cat", { args: [path], stderr: "null" }).output();
  if (!out.success) throw new Error(`Cannot read "${path}"`);
  return new TextDecoder().decode(out.stdout);
}

async function procStatus(
  pid: number,
): Promise<{ rssKiB: number; hwmKiB: number; anonKiB: number; fileKiB: number }> {
  const text = await readProc(`/proc/${pid}/status`);
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1]);
  return {
    rssKiB: field("VmRSS"),
    hwmKiB: field("VmHWM"),
    anonKiB: field("RssAnon"),
    fileKiB: field("RssFile"),
  };
}

/** User plus system CPU time of a process, in clock ticks (fields 14 and 15 of `stat`). */
async function cpuTicks(pid: number): Promise<number> {
  const text = await readProc(`/proc/${pid}/stat`);
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
}

/** Formats written reports like the rest of the repository, so `deno fmt --check` passes. */
async function formatFiles(files: string[]): Promise<void> {
  const out = await new Deno.Command("deno", {
    args: ["fmt", "--quiet", ...files],
    cwd: REPO_ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) log(`deno fmt failed: ${new TextDecoder().decode(out.stderr)}`);
}

async function machine(): Promise<Record<string, string | number>> {
  const cpuinfo = await readProc("/proc/cpuinfo");
  const nats = await new Deno.Command("nats-server", { args: ["--version"] }).output()
    .then((o) => new TextDecoder().decode(o.stdout).trim(), () => "unknown");
  return {
    nproc: navigator.hardwareConcurrency,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    nats_server: nats.replace(/^nats-server:\s*/, ""),
  };
}

// ---- report -------------------------------------------------------------------------------------

interface Results {
  meta: Record<string, unknown>;
  throughput: Record<string, Partial<Record<Impl, ThroughputRun[]>>>;
  latency: Record<string, Partial<Record<Impl | "floor", LatencyRun[]>>>;
}

// NaN (nothing measured) is written as null in the JSON file.
const known = (n: number | null): n is number => typeof n === "number" && !Number.isNaN(n);
const fmtInt = (n: number) => known(n) ? Math.round(n).toLocaleString("en-US") : "–";
const fmt = (n: number, digits = 1) => known(n) ? n.toFixed(digits) : "–";

function range(s: Summary, f: (n: number) => string): string {
  if (s.n === 0) return "–";
  return s.n === 1 ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

function pick<T>(runs: readonly T[] | undefined, f: (r: T) => number): Summary {
  return summarize((runs ?? []).map(f));
}

/** Per-repetition ratios sluice/baseline: both ran back to back under the same conditions. */
function ratios(r: Partial<Record<Impl, ThroughputRun[]>>): Summary {
  const b = r.baseline ?? [];
  const s = r.sluice ?? [];
  return summarize(s.map((x, i) => x.eventsPerS / (b[i]?.eventsPerS ?? NaN)));
}

/** The targets of issue 6, each with the measured median and whether it is met. */
function targets(res: Results, ready: Summary): string[] {
  const ratio = (name: string) => {
    const r = res.throughput[name];
    return r ? ratios(r).median : NaN;
  };
  const p99At5k = summarize(
    (res.latency.filter?.sluice ?? []).map((x) =>
      x.phases.find((p) => p.rate === 5_000)?.p99 ?? NaN
    ),
  ).median;
  const peaks = Object.entries(res.throughput).map(([name, r]) =>
    [name, pick(r.sluice, (x) => x.peakRssMiB).median] as const
  );
  const worst = peaks.reduce<readonly [string, number]>(
    (w, p) => (p[1] > w[1] ? p : w),
    ["", -Infinity],
  );
  const peak = worst[1] === -Infinity ? NaN : worst[1];
  const filterPeak = peaks.find(([name]) => name === "filter")?.[1] ?? NaN;
  const at20k = summarize(
    Object.values(res.latency).map((r) => pick(r.sluice, (x) => x.peakRssMiB).median),
  ).max;
  const row = (what: string, value: string, met: boolean | undefined) =>
    `| ${what} | ${value} | ${met === undefined ? "not measured" : met ? "met" : "**not met**"} |`;
  const check = (n: number, ok: (n: number) => boolean) => known(n) ? ok(n) : undefined;
  return [
    "### Targets (medians)",
    "",
    "| target | measured | |",
    "| --- | --: | --- |",
    row(
      "JSON filter: sluice ≥ 0.9 × baseline",
      fmt(ratio("filter"), 2),
      check(ratio("filter"), (n) => n >= 0.9),
    ),
    row(
      "10 pipelines on one connector ≥ 0.8 × 10 subscriptions",
      fmt(ratio("pipelines-10"), 2),
      check(ratio("pipelines-10"), (n) => n >= 0.8),
    ),
    row("p99 at 5k events/s < 5 ms", `${fmt(p99At5k, 2)} ms`, check(p99At5k, (n) => n < 5)),
    row(
      "peak RSS at full load < 80 MB (76.3 MiB)",
      `${fmt(filterPeak, 0)} MiB (JSON filter), worst ${fmt(peak, 0)} MiB (${worst[0]})`,
      check(peak, (n) => n * 1024 * 1024 < 80e6),
    ),
    row(
      "(for reference) peak RSS at a steady 20k events/s",
      `${fmt(at20k, 0)} MiB (worst scenario)`,
      check(at20k, (n) => n * 1024 * 1024 < 80e6),
    ),
    row(
      "start to ready < 500 ms",
      `${fmt(ready.median, 0)} ms`,
      check(ready.median, (n) => n < 500),
    ),
    "",
  ];
}

/** What the JetStream runs were checked against, and the server's share of the work. */
function jetstreamTable(
  res: Results,
  rows: [string, Partial<Record<Impl, ThroughputRun[]>>][],
): string[] {
  const meta = res.meta as Record<string, unknown>;
  const lines = [
    "### JetStream scenarios: server side and checks",
    "",
    `Source: pull batch ${meta.js_batch}, \`max_ack_pending\` ${meta.js_max_ack_pending}; ` +
    `sink: \`max_in_flight\` ${JETSTREAM.maxInFlight}, closed loop of ${meta.window} outputs ` +
    `outstanding${meta.baseline_no_async_traces ? "; baseline with nats.js `noAsyncTraces`" : ""}.`,
    "",
    "| scenario | nats-server CPU µs/event baseline / sluice | checked after every run (all runs) |",
    "| --- | --: | --- |",
  ];
  for (const [name, r] of rows) {
    const runs = [...(r.baseline ?? []), ...(r.sluice ?? [])];
    const server = (impl: Impl) =>
      fmt(pick(r[impl], (x) => x.serverCpuUsPerEvent ?? NaN).median, 2);
    const sum = (f: (x: ThroughputRun) => number) => runs.reduce((n, x) => n + f(x), 0);
    let checks: string;
    if (scenario(name).transport === "jetstream-source") {
      const ok = runs.filter((x) => x.serverAcked === x.events && x.serverPending === 0).length;
      checks =
        `${ok} of ${runs.length} runs: every event acked (server ack floor = events), none ` +
        `pending; ${sum((x) => x.redelivered ?? 0)} redelivered; stream filled at ${
          fmtInt(summarize(runs.map((x) => x.ingestEventsPerS ?? NaN)).median)
        } events/s (core publishes)`;
    } else {
      const ok = runs.filter((x) => x.stored === x.expected).length;
      checks = `${ok} of ${runs.length} runs: sink stream holds exactly the expected ${
        fmtInt(runs[0]?.expected ?? NaN)
      } messages; ${sum((x) => x.sinkErrors ?? 0)} sink errors (overflows)`;
    }
    lines.push(`| ${name} | ${server("baseline")} / ${server("sluice")} | ${checks} |`);
  }
  lines.push("");
  return lines;
}

function markdown(res: Results): string {
  const m = res.meta as {
    machine: Record<string, unknown>;
    reps: number;
    events: number;
    js_events?: number;
  };
  const lines: string[] = [];
  lines.push(
    `Machine: ${m.machine.nproc} × ${m.machine.cpu}, Deno ${m.machine.deno} (V8 ${m.machine.v8}), ` +
      `nats-server ${m.machine.nats_server}. ${m.reps} repetition${m.reps === 1 ? "" : "s"}; ` +
      `median (min–max). Run at ${res.meta.date}${res.meta.quick ? " (--quick)" : ""}.`,
    "",
  );
  const tp = Object.entries(res.throughput);
  const isJs = ([name]: [string, unknown]) => scenario(name).transport !== "core";
  if (tp.length > 0) {
    const jsEvents = tp.some(isJs) && m.js_events !== undefined && m.js_events !== m.events
      ? `, ${fmtInt(m.js_events)} in the JetStream scenarios`
      : "";
    lines.push(
      `### Sustained throughput (${
        fmtInt(m.events)
      } events per run${jsEvents}; ≈30 % pass the filter)`,
      "",
      "| scenario | baseline events/s | sluice events/s | sluice / baseline | CPU µs/event baseline / sluice | peak RSS MiB baseline / sluice | sluice RSS at end: private + files MiB | lost |",
      "| --- | --: | --: | --: | --: | --: | --: | --: |",
    );
    for (const [name, r] of tp) {
      const lost = [...(r.baseline ?? []), ...(r.sluice ?? [])].reduce(
        (n, x) => n + lostIn(x),
        0,
      );
      lines.push(
        `| ${name} | ${range(pick(r.baseline, (x) => x.eventsPerS), fmtInt)} | ${
          range(pick(r.sluice, (x) => x.eventsPerS), fmtInt)
        } | ${range(ratios(r), (n) => fmt(n, 2))} | ${
          fmt(pick(r.baseline, (x) => x.cpuUsPerEvent).median, 2)
        } / ${fmt(pick(r.sluice, (x) => x.cpuUsPerEvent).median, 2)} | ${
          fmt(pick(r.baseline, (x) => x.peakRssMiB).median, 0)
        } / ${range(pick(r.sluice, (x) => x.peakRssMiB), (n) => fmt(n, 0))} | ${
          fmt(pick(r.sluice, (x) => x.endAnonMiB).median, 0)
        } + ${fmt(pick(r.sluice, (x) => x.endFileMiB).median, 0)} | ${lost} |`,
      );
    }
    lines.push("");
    const js = tp.filter(isJs);
    if (js.length > 0) lines.push(...jetstreamTable(res, js));
  }
  const lat = Object.entries(res.latency);
  if (lat.length > 0) {
    const rates = (res.meta.phases as { rate: number }[]).map((p) => p.rate);
    lines.push(
      "### End-to-end latency at a fixed offered rate (ms, p50 / p99 / p99.9)",
      "",
      `| scenario | program | ${
        rates.map((r) => `${r / 1000}k events/s`).join(" | ")
      } | peak RSS MiB |`,
      `| --- | --- | ${rates.map(() => "--:").join(" | ")} | --: |`,
    );
    for (const [name, r] of lat) {
      for (const impl of ["floor", "baseline", "sluice"] as const) {
        const runs = r[impl];
        if (!runs || runs.length === 0) continue;
        const cells = rates.map((rate) => {
          const ph = runs.map((x) => x.phases.find((p) => p.rate === rate));
          const get = (f: (p: LatencyPhase) => number) =>
            summarize(ph.map((p) => (p ? f(p) : NaN)));
          const p99 = get((p) => p.p99);
          return `${fmt(get((p) => p.p50).median, 2)} / ${
            p99.n > 1 ? `${fmt(p99.median, 2)} (${fmt(p99.min, 2)}–${fmt(p99.max, 2)})` : fmt(
              p99.median,
              2,
            )
          } / ${fmt(get((p) => p.p999).median, 2)}`;
        });
        const label = impl === "floor" ? "one hop (no consumer)" : impl;
        lines.push(
          `| ${impl === "floor" ? "–" : name} | ${label} | ${cells.join(" | ")} | ${
            fmt(pick(runs, (x) => x.peakRssMiB).median, 0)
          } |`,
        );
      }
    }
    lines.push("");
  }
  const readies = (impl: Impl) =>
    summarize([
      ...Object.values(res.throughput).flatMap((r) => (r[impl] ?? []).map((x) => x.readyMs)),
      ...Object.values(res.latency).flatMap((r) => (r[impl] ?? []).map((x) => x.readyMs)),
    ]);
  const idle = (impl: Impl) =>
    summarize(
      Object.values(res.throughput).flatMap((r) => (r[impl] ?? []).map((x) => x.idleRssMiB)),
    );
  lines.push(
    "### Start-up",
    "",
    "| program | spawn to subscribed (ms) | RSS when subscribed (MiB) |",
    "| --- | --: | --: |",
    `| baseline | ${range(readies("baseline"), (n) => fmt(n, 0))} | ${
      range(idle("baseline"), (n) => fmt(n, 0))
    } |`,
    `| sluice | ${range(readies("sluice"), (n) => fmt(n, 0))} | ${
      range(idle("sluice"), (n) => fmt(n, 0))
    } |`,
    "",
  );
  lines.push(...targets(res, readies("sluice")));
  return lines.join("\n");
}

// ---- main ---------------------------------------------------------------------------------------

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
  const started = performance.now();
  // JetStream is enabled for the JetStream scenarios; the core scenarios use no stream.
  await using server = await NatsServer.start({ jetstream: true });
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
      phases: o.phases,
      max_pending: o.maxPending ?? "default",
      sluice_v8_flags: o.v8Flags ?? "",
      machine: await machine(),
    },
    throughput: {},
    latency: {},
  };
  try {
    nc = await connect({ servers: server.url, name: "bench-admin" });
    const bench = new Bench(server, dir, o, await jetstreamManager(nc));
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
