/**
 * The event stream and the scenarios of the benchmark, shared by the orchestrator, the hand-written
 * baseline and the load generators, so that every program agrees on subjects, payloads and the
 * number of events each scenario must deliver.
 *
 * @module
 */

/** Number of zones: the 10-pipeline scenario gives each zone its own pipeline. */
export const ZONES = 10;
/** Distinct payloads the flood publisher cycles through; event counts are multiples of it. */
export const POOL_SIZE = 1000;
/** One event in this many is malformed JSON in the dead-letter scenario (1 %). */
export const MALFORMED_EVERY = 100;
/** Where every scenario's outputs arrive, for the counting and latency subscribers. */
export const OUTPUT_SUBJECTS: readonly string[] = ["alerts.>", "dlq.>"];

/**
 * The marks of the processor scenarios, whose outputs do not follow their inputs one for one
 * (a dedupe drops, a window emits by the clock): the publisher sends a start mark before the
 * flood and an end mark after it on {@linkcode MARKS}`.source`; a pass-through pipeline on the
 * same connection (so in order with the events) forwards them to {@linkcode MARKS}`.sink`, where
 * the counter times them.
 */
export const MARKS = { source: "bench.mark", sink: "marks.out" } as const;
/** The name of the marks' pipeline, in Sluice's configuration and the baseline's summary. */
export const MARKS_PIPELINE = "marks";

const SITES = ["berlin", "hamburg", "munich", "cologne", "leipzig", "dresden", "bremen", "essen"];

/**
 * The JetStream scenarios' settings, shared by Sluice's configuration and the hand-written
 * baseline so that both do the same work. The consumer settings and `max_in_flight` are Sluice's
 * defaults, written out.
 */
export const JETSTREAM = {
  /** Stream that captures `sensors.temperature.>` in the JetStream source scenario. */
  sourceStream: "BENCH_SENSORS",
  /** Durable pull consumer of that stream (deleted by the orchestrator before every run). */
  durable: "bench",
  /** Messages per pull request (`batch`, `max_messages` of nats.js `consume()`). */
  batch: 256,
  /** Most unacknowledged messages the server hands out (`max_ack_pending`). */
  maxAckPending: 1000,
  /** Subject the JetStream sink scenarios publish to, and the stream that stores it. */
  sinkSubject: "alerts.stored",
  sinkStream: "BENCH_ALERTS",
  /** Most publishes awaiting their PubAck at once (`max_in_flight`). */
  maxInFlight: 1024,
} as const;

/** Topics of the MQTT scenario, shared by its Sluice configuration and its baseline. */
export const MQTT = {
  /** What the program under test subscribes to: the pool's subjects with `/` for `.`. */
  sourceFilter: "sensors/temperature/#",
  /** Where it publishes the events that pass. */
  sinkTopic: "alerts/high-value",
  /** What the counter subscribes to. */
  outputFilter: "alerts/#",
} as const;

/** Names of the scenarios, in report order. */
export type ScenarioName =
  | "filter"
  | "pass-all"
  | "template"
  | "dead-letter"
  | "pipelines-10"
  | "jetstream-source"
  | "jetstream-forward"
  | "jetstream-sink"
  | "outbox"
  | "map-dedupe"
  | "dedupe-10k"
  | "window-1k"
  | "mqtt-filter";

/**
 * How the events reach the program under test and where its outputs go:
 *
 * - `core`: a flood of core NATS publishes; outputs on core subjects;
 * - `jetstream-source`: the events are stored in {@linkcode JETSTREAM}`.sourceStream` before the
 *   program starts, so what is measured is consumption (pull, decode, filter, publish, ack);
 * - `mqtt`: a flood of MQTT QoS 0 publishes to a mosquitto; outputs on MQTT topics;
 * - `jetstream-sink`: core NATS events in a closed loop (a bounded number of outputs outstanding,
 *   since a sink awaiting PubAcks cannot keep up with a flood and overflows by design); outputs
 *   published with PubAck into {@linkcode JETSTREAM}`.sinkStream`.
 */
export type Transport = "core" | "jetstream-source" | "jetstream-sink" | "mqtt";

/** What the bench needs to know about one scenario. */
export interface Scenario {
  readonly name: ScenarioName;
  /** One line for the report. */
  readonly title: string;
  /** Whether 1 % of the events are malformed JSON. */
  readonly malformed: boolean;
  /** How events come in and outputs go out. */
  readonly transport: Transport;
  /**
   * The outputs are published with PubAck into {@linkcode JETSTREAM}`.sinkStream`, which must hold
   * exactly the expected number after every run (the `jetstream-sink` transport implies it).
   */
  readonly storesOutputs?: boolean;
  /**
   * The Sluice configuration (connector + pipelines) for a server at `${NATS_URL}`;
   * {@linkcode BENCH_DIR} stands for a directory the bench gives Sluice write access to.
   */
  readonly yaml: string;
  /**
   * Why the scenario is left out of a run unless named with `--scenarios`; absent when it runs
   * by default.
   */
  readonly disabled?: string;
  /** The events the publishers cycle through; the default pool when not given. */
  readonly pool?: PoolShape;
  /**
   * Processor scenarios: throughput is timed between the {@linkcode MARKS}, and the end of a
   * run is known by `expected` rather than by the outputs stopping. Not in the latency runs.
   */
  readonly marks?: boolean;
  /**
   * The counter sums this numeric field of the outputs instead of counting them (a window's
   * `count` aggregate: the sum is the number of events absorbed, whenever the windows closed).
   */
  readonly sumField?: string;
  /** How many output messages (alerts and dead letters) pool entry `i` produces. */
  outputs(pool: Pool, i: number): number;
  /**
   * What the counter must reach for `events` events: outputs, or the sum of `sumField`. When
   * absent, the sum of {@linkcode Scenario.outputs} over the events.
   */
  expected?(pool: Pool, events: number): number;
}

/** How many distinct sensors the pool has and how many entries it cycles through. */
export interface PoolShape {
  /** Distinct sensors; entry `i` is sensor `i % sensors`. */
  readonly sensors: number;
  /** Entries; a multiple of `sensors`. */
  readonly size: number;
}

/** The pool of the filter scenarios: 100 sensors, 10 readings each. */
export const DEFAULT_POOL: PoolShape = { sensors: 100, size: POOL_SIZE };

const CONNECTOR = `connectors:
  local:
    type: nats
    servers: \${NATS_URL}
    name: sluice-bench
`;

function pipeline(name: string, source: string, filter: string, sink: string, dlq?: string) {
  return `  ${name}:
    source:
      connector: local
      subject: ${source}
    filter: ${JSON.stringify(filter)}
    sinks:
      - connector: local
        subject: ${sink}
` + (dlq === undefined ? "" : `    dead_letter:
      connector: local
      subject: ${dlq}
`);
}

/** Placeholder in a scenario's YAML for a scratch directory (outbox files). */
export const BENCH_DIR = "@BENCH_DIR@";

const JETSTREAM_SOURCE = `      jetstream:
        stream: ${JETSTREAM.sourceStream}
        durable: ${JETSTREAM.durable}
        deliver: all
        ack_wait: 30s
        max_ack_pending: ${JETSTREAM.maxAckPending}
        batch: ${JETSTREAM.batch}
`;

/** The JSON filter pipeline with a JetStream sink, optionally with an outbox (`buffer:`). */
function jetstreamSink(outbox: boolean): string {
  return CONNECTOR + "pipelines:\n" +
    pipeline("alerts", "sensors.temperature.>", "temperature > 30", JETSTREAM.sinkSubject) +
    `        jetstream: { max_in_flight: ${JETSTREAM.maxInFlight} }
` + (outbox
      ? `        buffer:
          path: ${BENCH_DIR}/outbox.db
          max_size: 64MiB
`
      : "");
}

/**
 * The processors of the dedupe scenarios, shared with the hand-written baseline: a map that adds
 * the zone (from the subject) and the temperature in Fahrenheit, then report by exception per
 * sensor with a deadband on the temperature.
 */
export const DEDUPE = { deadband: 5.0, maxKeys: 10_000 } as const;
/** The window scenario: tumbling windows per sensor, three aggregates. */
export const WINDOW = { sizeMs: 1_000, maxKeys: 10_000 } as const;

const MARK_PIPELINE = `  ${MARKS_PIPELINE}:
    source:
      connector: local
      subject: ${MARKS.source}
    sinks:
      - connector: local
        subject: ${MARKS.sink}
`;

const DEDUPE_PIPELINE = `  dedupe:
    source:
      connector: local
      subject: sensors.temperature.>
    processors:
      - map:
          zone: _tokens[2]
          temperature_f: temperature * 1.8 + 32.0
      - dedupe:
          key: sensor
          value: temperature
          deadband: ${DEDUPE.deadband.toFixed(1)}
          max_keys: ${DEDUPE.maxKeys}
    sinks:
      - connector: local
        subject: alerts.changed
`;

const WINDOW_PIPELINE = `  window:
    source:
      connector: local
      subject: sensors.temperature.>
    processors:
      - window:
          key: sensor
          size: ${WINDOW.sizeMs / 1000}s
          aggregates:
            temperature_avg: {avg: temperature}
            temperature_max: {max: temperature}
            readings: {count: true}
          max_keys: ${WINDOW.maxKeys}
    sinks:
      - connector: local
        subject: alerts.window
`;

/**
 * Whether a value moved by at least the deadband since the last forwarded one, as the contract
 * says: a difference equal to the deadband forwards, also when rounding made it a hair smaller
 * (20.3 - 20.1 is 0.19999999999999929), so the comparison allows a few units of the last place.
 *
 * @param last The value last forwarded.
 * @param value The new value.
 * @param deadband The deadband.
 * @returns True when the new value is to be forwarded.
 */
export function movedBy(last: number, value: number, deadband: number): boolean {
  const slack = 8 * Number.EPSILON * Math.max(Math.abs(last), Math.abs(value), deadband);
  return Math.abs(value - last) >= deadband - slack;
}

/**
 * The outputs of report by exception over `events` events of the pool, simulated: per sensor,
 * forward when nothing was forwarded yet or |temperature - last forwarded| ≥ the deadband.
 */
function dedupeOutputs(pool: Pool, events: number): number {
  const last = new Map<string, number>();
  let out = 0;
  const size = pool.subjects.length;
  for (let n = 0; n < events; n++) {
    const i = n % size;
    const key = pool.sensors[i]!;
    const value = pool.temperatures[i]!;
    const prev = last.get(key);
    if (prev === undefined || movedBy(prev, value, DEDUPE.deadband)) {
      last.set(key, value);
      out++;
    }
  }
  return out;
}

const passes = (pool: Pool, i: number) => (pool.malformed[i] ? 0 : pool.hot[i] ? 1 : 0);

/** Every scenario, in report order. */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: "filter",
    title: "JSON filter `temperature > 30` (≈30 % pass), one static sink",
    malformed: false,
    transport: "core",
    yaml: CONNECTOR + "pipelines:\n" +
      pipeline("alerts", "sensors.temperature.>", "temperature > 30", "alerts.high-value"),
    outputs: passes,
  },
  {
    name: "pass-all",
    title: "filter `true`: every event forwarded",
    malformed: false,
    transport: "core",
    yaml: CONNECTOR + "pipelines:\n" +
      pipeline("all", "sensors.temperature.>", "true", "alerts.all"),
    outputs: () => 1,
  },
  {
    name: "template",
    title: "JSON filter, templated sink subject `alerts.{site}`",
    malformed: false,
    transport: "core",
    yaml: CONNECTOR + "pipelines:\n" +
      pipeline("by-site", "sensors.temperature.>", "temperature > 30", "alerts.{site}"),
    outputs: passes,
  },
  {
    name: "dead-letter",
    title: "JSON filter with a dead letter, 1 % malformed events",
    malformed: true,
    transport: "core",
    yaml: CONNECTOR + "pipelines:\n" +
      pipeline(
        "alerts",
        "sensors.temperature.>",
        "temperature > 30",
        "alerts.high-value",
        "dlq.alerts",
      ),
    outputs: (pool, i) => (pool.malformed[i] ? 1 : passes(pool, i)),
  },
  {
    name: "pipelines-10",
    title: "10 pipelines on one connector, one zone each (baseline: 10 subscriptions)",
    malformed: false,
    transport: "core",
    yaml: CONNECTOR + "pipelines:\n" +
      Array.from(
        { length: ZONES },
        (_, z) =>
          pipeline(`zone-${z}`, `sensors.temperature.z${z}.>`, "temperature > 30", `alerts.z${z}`),
      ).join(""),
    outputs: passes,
  },
  {
    name: "jetstream-source",
    title: "JSON filter, events consumed from a stream (durable pull consumer, acks), core sink",
    malformed: false,
    transport: "jetstream-source",
    yaml: CONNECTOR + "pipelines:\n" +
      pipeline("alerts", "sensors.temperature.>", "temperature > 30", "alerts.high-value")
        .replace("      subject: sensors.temperature.>\n", `$&${JETSTREAM_SOURCE}`),
    outputs: passes,
  },
  {
    name: "jetstream-forward",
    title: "JSON filter, events consumed from a stream and matches published into another (PubAck)",
    malformed: false,
    transport: "jetstream-source",
    storesOutputs: true,
    yaml: CONNECTOR + "pipelines:\n" +
      pipeline("alerts", "sensors.temperature.>", "temperature > 30", JETSTREAM.sinkSubject)
        .replace("      subject: sensors.temperature.>\n", `$&${JETSTREAM_SOURCE}`) +
      `        jetstream: { max_in_flight: ${JETSTREAM.maxInFlight} }
`,
    outputs: passes,
  },
  {
    name: "jetstream-sink",
    title: "JSON filter, core source, matches published into a stream awaiting PubAcks",
    malformed: false,
    transport: "jetstream-sink",
    yaml: jetstreamSink(false),
    outputs: passes,
  },
  {
    name: "outbox",
    title: "as jetstream-sink, with an outbox (`buffer:`) on the sink while the uplink is up",
    malformed: false,
    transport: "jetstream-sink",
    yaml: jetstreamSink(true),
    outputs: passes,
  },
  {
    name: "map-dedupe",
    title: "map (zone from the subject, °F) + dedupe per sensor (deadband 5), 100 sensors",
    malformed: false,
    transport: "core",
    yaml: CONNECTOR + "pipelines:\n" + DEDUPE_PIPELINE + MARK_PIPELINE,
    marks: true,
    outputs: () => NaN,
    expected: dedupeOutputs,
  },
  {
    name: "dedupe-10k",
    title: "as map-dedupe with 10,000 sensors (10,000 dedupe keys held)",
    malformed: false,
    transport: "core",
    yaml: CONNECTOR + "pipelines:\n" + DEDUPE_PIPELINE + MARK_PIPELINE,
    pool: { sensors: 10_000, size: 20_000 },
    marks: true,
    outputs: () => NaN,
    expected: dedupeOutputs,
  },
  {
    name: "window-1k",
    title: "1 s tumbling windows per sensor (avg, max, count), 1,000 sensors",
    malformed: false,
    transport: "core",
    yaml: CONNECTOR + "pipelines:\n" + WINDOW_PIPELINE + MARK_PIPELINE,
    pool: { sensors: 1_000, size: POOL_SIZE },
    marks: true,
    sumField: "readings",
    outputs: () => NaN,
    expected: (_pool, events) => events,
  },
  {
    name: "mqtt-filter",
    title: "MQTT → JSON filter → MQTT, QoS 0 both ways, one mosquitto (baseline: MQTT.js)",
    malformed: false,
    transport: "mqtt",
    yaml: `connectors:
  devices:
    type: mqtt
    url: \${MQTT_URL}
    client_id: sluice-bench
    clean_session: true
pipelines:
  alerts:
    source:
      connector: devices
      topic: ${MQTT.sourceFilter}
      qos: 0
    filter: "temperature > 30"
    sinks:
      - connector: devices
        topic: ${MQTT.sinkTopic}
        qos: 0
`,
    outputs: passes,
  },
];

/**
 * Looks a scenario up by name.
 *
 * @param name The name.
 * @returns The scenario.
 * @throws {RangeError} When there is none of that name.
 */
export function scenario(name: string): Scenario {
  const s = SCENARIOS.find((s) => s.name === name);
  if (!s) {
    throw new RangeError(
      `Unknown scenario "${name}": expected one of ${SCENARIOS.map((s) => s.name).join(", ")}`,
    );
  }
  return s;
}

/** The events the publishers cycle through, with what each one should do. */
export interface Pool {
  readonly subjects: readonly string[];
  /** Payload text after the leading `{"ts":<number>`; prefix it with a timestamp to send it. */
  readonly tails: readonly string[];
  /** Whether the event's temperature is above 30. */
  readonly hot: readonly boolean[];
  /** The event's sensor id and temperature. */
  readonly sensors: readonly string[];
  readonly temperatures: readonly number[];
  /** Whether the payload is not valid JSON. */
  readonly malformed: readonly boolean[];
}

/**
 * The deterministic pool of sensor readings: subjects `sensors.temperature.z<zone>.s<sensor>`,
 * payloads `{"ts":…,"seq":…,"sensor":…,"site":…,"temperature":…,"humidity":…,"battery":…}`.
 *
 * The same seed gives every scenario the same readings for its first entries.
 *
 * @param s The scenario: its pool's shape, and whether one event in
 *   {@linkcode MALFORMED_EVERY} is truncated JSON.
 * @returns The pool.
 */
export function buildPool(s: Pick<Scenario, "malformed" | "pool">): Pool {
  const malformed = s.malformed;
  const shape = s.pool ?? DEFAULT_POOL;
  let seed = 0x5eed;
  // mulberry32: a small seeded generator, so every process builds the same pool.
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const subjects: string[] = [];
  const tails: string[] = [];
  const hot: boolean[] = [];
  const bad: boolean[] = [];
  const sensors: string[] = [];
  const temperatures: number[] = [];
  for (let i = 0; i < shape.size; i++) {
    const sensor = i % shape.sensors;
    const temperature = Math.round((20 + random() * 14.3) * 100) / 100;
    const humidity = Math.round((30 + random() * 50) * 10) / 10;
    const battery = Math.floor(random() * 100);
    const isBad = malformed && i % MALFORMED_EVERY === MALFORMED_EVERY / 2;
    subjects.push(`sensors.temperature.z${sensor % ZONES}.s${sensor}`);
    const tail = `,"seq":${i},"sensor":"s${sensor}","site":"${
      SITES[sensor % SITES.length]
    }","temperature":${temperature},"humidity":${humidity},"battery":${battery}}`;
    // Truncated in the middle of a value: the kind of payload a flaky sensor sends.
    tails.push(isBad ? tail.slice(0, tail.indexOf("temperature") + 14) : tail);
    hot.push(temperature > 30);
    bad.push(isBad);
    sensors.push(`s${sensor}`);
    temperatures.push(temperature);
  }
  return { subjects, tails, hot, malformed: bad, sensors, temperatures };
}

/**
 * How many output messages `events` events of the pool produce in a scenario.
 *
 * @param s The scenario.
 * @param pool The scenario's pool ({@linkcode buildPool}).
 * @param events The number of events, cycling through the pool from its start.
 * @returns The number of alerts and dead letters expected (of `sumField`: its sum).
 */
export function expectedOutputs(s: Scenario, pool: Pool, events: number): number {
  if (s.expected) return s.expected(pool, events);
  const size = pool.subjects.length;
  let perPool = 0;
  for (let i = 0; i < size; i++) perPool += s.outputs(pool, i);
  let total = Math.floor(events / size) * perPool;
  for (let i = 0; i < events % size; i++) total += s.outputs(pool, i);
  return total;
}

/**
 * Extracts the send timestamp from a payload that starts with `{"ts":<number>,`.
 *
 * @param text The payload text.
 * @returns The timestamp (milliseconds on the publisher's `performance.now()` clock), or NaN.
 */
export function timestampOf(text: string): number {
  return Number(text.slice(6, text.indexOf(",", 6)));
}

/**
 * Writes one JSON log record to stderr in the shape Sluice uses (`time`, `level`, `msg`), so the
 * orchestrator reads every child the same way.
 *
 * @param msg The message, e.g. `"started"`.
 * @param fields Further fields.
 */
export function report(msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level: "info", msg, ...fields });
  Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
}
