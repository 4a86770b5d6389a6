/**
 * Runs one measurement at a time: spawns the program under test (the hand-written baseline or
 * the real CLI) and the load generators, reads the program's memory and CPU time, and checks
 * that every event is accounted for. The orchestration of a whole run is in `main.ts`.
 *
 * @module
 */
import { type JetStreamManager, StorageType } from "@nats-io/jetstream";
import type { NatsServer } from "../dev/nats_server.ts";
import { runBundleTask } from "../dev/tasks.ts";
import { type LogRecord, REPO_ROOT, SluiceProcess } from "../dev/sluice_process.ts";
import type { Options } from "./_options.ts";
import { CLOCK_TICKS_PER_S, cpuTicks, type ProcStatus, procStatus } from "./_proc.ts";
import { fmtInt } from "./_report.ts";
import { type Impl, type LatencyRun, lostIn, type ThroughputRun } from "./_results.ts";
import {
  BENCH_DIR,
  buildPool,
  expectedOutputs,
  JETSTREAM,
  MARKS_PIPELINE,
  type Scenario,
} from "./_scenarios.ts";

/** What the runner needs of an MQTT broker (the launcher in `dev/`). */
export interface MqttBroker {
  /** `mqtt://127.0.0.1:<port>`. */
  readonly url: string;
}

/** Permissions of Sluice: those of `deno task start`. */
const SLUICE_FLAGS = ["--allow-net", "--allow-read", "--allow-env", "--allow-sys=hostname"];
/** Permissions of the bench's own children: loopback only. */
const CHILD_FLAGS = ["--allow-net=127.0.0.1", "--allow-env", "--allow-sys=hostname"];
/**
 * How long a program under test stays idle after `started` before its idle RSS is read: long
 * enough for start-up's garbage to be collected and late module work to be done; the figure is
 * what a gateway holds between bursts.
 */
const IDLE_SETTLE_MS = 1_000;
/** The bench's folder, where its programs and results are. */
export const BENCH = `${REPO_ROOT}bench/`;

/**
 * One nats-server, one scratch directory and the options of the run: measures one
 * implementation on one scenario per call.
 */
export class Bench {
  readonly #server: NatsServer;
  readonly #dir: string;
  readonly #o: Options;
  /** The bench's own connection: creates, fills, inspects and deletes the JetStream streams. */
  readonly #jsm: JetStreamManager;
  /** The MQTT broker of the MQTT scenario, when one runs. */
  readonly #mqtt: MqttBroker | undefined;
  /** The bundle Sluice runs from with `--bundle`; set by {@link prepare}. */
  #bundle: string | undefined;
  /** Ingest rate of the current fill of the source stream. */
  #ingest = NaN;

  constructor(
    server: NatsServer,
    dir: string,
    o: Options,
    jsm: JetStreamManager,
    mqtt?: MqttBroker,
  ) {
    this.#server = server;
    this.#dir = dir;
    this.#o = o;
    this.#jsm = jsm;
    this.#mqtt = mqtt;
  }

  get #mqttUrl(): string {
    if (!this.#mqtt) throw new Error("The MQTT scenario needs an MQTT broker: none was started");
    return this.#mqtt.url;
  }

  /** Where outbox files go; Sluice may write there. */
  get #data(): string {
    return `${this.#dir}/data`;
  }

  /** The JetStream and MQTT scenarios, several times slower per event, get `--js-events`. */
  #events(s: Scenario): number {
    return s.transport === "core" ? this.#o.events : this.#o.jsEvents;
  }

  /**
   * Spawns a bench program (`bench/<file>`) with loopback-only permissions (and reading files:
   * MQTT.js looks for its defaults).
   */
  #child(file: string, args: string[], shipped = false): SluiceProcess {
    const flags = file.startsWith("mqtt_") ? [...CHILD_FLAGS, "--allow-read"] : CHILD_FLAGS;
    return SluiceProcess.start(args, {
      runtime: ["deno"],
      entry: BENCH + file,
      // With --shipped, the hand-written programs get Sluice's memory settings too: the
      // comparison is of the programs, not of the settings.
      denoFlags: shipped ? [`--v8-flags=${this.#o.v8Flags}`, ...flags] : flags,
      ...(shipped ? { env: this.#o.sluiceEnv } : {}),
    });
  }

  /**
   * Flags for what runs as Sluice: `src/main.ts` with the repository's configuration, or with
   * `--bundle` the bundle built in {@link prepare} ({@link #bundle}, the entry then) with
   * `--no-config`, as the service's drop-in and the `sluice` command run it.
   */
  #programFlags(): string[] {
    return this.#bundle ? ["--no-config"] : [];
  }

  /** The environment of Sluice: the brokers' URLs its configuration names. */
  #env(s: Scenario): Record<string, string> {
    return {
      NATS_URL: this.#server.url,
      ...(s.transport === "mqtt" ? { MQTT_URL: this.#mqttUrl } : {}),
    };
  }

  /** Spawns the consumer under test. */
  #consumer(impl: Impl, s: Scenario, profile = false): SluiceProcess {
    if (impl === "baseline" && s.transport === "mqtt") {
      return this.#child("mqtt_baseline.ts", [this.#mqttUrl], this.#o.shipped);
    }
    if (impl === "baseline") {
      const settings = {
        batch: this.#o.jsBatch,
        maxAckPending: this.#o.jsMaxAckPending,
        noAsyncTraces: this.#o.baselineNoAsyncTraces || undefined,
        configStack: this.#o.baselineConfigStack || undefined,
      };
      return this.#child(
        "baseline.ts",
        [this.#server.url, s.name, JSON.stringify(settings)],
        this.#o.shipped,
      );
    }
    const prof = profile && this.#o.cpuProf
      ? ["--cpu-prof", `--cpu-prof-dir=${this.#o.cpuProf}`]
      : [];
    return SluiceProcess.start(["run", "--log-format", "json", `${this.#dir}/${s.name}`], {
      runtime: ["deno"],
      entry: this.#bundle,
      denoFlags: [
        ...prof,
        ...(this.#o.v8Flags ? [`--v8-flags=${this.#o.v8Flags}`] : []),
        ...this.#programFlags(),
        ...SLUICE_FLAGS,
        `--allow-write=${this.#data}`,
      ],
      env: { ...this.#o.sluiceEnv, ...this.#env(s) },
    });
  }

  /**
   * Writes the configuration of every scenario to be run and runs `sluice check` on it:
   * validates the configs and warms the module cache.
   */
  async prepare(): Promise<void> {
    await Deno.mkdir(this.#data, { recursive: true });
    if (!this.#o.impls.includes("sluice")) return;
    if (this.#o.bundle) {
      this.#bundle = `${this.#dir}/sluice.js`;
      await runBundleTask(this.#bundle, "deno");
    }
    for (const s of new Set([...this.#o.scenarios, ...this.#o.latencyScenarios])) {
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
      // With the V8 flags of the runs: V8 takes Deno's cache of compiled code only from a run with
      // the same flags, and a run that cannot compiles again and holds more memory.
      await using check = SluiceProcess.start(["check", dir], {
        runtime: ["deno"],
        entry: this.#bundle,
        denoFlags: [
          ...(this.#o.v8Flags ? [`--v8-flags=${this.#o.v8Flags}`] : []),
          ...this.#programFlags(),
          ...SLUICE_FLAGS,
          `--allow-write=${this.#data}`,
        ],
        env: this.#env(s),
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
        s.name,
        String(events),
      ]);
      const published = await publisher.waitForMsg("published", 60_000 + events / 20);
      // Core publishes are stored behind the server's answer to the publisher's flush: wait.
      const stored = await this.#waitForMessages(JETSTREAM.sourceStream, events, 30_000);
      if (stored !== events) {
        throw new Error(`The source stream holds ${stored} of ${events} events after the fill`);
      }
      this.#ingest = events / (Number(published.ms) / 1000);
    }
    if (stores(s)) {
      await this.#jsm.streams.add({
        name: JETSTREAM.sinkStream,
        subjects: [JETSTREAM.sinkSubject],
        storage: StorageType.File,
      });
    }
  }

  /** After a scenario's runs: removes its stream, so that no other scenario's events are stored. */
  async tearDown(s: Scenario): Promise<void> {
    const streams = [
      ...(s.transport === "jetstream-source" ? [JETSTREAM.sourceStream] : []),
      ...(stores(s) ? [JETSTREAM.sinkStream] : []),
    ];
    for (const stream of streams) await this.#jsm.streams.delete(stream).catch(() => false);
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
    }
    if (stores(s)) await this.#jsm.streams.purge(JETSTREAM.sinkStream);
    if (s.transport === "jetstream-sink") {
      // An outbox left by an earlier run would be replayed into this one.
      for await (const e of Deno.readDir(this.#data)) {
        await Deno.remove(`${this.#data}/${e.name}`, { recursive: true });
      }
    }
    const events = this.#events(s);
    const expected = expectedOutputs(s, buildPool(s), events);
    const timeout = 60_000 + events / 20;
    // The window driver counts the outputs itself; the others have a separate counter.
    await using counter = s.transport === "jetstream-sink"
      ? undefined
      : s.transport === "mqtt"
      ? this.#child("mqtt_flood.ts", ["count", this.#mqttUrl, String(expected)])
      : this.#child("flood.ts", ["count", this.#server.url, s.name, String(expected)]);
    await counter?.waitForMsg("started");
    const t0 = performance.now();
    await using consumer = this.#consumer(impl, s, true);
    await consumer.waitForMsg("started", 30_000);
    const readyMs = performance.now() - t0;
    // A JetStream source starts consuming the filled stream as it starts: the few milliseconds
    // between `started` and this reading are not in its CPU time (a fraction of a per cent).
    const subscribed = await procStatus(consumer.pid);
    // Idle: connected and subscribed, no traffic yet, after start-up's work has settled (a
    // JetStream source is never idle here: it is already consuming).
    let idle: ProcStatus | undefined;
    if (s.transport !== "jetstream-source") {
      await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
      idle = await procStatus(consumer.pid);
    }
    const slow0 = (await this.#server.varz())["slow_consumers"];
    const cpu0 = await cpuTicks(consumer.pid);
    // The server's CPU: nats-server's; the MQTT scenario's broker is not measured.
    const serverPid = s.transport === "mqtt" ? undefined : this.#server.pid!;
    const server0 = serverPid === undefined ? NaN : await cpuTicks(serverPid);
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
      : s.transport === "mqtt"
      ? this.#child("mqtt_flood.ts", ["publish", this.#mqttUrl, s.name, String(events)])
      : this.#child("flood.ts", ["publish", this.#server.url, s.name, String(events)]);
    const published = await publisher?.waitForMsg("published", timeout);
    const counted = await (counter ?? publisher!).waitForMsg("counted", timeout);
    const cpu1 = await cpuTicks(consumer.pid);
    const server1 = serverPid === undefined ? NaN : await cpuTicks(serverPid);
    const peak = await procStatus(consumer.pid);
    const slowConsumers = (await this.#server.varz())["slow_consumers"] - slow0;
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
    }
    if (stores(s)) {
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
      subscribedRssMiB: subscribed.rssKiB / 1024,
      idleRssMiB: idle ? idle.rssKiB / 1024 : NaN,
      cpuUsPerEvent: ((cpu1 - cpu0) / CLOCK_TICKS_PER_S) * 1e6 / events,
      serverCpuUsPerEvent: ((server1 - server0) / CLOCK_TICKS_PER_S) * 1e6 / events,
      slowConsumers,
      sent: total((r) => Number(r.passed ?? 0) + Number(r["dead_lettered"] ?? 0)),
      ...js,
    };
    if (lostIn(run) !== 0) {
      run.failures = failureLines(consumer.records);
      log(
        `  LOSS: ${impl} ${s.name}: received ${received} of ${expected} outputs, consumed ${consumed} of ${events} events` +
          (run.sinkErrors ? `, ${run.sinkErrors} sink errors` : "") +
          (run.serverAcked === undefined
            ? ""
            : `, server ack floor ${run.serverAcked}, ${run.serverPending} pending`) +
          (run.stored === undefined ? "" : `, ${run.stored} stored`) +
          `; the program says it sent ${run.sent}` +
          (slowConsumers > 0
            ? `; nats-server cut off ${slowConsumers} slow consumer(s): a receiver fell behind`
            : "") +
          (run.failures.length > 0 ? `; it logged: ${run.failures.join(" | ")}` : ""),
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
export function jetstreamNote(r: ThroughputRun): string {
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

/** The per-pipeline summaries of the events under test (not of the marks' pipeline). */
function summaries(records: readonly LogRecord[]): LogRecord[] {
  return records.filter((r) => r.msg === "pipeline summary" && r.pipeline !== MARKS_PIPELINE);
}

/**
 * Writes one line of progress to stderr.
 *
 * @param line The line, without its newline.
 */
export function log(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
}

/** Whether a scenario's outputs go into the sink stream (created, purged and checked per run). */
function stores(s: Scenario): boolean {
  return s.transport === "jetstream-sink" || s.storesOutputs === true;
}

/** The program's warnings about failed events, as `message: reason` lines (at most 5). */
function failureLines(records: readonly LogRecord[]): string[] {
  return records
    .filter((r) => r.msg === "event rejected" || r.msg === "jetstream publish failed")
    .slice(0, 5)
    .map((r) => `${r.msg}: ${String(r.reason ?? r.error ?? "")}`);
}
