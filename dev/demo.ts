// deno-lint-ignore-file no-console
/**
 * `deno task demo [--seconds N]`: Sluice end to end on this machine, with nothing to set up but
 * nats-server.
 *
 * Starts a local nats-server on free loopback ports, runs Sluice as a child process with the
 * example configuration (`connectors/`, `pipelines/`), simulates a fleet of six sensors and two
 * energy meters on three sites, and prints what Sluice publishes: alerts (`alerts.>`), per-site
 * readings (`sites.>`), alarms routed by `when` (`alarms.>`), what goes up the uplink
 * (`uplink.>`: temperatures reported by exception, per-site meter averages per minute) and dead
 * letters (`dlq.>`, with their `Sluice-Error` header). Where mosquitto is installed it also runs the
 * MQTT gateway of `examples/gateway/` (two devices on a local broker, a second Sluice reporting
 * them to the NATS uplink on `gw-01.>`). Stops on Ctrl-C or after N seconds
 * (default 20) and shows Sluice's per-pipeline summary.
 *
 * Permissions (see the `demo` task in deno.json): `--allow-run` is not narrowed to a list because
 * the demo runs Deno itself through `Deno.execPath()`, whose path is only known at run time (an
 * npm-installed Deno lives under node_modules, not where `deno` on PATH points), and a list entry
 * must name the executable in advance. `--allow-write=/tmp` covers the server's temporary
 * directory, which the demo makes under /tmp explicitly.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import mqtt, { type MqttClient } from "mqtt";
import { Mosquitto } from "./mosquitto.ts";
import { NatsServer, NatsServerNotFoundError } from "./nats_server.ts";

/** The repository root: Sluice runs there, with its example configuration. */
const REPO_ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);
/** Where the server's temporary directory is made; matches `--allow-write=/tmp` in the task. */
const TEMP_ROOT = "/tmp";
/** Permissions of the Sluice child: the same as `deno task start`, network narrowed. */
const SLUICE_FLAGS = [
  "--allow-net=127.0.0.1",
  "--allow-read",
  "--allow-env",
  "--allow-sys=hostname",
];
const SLUICE_START_TIMEOUT_MS = 60_000;
const SLUICE_STOP_TIMEOUT_MS = 15_000;
const PUBLISH_INTERVAL_MS = 250;
const DEFAULT_SECONDS = 20;

const USAGE = `Usage: deno task demo [--seconds N]

Runs nats-server, Sluice with connectors/ and pipelines/, and a simulated sensor fleet, and prints
what Sluice publishes. Stops after N seconds (default ${DEFAULT_SECONDS}) or on Ctrl-C.`;

interface Sensor {
  id: string;
  kind: "temperature" | "humidity";
  site: string;
  value: number;
  /** Random walk bounds: each site has its own climate, so some sites run hot. */
  min: number;
  max: number;
}

const SENSORS: Sensor[] = [
  { id: "t-01", kind: "temperature", site: "berlin", value: 24, min: 18, max: 31 },
  { id: "h-01", kind: "humidity", site: "berlin", value: 55, min: 35, max: 80 },
  { id: "t-02", kind: "temperature", site: "lisbon", value: 30.5, min: 27, max: 35 },
  { id: "h-02", kind: "humidity", site: "lisbon", value: 45, min: 25, max: 70 },
  { id: "t-03", kind: "temperature", site: "oslo", value: 14, min: 8, max: 22 },
  { id: "h-03", kind: "humidity", site: "oslo", value: 70, min: 50, max: 95 },
];

/** Energy meters, one reading per meter every other fleet tick, for the per-site averages. */
const METERS = [
  { id: "m-01", site: "berlin", kwh: 0.4 },
  { id: "m-02", site: "oslo", kwh: 0.9 },
];

/** Every Nth reading is sent broken, and every Mth without a site, to show the dead letters. */
const MALFORMED_EVERY = 23;
const SITELESS_EVERY = 17;

/**
 * Runs the demo.
 *
 * @param args Command-line arguments: `--seconds N`, `--help`.
 * @returns The exit code: 0 after a clean stop, 1 when something failed, 2 on bad usage.
 */
export async function main(args: readonly string[]): Promise<number> {
  let seconds: number;
  try {
    const { values } = parseArgs({
      args: [...args],
      strict: true,
      options: {
        seconds: { type: "string", default: String(DEFAULT_SECONDS) },
        help: { type: "boolean", short: "h", default: false },
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    seconds = Number(values.seconds);
    if (!Number.isFinite(seconds) || seconds <= 0) {
      throw new RangeError(`--seconds must be a positive number, got "${values.seconds}"`);
    }
  } catch (error) {
    console.error(`demo: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }

  // Ctrl-C and SIGTERM end the demo in order; the children run detached so that a Ctrl-C in the
  // terminal reaches only this process, which then stops the fleet, Sluice and the server.
  const stop = Promise.withResolvers<string>();
  const onSignal = (signal: Deno.Signal) => () => stop.resolve(signal);
  const handlers = (["SIGINT", "SIGTERM"] as const).map((sig) => [sig, onSignal(sig)] as const);
  for (const [sig, handler] of handlers) Deno.addSignalListener(sig, handler);
  const timer = setTimeout(() => stop.resolve(`${seconds} s elapsed`), seconds * 1000);
  try {
    return await runDemo(stop.promise);
  } finally {
    clearTimeout(timer);
    for (const [sig, handler] of handlers) Deno.removeSignalListener(sig, handler);
  }
}

async function runDemo(stopRequested: Promise<string>): Promise<number> {
  let server: NatsServer;
  try {
    server = await NatsServer.start({ detached: true, tempRoot: TEMP_ROOT });
  } catch (error) {
    if (error instanceof NatsServerNotFoundError) {
      console.error(`demo: ${error.message}`);
      return 1;
    }
    throw error;
  }
  await using _server = server;
  say(`nats-server listening on ${server.url} (monitoring ${server.monitorUrl})`);

  await using sluice = new SluiceChild("sluice", ["connectors/", "pipelines/"], {
    NATS_URL: server.url,
    UPLINK_URL: server.url,
    SLUICE_CLIENT_NAME: "sluice-demo-gateway",
  });
  say(`Sluice starting: ${sluice.commandLine}`);
  const started = await within(
    Promise.race([
      sluice.started.then(() => "started" as const),
      sluice.exited.then(() => "exited" as const),
      stopRequested.then(() => "stopped" as const),
    ]),
    SLUICE_START_TIMEOUT_MS,
  ) ?? "timeout";
  if (started !== "started") {
    const why = started === "exited"
      ? `exited with code ${(await sluice.exited).code} before it started`
      : started === "timeout"
      ? `did not log "started" within ${SLUICE_START_TIMEOUT_MS / 1000} s`
      : "was interrupted while starting";
    console.error(`demo: Sluice ${why}`);
    return started === "stopped" ? 0 : 1;
  }

  const nc = await connect({ servers: server.url, name: "sluice-demo" });
  const watching = watchOutputs(nc);
  await nc.flush();
  say(
    `watching alerts.>, sites.>, alarms.>, uplink.>, gw-01.> and dlq.>; the fleet sends ` +
      `${1000 / PUBLISH_INTERVAL_MS}/s readings and meter values`,
  );

  const fleet = new Fleet(nc);
  fleet.start();
  await using gateway = await startMqttGateway(server.url);
  const reason = await Promise.race([
    stopRequested,
    sluice.exited.then((s) => `Sluice exited unexpectedly with code ${s.code}`),
  ]);
  fleet.stop();
  await nc.flush();
  say(`stopping (${reason}); the fleet sent ${fleet.sent} readings`);

  await gateway?.stop();
  const status = await sluice.stop(SLUICE_STOP_TIMEOUT_MS);
  // Sluice delivers its in-flight events before it exits: collect them, then close.
  await nc.drain();
  await watching;

  const summaries = sluice.records.filter((r) => r.msg === "pipeline summary");
  if (summaries.length > 0) say("summary:");
  for (const r of summaries) {
    console.log(
      `  ${String(r.pipeline).padEnd(24)} in=${r.in} passed=${r.passed} filtered=${r.filtered} ` +
        `dead_lettered=${r.dead_lettered} errors=${r.errors}` +
        (r.emitted ? ` emitted=${r.emitted}` : ""),
    );
  }
  await server.stop();
  say(`Sluice exited with code ${status.code}; nats-server stopped`);
  return status.code === 0 ? 0 : 1;
}

/** Subscribes to Sluice's outputs and prints one line per message. */
function watchOutputs(nc: NatsConnection): Promise<void> {
  const print = (tag: string) => (error: Error | null, msg: Msg) => {
    if (error) {
      console.error(`demo: subscription failed: ${error.message}`);
      return;
    }
    try {
      console.log(`${clock()}  ${tag.padEnd(5)} ${msg.subject.padEnd(26)} ${describe(msg)}`);
    } catch (e) {
      // An exception escaping a callback would close the connection (see measured.md).
      console.error(`demo: cannot print a message: ${e instanceof Error ? e.message : e}`);
    }
  };
  const subs = [
    nc.subscribe("alerts.>", { callback: print("ALERT") }),
    nc.subscribe("sites.>", { callback: print("SITE") }),
    nc.subscribe("alarms.>", { callback: print("ALARM") }),
    nc.subscribe("uplink.>", { callback: print("UP") }),
    nc.subscribe("gw-01.>", { callback: print("GW") }),
    nc.subscribe("dlq.>", { callback: print("DLQ") }),
  ];
  return Promise.all(subs.map((s) => s.closed)).then(() => {});
}

function describe(msg: Msg): string {
  const text = msg.string();
  const error = msg.headers?.get("Sluice-Error");
  if (error) return `Sluice-Error: ${error} | payload: ${text}`;
  try {
    const event: unknown = JSON.parse(text);
    if (typeof event === "object" && event !== null) {
      const e = event as Record<string, unknown>;
      if (e.window_start !== undefined && e.temperature_avg !== undefined) {
        const partial = e.partial ? " (partial, at stop)" : "";
        return `${e.key}: ${e.readings} readings, avg ${
          formatNumber(e.temperature_avg)
        } °C${partial}`;
      }
      if (e.device !== undefined && e.temperature !== undefined) {
        return `${e.device} (MQTT)  ${formatNumber(e.temperature)} °C`;
      }
      if (e.window_start !== undefined) {
        const partial = e.partial ? " (partial, at stop)" : "";
        return `${e.key}: ${e.readings} readings, avg ${formatNumber(e.kwh_avg)} kWh, max ` +
          `${formatNumber(e.kwh_max)}${partial}`;
      }
      const reading = e.temperature !== undefined
        ? `${formatNumber(e.temperature)} °C`
        : e.humidity !== undefined
        ? `${formatNumber(e.humidity)} %RH`
        : "";
      return `${e.sensor ?? "?"} @ ${e.site ?? "(no site)"}  ${reading}`;
    }
  } catch {
    // Not JSON: show it as it is.
  }
  return text;
}

/** Six sensors publishing readings, with an occasional broken one. */
class Fleet {
  sent = 0;
  readonly #nc: NatsConnection;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(nc: NatsConnection) {
    this.#nc = nc;
  }

  start(): void {
    this.#timer = setInterval(() => {
      try {
        this.#publishNext();
      } catch (error) {
        console.error(`demo: cannot publish: ${error instanceof Error ? error.message : error}`);
      }
    }, PUBLISH_INTERVAL_MS);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Asks the convert-service pipeline (Sluice as a NATS service) and prints its answer. */
  #askConverter(celsius: number): void {
    const request = JSON.stringify({ celsius: Math.round(celsius * 10) / 10 });
    this.#nc.request("svc.convert", request, { timeout: 2000 }).then(
      (reply) => {
        const error = reply.headers?.get("Sluice-Error");
        console.log(
          `${clock()}  REPLY svc.convert ${request} -> ${
            error ? `error: ${error}` : reply.string()
          }`,
        );
      },
      (e: unknown) => say(`svc.convert request failed: ${e instanceof Error ? e.message : e}`),
    );
  }

  #publishNext(): void {
    const sensor = SENSORS[this.sent % SENSORS.length];
    if (!sensor) return;
    this.sent++;
    const step = sensor.kind === "temperature" ? 0.8 : 3;
    sensor.value = clamp(sensor.value + (Math.random() - 0.5) * 2 * step, sensor.min, sensor.max);
    const subject = `sensors.${sensor.kind}.${sensor.id}`;
    const value = Math.round(sensor.value * 10) / 10;

    let payload: string;
    if (this.sent % MALFORMED_EVERY === 0) {
      payload = `{"sensor":"${sensor.id}","${sensor.kind}":`; // Cut off mid-message.
      say(`fleet sends a malformed payload on ${subject}`);
    } else if (this.sent % SITELESS_EVERY === 0) {
      payload = JSON.stringify({ sensor: sensor.id, [sensor.kind]: value, ts: Date.now() });
      say(`fleet sends a reading without a site on ${subject}`);
    } else {
      payload = JSON.stringify({
        sensor: sensor.id,
        site: sensor.site,
        [sensor.kind]: value,
        ts: Date.now(),
      });
    }
    this.#nc.publish(subject, payload);
    if (sensor.kind === "temperature" && this.sent % 5 === 0) this.#askConverter(sensor.value);
    if (this.sent % 2 === 0) {
      const meter = METERS[(this.sent / 2) % METERS.length];
      if (!meter) return;
      meter.kwh = clamp(meter.kwh + (Math.random() - 0.5) * 0.2, 0, 2);
      this.#nc.publish(
        `meters.${meter.site}.${meter.id}`,
        JSON.stringify({ kwh: Math.round(meter.kwh * 100) / 100 }),
      );
    }
  }
}

/**
 * The MQTT side (examples/gateway): a local mosquitto, two devices publishing temperatures with
 * QoS 1, and a second Sluice that reports them to the NATS uplink by exception and as one-minute
 * averages through an outbox. Skipped, with a note, where mosquitto is not installed.
 */
class MqttGateway implements AsyncDisposable {
  readonly #broker: Mosquitto;
  readonly #sluice: SluiceChild;
  readonly #devices: MqttClient;
  readonly #timer: ReturnType<typeof setInterval>;
  #stopped = false;

  constructor(broker: Mosquitto, sluice: SluiceChild, devices: MqttClient) {
    this.#broker = broker;
    this.#sluice = sluice;
    this.#devices = devices;
    const temperatures: Record<string, number> = { "d-1": 21, "d-2": 24 };
    this.#timer = setInterval(() => {
      for (const [device, value] of Object.entries(temperatures)) {
        const next = clamp(value + (Math.random() - 0.5) * 0.6, 15, 30);
        temperatures[device] = next;
        devices.publish(
          `sensors/${device}/temperature`,
          JSON.stringify({ temperature: Math.round(next * 10) / 10 }),
          { qos: 1 },
        );
      }
    }, 500);
  }

  /** Stops the devices, then the gateway (which sends its partial averages), then the broker. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#devices.endAsync();
    await this.#sluice.stop(SLUICE_STOP_TIMEOUT_MS);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await this.#sluice[Symbol.asyncDispose]();
    await this.#broker[Symbol.asyncDispose]();
  }
}

async function startMqttGateway(natsUrl: string): Promise<MqttGateway | undefined> {
  let broker: Mosquitto;
  try {
    broker = await Mosquitto.start();
  } catch (error) {
    say(`no MQTT part: ${error instanceof Error ? error.message.split("\n")[0] : error}`);
    say("(apt-get install mosquitto to see devices on MQTT reported to the NATS uplink)");
    return undefined;
  }
  await Deno.remove("/tmp/sluice-gateway", { recursive: true }).catch(() => {});
  const sluice = new SluiceChild(
    "gw    ",
    ["examples/gateway/"],
    { MQTT_URL: broker.url, NATS_URL: natsUrl, SLUICE_CLIENT_ID: "demo-gw-01" },
    ["--allow-write=/tmp/sluice-gateway"],
  );
  say(`mosquitto listening on ${broker.url}; MQTT gateway starting: ${sluice.commandLine}`);
  const up = await within(sluice.started.then(() => true), SLUICE_START_TIMEOUT_MS);
  if (!up) {
    await sluice[Symbol.asyncDispose]();
    await broker[Symbol.asyncDispose]();
    say("the MQTT gateway did not start; continuing without it");
    return undefined;
  }
  const devices = await mqtt.connectAsync(broker.url, { clientId: "demo-devices" });
  say("two MQTT devices publish sensors/<device>/temperature twice a second (QoS 1)");
  return new MqttGateway(broker, sluice, devices);
}

interface LogRecord {
  msg: string;
  level: string;
  [field: string]: unknown;
}

/** Sluice as a child process, logging JSON lines that are echoed in a short form. */
class SluiceChild implements AsyncDisposable {
  readonly commandLine: string;
  readonly records: LogRecord[] = [];
  readonly started: Promise<void>;
  readonly exited: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;
  readonly #stderrDone: Promise<void>;
  readonly #stdoutDone: Promise<void>;

  /**
   * @param label Prefix of its log lines.
   * @param paths Config files and directories.
   * @param env Its environment (NO_COLOR is added).
   * @param flags Deno permissions beyond {@link SLUICE_FLAGS}.
   */
  constructor(
    readonly label: string,
    paths: readonly string[],
    env: Record<string, string>,
    flags: readonly string[] = [],
  ) {
    const args = [
      "run",
      ...SLUICE_FLAGS,
      ...flags,
      "src/main.ts",
      "run",
      "--log-format",
      "json",
      ...paths,
    ];
    this.commandLine = `deno ${args.join(" ")}`;
    this.#child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: REPO_ROOT,
      env: { ...env, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    this.exited = this.#child.status;
    const started = Promise.withResolvers<void>();
    this.started = started.promise;
    this.#stderrDone = forEachLine(this.#child.stderr, (line) => {
      const record = parseRecord(line);
      if (!record) {
        console.log(`${clock()}  ${label} ${line}`);
        return;
      }
      this.records.push(record);
      if (record.msg === "started") started.resolve();
      if (record.msg !== "pipeline summary") {
        console.log(`${clock()}  ${label} ${formatRecord(record)}`);
      }
    });
    this.#stdoutDone = forEachLine(this.#child.stdout, (line) => {
      console.log(`${clock()}  ${label} ${line}`);
    });
  }

  /** Sends SIGTERM and waits for the exit; SIGKILL after `ms`. */
  async stop(ms: number): Promise<Deno.CommandStatus> {
    this.#signal("SIGTERM");
    const status = await within(this.exited, ms);
    if (status) return status;
    console.error(`demo: Sluice did not exit within ${ms / 1000} s of SIGTERM; killing it`);
    this.#signal("SIGKILL");
    return await this.exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#signal("SIGKILL");
    await this.exited;
    await Promise.all([this.#stderrDone, this.#stdoutDone]);
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // Already exited.
    }
  }
}

function parseRecord(line: string): LogRecord | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    if (
      typeof value === "object" && value !== null && typeof (value as LogRecord).msg === "string"
    ) {
      return value as LogRecord;
    }
  } catch {
    // A line that only looks like JSON: shown as text.
  }
  return undefined;
}

function formatRecord(record: LogRecord): string {
  const { time: _time, level, msg, ...fields } = record;
  const rest = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  const tag = level === "info" ? "" : `${String(level).toUpperCase()} `;
  return `${tag}${msg}${rest ? `  ${rest}` : ""}`;
}

async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let pending = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    pending += text;
    let newline: number;
    while ((newline = pending.indexOf("\n")) !== -1) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  }
  if (pending) onLine(pending);
}

function say(text: string): void {
  console.log(`${clock()}  demo   ${text}`);
}

function clock(): string {
  return new Date().toISOString().slice(11, 23);
}

function formatNumber(value: unknown): string {
  return typeof value === "number" ? value.toFixed(1) : String(value);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** Resolves with the value of `promise`, or `undefined` after `ms`; leaves no timer behind. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const elapsed = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, elapsed]);
  } finally {
    clearTimeout(timer);
  }
}

// Last, so that the classes above are initialised before the top-level await runs main().
if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
