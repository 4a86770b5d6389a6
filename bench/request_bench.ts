/**
 * Request-reply against hand-written nats.js programs doing the same work, on one nats-server;
 * rounds alternate the two programs (and which goes first), and the medians of the rounds are
 * reported with the CPU time per message of the program, of nats-server and of the load generators
 * (from `/proc`), since requests/s on a shared machine move with everything else running on it.
 *
 * - `service`: a `reply: true` pipeline with `map: {fahrenheit: celsius * 9.0 / 5.0 + 32.0}` vs a
 *   responder that subscribes, parses, adds the field and answers. `--generators` load generator
 *   processes (2) keep `--window` requests (256) outstanding in total, each a raw publish with a
 *   reply subject, so that generating a request costs less than answering it. Requests/s.
 * - `enrich`: a pipeline with a cached `request` (100 distinct sensors, so nearly every event is
 *   a cache hit) vs an enricher with a Map cache that joins requests in flight. A flood of
 *   `--events` events; events/s from the first publish to the last enriched event received.
 *
 * Each measured run follows a warm-up of 50,000 requests or events in the same process.
 *
 * ```
 * deno task bench:request [--requests N] [--window W] [--events N] [--rounds R] [--generators G]
 *   [--scenarios service,enrich] [--cpu-prof DIR] [--sluice-entry PATH/src/main.ts]
 * ```
 *
 * `--cpu-prof DIR` writes a V8 CPU profile of every program under test (file names carry the pid
 * that the round's log line gives); `--sluice-entry` runs another Sluice (e.g. an older commit's
 * `src/` from `git archive`) to measure a change. With `responder <nats-url>`, `enricher
 * <nats-url>` or `generator <nats-url> <id>` as arguments it is that program itself.
 *
 * @module
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { withTimeout } from "../dev/wait.ts";
import { CLOCK_TICKS_PER_S, cpuTicks } from "./_proc.ts";

const SUBJECT = "svc.convert";
const SELF = new URL(import.meta.url).pathname;
const CHILD_FLAGS = ["--allow-net=127.0.0.1", "--allow-env", "--allow-sys=hostname"];
const SLUICE_FLAGS = ["--allow-net", "--allow-read", "--allow-env", "--allow-sys=hostname"];

interface Options {
  requests: number;
  window: number;
  events: number;
  rounds: number;
  generators: number;
  /** Profile Sluice's runs into this directory (`deno run --cpu-prof`). */
  cpuProf: string | undefined;
  /** Another Sluice's `src/main.ts` (e.g. an older commit's, to measure a change). */
  sluiceEntry: string | undefined;
  /** The scenarios to run. */
  scenarios: ("service" | "enrich")[];
}

function options(args: string[]): Options {
  const o: Options = {
    requests: 400_000,
    window: 256,
    events: 400_000,
    rounds: 5,
    generators: 2,
    cpuProf: undefined,
    sluiceEntry: undefined,
    scenarios: ["service", "enrich"],
  };
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] === "--cpu-prof") {
      o.cpuProf = args[i + 1];
      continue;
    }
    if (args[i] === "--sluice-entry") {
      o.sluiceEntry = args[i + 1];
      continue;
    }
    if (args[i] === "--scenarios") {
      o.scenarios = (args[i + 1] ?? "").split(",").map((name) => {
        if (name !== "service" && name !== "enrich") throw new Error(`unknown scenario ${name}`);
        return name;
      });
      continue;
    }
    const value = Number(args[i + 1]);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${args[i]}: expected a count`);
    if (args[i] === "--requests") o.requests = value;
    else if (args[i] === "--window") o.window = value;
    else if (args[i] === "--rounds") o.rounds = value;
    else if (args[i] === "--events") o.events = value;
    else if (args[i] === "--generators") o.generators = value;
    else throw new Error(`unknown option ${args[i]}`);
  }
  return o;
}

/** One JSON log line on stderr, as Sluice writes them, so the harness can follow it. */
function log(msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level: "info", msg, ...fields });
  Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
}

/** The hand-written responder: what a developer would write with nats.js for this service. */
async function responder(url: string): Promise<void> {
  const nc = await connect({ servers: url, name: "bench-responder" });
  const dec = new TextDecoder();
  const enc = new TextEncoder();
  let answered = 0;
  nc.subscribe(SUBJECT, {
    callback: (_err, msg) => {
      try {
        const event = JSON.parse(dec.decode(msg.data)) as { celsius: number };
        msg.respond(
          enc.encode(JSON.stringify({ ...event, fahrenheit: event.celsius * 9 / 5 + 32 })),
        );
        answered++;
      } catch {
        msg.respond(new Uint8Array());
      }
    },
  });
  await nc.flush();
  log("started");
  const { promise, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", resolve);
  await promise;
  await nc.drain();
  log("pipeline summary", { pipeline: "responder", in: answered });
  Deno.exit(0);
}

/** The hand-written enricher: a Map cache, requests in flight joined, events published as ready. */
async function enricher(url: string): Promise<void> {
  const nc = await connect({ servers: url, name: "bench-enricher" });
  const dec = new TextDecoder();
  const enc = new TextEncoder();
  const cache = new Map<string, unknown>();
  const pending = new Map<string, Promise<unknown>>();
  let handled = 0;
  const send = (event: Record<string, unknown>, meta: unknown) => {
    nc.publish(ENRICHED, enc.encode(JSON.stringify({ ...event, meta })));
    handled++;
  };
  nc.subscribe("sensors.>", {
    callback: (_err, msg) => {
      try {
        const event = JSON.parse(dec.decode(msg.data)) as Record<string, unknown>;
        const sensor = String(event.sensor);
        const hit = cache.get(sensor);
        if (hit !== undefined) return send(event, hit);
        let p = pending.get(sensor);
        if (!p) {
          p = nc.request(`registry.${sensor}`, JSON.stringify({ id: sensor }), { timeout: 5000 })
            .then((r) => {
              const v = r.json();
              cache.set(sensor, v);
              pending.delete(sensor);
              return v;
            });
          pending.set(sensor, p);
        }
        p.then((v) => send(event, v), () => {});
      } catch { /* a malformed event: skipped */ }
    },
  });
  await nc.flush();
  log("started");
  const { promise, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", resolve);
  await promise;
  await nc.drain();
  log("pipeline summary", { pipeline: "enricher", in: handled });
  Deno.exit(0);
}

const ENRICHED = "enriched.out";

/** Publishes `events` events and resolves with events/s once all came back enriched. */
async function flood(nc: NatsConnection, events: number): Promise<number> {
  let received = 0;
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const sub = nc.subscribe(ENRICHED, {
    callback: () => {
      if (++received === events) resolve();
    },
  });
  await nc.flush();
  const enc = new TextEncoder();
  const started = performance.now();
  for (let i = 0; i < events; i++) {
    nc.publish(`sensors.s${i % 100}`, enc.encode(`{"sensor":"s${i % 100}","v":${i}}`));
    if (i % 10_000 === 9_999) await nc.flush();
  }
  await nc.flush();
  try {
    await withTimeout(done, 120_000, `${events} enriched events`);
  } catch (e) {
    throw new Error(`only ${received} of ${events} enriched events arrived`, { cause: e });
  } finally {
    sub.unsubscribe();
  }
  return events / ((performance.now() - started) / 1000);
}

const GO = "bench.go";
const DONE = "bench.done";
const READY = "bench.ready";

/** What a generator reports after a phase. */
interface PhaseResult {
  requests: number;
  ms: number;
  wrong: number;
}

/**
 * A load generator: on each `bench.go` (its payload: requests and outstanding window) it
 * publishes requests with its own reply subject, a new one for each reply, so that `window` are
 * outstanding until all were answered; then it publishes a {@link PhaseResult} on `bench.done`.
 * Raw publishes with a fixed reply subject, not `nc.request`: no promise, timer or inbox
 * bookkeeping per request, so that the generator stays cheaper than the programs it measures.
 */
async function generator(url: string, id: string): Promise<void> {
  const nc = await connect({ servers: url, name: `bench-generator-${id}` });
  const replyTo = `bench.reply.${id}`;
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const payloads = Array.from(
    { length: 1000 },
    (_, i) => enc.encode(`{"id":${i},"celsius":${i % 100}}`),
  );
  let phase:
    | { total: number; sent: number; received: number; wrong: number; started: number }
    | undefined;
  const send = (p: NonNullable<typeof phase>) => {
    nc.publish(SUBJECT, payloads[p.sent % 1000]!, { reply: replyTo });
    p.sent++;
  };
  nc.subscribe(replyTo, {
    callback: (_err, msg) => {
      const p = phase;
      if (!p) return;
      try {
        if (p.received % 97 === 0) {
          const body = JSON.parse(dec.decode(msg.data)) as {
            celsius?: number;
            fahrenheit?: number;
          };
          if (body.fahrenheit !== (body.celsius ?? NaN) * 9 / 5 + 32) p.wrong++;
        }
      } catch {
        p.wrong++;
      }
      if (++p.received === p.total) {
        const result: PhaseResult = {
          requests: p.total,
          ms: performance.now() - p.started,
          wrong: p.wrong,
        };
        phase = undefined;
        nc.publish(DONE, JSON.stringify(result));
      } else if (p.sent < p.total) send(p);
    },
  });
  nc.subscribe(GO, {
    callback: (_err, msg) => {
      const { requests, window } = JSON.parse(dec.decode(msg.data)) as {
        requests: number;
        window: number;
      };
      const p = { total: requests, sent: 0, received: 0, wrong: 0, started: performance.now() };
      phase = p;
      for (let i = 0; i < window && p.sent < requests; i++) send(p);
    },
  });
  await nc.flush();
  nc.publish(READY, id);
  const { promise, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", resolve);
  await promise;
  await nc.close();
  Deno.exit(0);
}

/** The generator processes, started once for the whole run and told to go for each phase. */
class Generators {
  readonly #children: Deno.ChildProcess[];
  readonly #nc: NatsConnection;
  /** The generators' CPU time per request of each phase, in µs (all generators together). */
  readonly cpuUs: number[] = [];
  private constructor(nc: NatsConnection, children: Deno.ChildProcess[]) {
    this.#nc = nc;
    this.#children = children;
  }

  static async start(nc: NatsConnection, url: string, count: number): Promise<Generators> {
    const ready = nc.subscribe(READY, { max: count });
    await nc.flush();
    const children = Array.from({ length: count }, (_, i) =>
      new Deno.Command("deno", {
        args: ["run", ...CHILD_FLAGS, SELF, "generator", url, String(i)],
        stdout: "inherit",
        stderr: "inherit",
      }).spawn());
    const g = new Generators(nc, children);
    await withTimeout(
      (async () => {
        for await (const _ of ready) { /* one per generator */ }
      })(),
      30_000,
      `${count} load generators ready`,
    );
    return g;
  }

  /** Sends `requests` requests, `window` outstanding in total; returns requests/s. */
  async run(requests: number, window: number): Promise<number> {
    const n = this.#children.length;
    const done = this.#nc.subscribe(DONE, { max: n });
    await this.#nc.flush();
    const each = Math.ceil(requests / n);
    this.#nc.publish(GO, JSON.stringify({ requests: each, window: Math.ceil(window / n) }));
    const results: PhaseResult[] = [];
    const ticks = await this.#ticks();
    await withTimeout(
      (async () => {
        for await (const m of done) results.push(m.json<PhaseResult>());
      })(),
      120_000,
      `${requests} requests answered`,
    );
    const wrong = results.reduce((a, r) => a + r.wrong, 0);
    if (wrong > 0) throw new Error(`${wrong} sampled replies were wrong`);
    // Their CPU time per request: well below the program's, or they limit the measurement.
    const us = (await this.#ticks() - ticks) / CLOCK_TICKS_PER_S * 1e6 / (each * n);
    log("generators", { "cpu_us": Number(us.toFixed(2)) });
    this.cpuUs.push(us);
    return each * n / (Math.max(...results.map((r) => r.ms)) / 1000);
  }

  async #ticks(): Promise<number> {
    let sum = 0;
    for (const c of this.#children) sum += await cpuTicks(c.pid);
    return sum;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const c of this.#children) {
      try {
        c.kill("SIGTERM");
      } catch { /* already gone */ }
      await c.status;
    }
  }
}

/**
 * The flood arrives on the connection the enriched events leave by, so nats-server is slow to read
 * them while it pushes the flood: `max_pending` is raised from 8 MiB, or Sluice refuses events
 * (as designed, to bound its memory) where the hand-written enricher buffers without limit.
 */
const ENRICH_YAML = (url: string) =>
  `connectors:
  local: { type: nats, servers: "${url}", name: bench-sluice, max_pending: 64MiB }
pipelines:
  enrich:
    source: { connector: local, subject: sensors.> }
    processors:
      - request:
          connector: local
          subject: registry.{sensor}
          body: '{"id": sensor}'
          timeout: 5s
          into: meta
          cache: { ttl: 1h }
    sinks: [{ connector: local, subject: ${ENRICHED} }]
`;

const SERVICE_YAML = (url: string) =>
  `connectors:
  local: { type: nats, servers: "${url}", name: bench-sluice }
pipelines:
  convert:
    source: { connector: local, subject: ${SUBJECT} }
    processors:
      - map: { fahrenheit: "celsius * 9.0 / 5.0 + 32.0" }
    reply: true
`;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

type Impl = "baseline" | "sluice";

/**
 * Requests or events of the warm-up before each measured run, so that both programs are
 * measured with optimised code (and, enriching, a full cache).
 */
const WARM_UP = 50_000;

/** The medians of one scenario: rate per second and CPU time per message, per program. */
interface Result {
  rate: Record<Impl, number>;
  /** Sluice's rate over the hand-written program's, each round on its own: median, min, max. */
  roundRatios: number[];
  /** Every round's rate. */
  rawRates: Record<Impl, number[]>;
  /** nats-server's CPU time per request or event, in µs. */
  serverCpuUs: Record<Impl, number>;
  /** CPU time (user + system) of the program under test per request or event, in µs. */
  cpuUs: Record<Impl, number>;
}

/**
 * Runs one scenario: `rounds` alternations of the hand-written program and Sluice, each measured
 * by `measure` over `count` requests or events.
 */
async function scenario(
  server: NatsServer,
  o: Options,
  name: "service" | "enrich",
  count: number,
  measure: (count: number) => Promise<number>,
): Promise<Result> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-request-bench-" });
  const file = `${dir}/sluice.yaml`;
  await Deno.writeTextFile(file, (name === "service" ? SERVICE_YAML : ENRICH_YAML)(server.url));
  const results: Record<Impl, number[]> = { baseline: [], sluice: [] };
  const cpu: Record<Impl, number[]> = { baseline: [], sluice: [] };
  const serverCpu: Record<Impl, number[]> = { baseline: [], sluice: [] };
  try {
    for (let round = 0; round < o.rounds; round++) {
      // Alternate the order, so that neither program always runs on a warmer machine.
      const impls = round % 2 === 0
        ? ["baseline", "sluice"] as const
        : ["sluice", "baseline"] as const;
      for (const impl of impls) {
        const child = impl === "baseline"
          ? SluiceProcess.start([name === "service" ? "responder" : "enricher", server.url], {
            runtime: ["deno"],
            entry: SELF,
            denoFlags: o.cpuProf
              ? [...CHILD_FLAGS, "--cpu-prof", `--cpu-prof-dir=${o.cpuProf}`]
              : CHILD_FLAGS,
          })
          : SluiceProcess.start(["run", "--log-format", "json", file], {
            runtime: ["deno"],
            ...(o.sluiceEntry ? { entry: o.sluiceEntry } : {}),
            denoFlags: o.cpuProf
              ? [...SLUICE_FLAGS, "--cpu-prof", `--cpu-prof-dir=${o.cpuProf}`]
              : SLUICE_FLAGS,
          });
        await using _child = child;
        await child.waitForMsg("started", 30_000);
        // A warm-up, so both are measured with optimised code (and, enriching, a full cache).
        let rate: number;
        let ticks: number;
        let serverTicks: number;
        try {
          await measure(Math.min(count, WARM_UP));
          ticks = await cpuTicks(child.pid);
          serverTicks = await cpuTicks(server.pid!);
          rate = await measure(count);
        } catch (e) {
          // What the program said about it: a warning about refused or failed events.
          for (const r of child.records) if (r.level !== "info") log("child", { ...r });
          throw e;
        }
        const us = (await cpuTicks(child.pid) - ticks) / CLOCK_TICKS_PER_S * 1e6 / count;
        results[impl].push(rate);
        cpu[impl].push(us);
        const serverUs = (await cpuTicks(server.pid!) - serverTicks) / CLOCK_TICKS_PER_S * 1e6 /
          count;
        serverCpu[impl].push(serverUs);
        log("round", {
          scenario: name,
          round,
          impl,
          pid: child.pid,
          "per_s": Math.round(rate),
          "cpu_us": Number(us.toFixed(2)),
          "server_cpu_us": Number(serverUs.toFixed(2)),
        });
        await child.stop();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const roundRatios = results.sluice.map((r, i) => r / results.baseline[i]!);
  return {
    rate: { baseline: median(results.baseline), sluice: median(results.sluice) },
    roundRatios,
    rawRates: results,
    cpuUs: { baseline: median(cpu.baseline), sluice: median(cpu.sluice) },
    serverCpuUs: { baseline: median(serverCpu.baseline), sluice: median(serverCpu.sluice) },
  };
}

async function main(o: Options): Promise<void> {
  await using server = await NatsServer.start();
  const nc = await connect({ servers: server.url, name: "bench-load", noAsyncTraces: true });
  // The registry the enrichers ask; with the cache it answers about 100 requests a round.
  nc.subscribe("registry.*", {
    callback: (_err, m) => void m.respond(`{"site":"oslo","sensor":"${m.subject.slice(9)}"}`),
  });
  try {
    const report: Record<string, unknown> = { rounds: o.rounds };
    const summary = (r: Result, unit: string) => ({
      [`baseline_${unit}_per_s`]: Math.round(r.rate.baseline),
      [`sluice_${unit}_per_s`]: Math.round(r.rate.sluice),
      ratio: Number((r.rate.sluice / r.rate.baseline).toFixed(3)),
      "round_ratio_median": Number(median(r.roundRatios).toFixed(3)),
      "round_ratio_range": [
        Number(Math.min(...r.roundRatios).toFixed(3)),
        Number(Math.max(...r.roundRatios).toFixed(3)),
      ],
      [`baseline_${unit}_per_s_range`]: [
        Math.round(Math.min(...r.rawRates.baseline)),
        Math.round(Math.max(...r.rawRates.baseline)),
      ],
      [`sluice_${unit}_per_s_range`]: [
        Math.round(Math.min(...r.rawRates.sluice)),
        Math.round(Math.max(...r.rawRates.sluice)),
      ],
      "baseline_cpu_us": Number(r.cpuUs.baseline.toFixed(2)),
      "sluice_cpu_us": Number(r.cpuUs.sluice.toFixed(2)),
      "cpu_ratio": Number((r.cpuUs.baseline / r.cpuUs.sluice).toFixed(3)),
      "server_cpu_us": {
        baseline: Number(r.serverCpuUs.baseline.toFixed(2)),
        sluice: Number(r.serverCpuUs.sluice.toFixed(2)),
      },
    });
    if (o.scenarios.includes("service")) {
      await using gens = await Generators.start(nc, server.url, o.generators);
      const service = await scenario(
        server,
        o,
        "service",
        o.requests,
        (n) => gens.run(n, o.window),
      );
      report.service = {
        requests: o.requests,
        outstanding: o.window,
        generators: o.generators,
        ...summary(service, "requests"),
        "generators_cpu_us": Number(median(gens.cpuUs).toFixed(2)),
        "target_30k_met": service.rate.sluice >= 30_000,
      };
    }
    if (o.scenarios.includes("enrich")) {
      const enrich = await scenario(server, o, "enrich", o.events, (n) => flood(nc, n));
      report.enrich = { events: o.events, ...summary(enrich, "events") };
    }
    Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(report, null, 2) + "\n"));
  } finally {
    await nc.close();
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "responder") await responder(Deno.args[1]!);
  else if (Deno.args[0] === "generator") await generator(Deno.args[1]!, Deno.args[2]!);
  else if (Deno.args[0] === "enricher") await enricher(Deno.args[1]!);
  else await main(options(Deno.args));
}
