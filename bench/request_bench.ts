/**
 * Sluice as a NATS service against a hand-written nats.js responder doing the same work: a
 * `reply: true` pipeline with `map: {fahrenheit: celsius * 9.0 / 5.0 + 32.0}` vs a program that
 * subscribes, parses, adds the field and answers. One load generator keeps a fixed number of
 * requests outstanding against each in turn on one nats-server; rounds alternate so that CPU
 * steal hits both alike. Reports requests/s (median of the rounds) and the ratio.
 *
 * Run on its own:
 *
 * ```
 * deno run -A bench/request_bench.ts [--requests N] [--window W] [--rounds R]
 * ```
 *
 * With `responder <nats-url>` as arguments it is the hand-written responder itself.
 *
 * @module
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../src/demo/nats_server.ts";
import { SluiceProcess } from "../tests/_harness/sluice_process.ts";

const SUBJECT = "svc.convert";
const SELF = new URL(import.meta.url).pathname;
const CHILD_FLAGS = ["--allow-net=127.0.0.1", "--allow-env", "--allow-sys=hostname"];
const SLUICE_FLAGS = ["--allow-net", "--allow-read", "--allow-env", "--allow-sys=hostname"];

interface Options {
  requests: number;
  window: number;
  rounds: number;
}

function options(args: string[]): Options {
  const o: Options = { requests: 100_000, window: 256, rounds: 3 };
  for (let i = 0; i < args.length; i += 2) {
    const value = Number(args[i + 1]);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${args[i]}: expected a count`);
    if (args[i] === "--requests") o.requests = value;
    else if (args[i] === "--window") o.window = value;
    else if (args[i] === "--rounds") o.rounds = value;
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

/** Sends `requests` requests with `window` outstanding at any time; returns requests/s. */
async function load(nc: NatsConnection, requests: number, window: number): Promise<number> {
  let next = 0;
  let wrong = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < requests) {
      const i = next++;
      const celsius = i % 100;
      const reply = await nc.request(SUBJECT, `{"id":${i},"celsius":${celsius}}`, {
        timeout: 30_000,
      });
      if (i % 97 === 0) {
        const body = reply.json<{ fahrenheit?: number }>();
        if (body.fahrenheit !== celsius * 9 / 5 + 32) wrong++;
      }
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  const seconds = (performance.now() - started) / 1000;
  if (wrong > 0) throw new Error(`${wrong} sampled replies were wrong`);
  return requests / seconds;
}

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

async function main(o: Options): Promise<void> {
  await using server = await NatsServer.start();
  const dir = await Deno.makeTempDir({ prefix: "sluice-request-bench-" });
  const file = `${dir}/service.yaml`;
  await Deno.writeTextFile(file, SERVICE_YAML(server.url));
  const nc = await connect({ servers: server.url, name: "bench-load", noAsyncTraces: true });
  const results: Record<"baseline" | "sluice", number[]> = { baseline: [], sluice: [] };
  try {
    for (let round = 0; round < o.rounds; round++) {
      for (const impl of ["baseline", "sluice"] as const) {
        const child = impl === "baseline"
          ? SluiceProcess.start(["responder", server.url], {
            runtime: ["deno"],
            entry: SELF,
            denoFlags: CHILD_FLAGS,
          })
          : SluiceProcess.start(["run", "--log-format", "json", file], {
            runtime: ["deno"],
            denoFlags: SLUICE_FLAGS,
          });
        await using _child = child;
        await child.waitForMsg("started", 30_000);
        // A short warm-up, so both are measured with optimised code.
        await load(nc, Math.min(10_000, o.requests), o.window);
        const rate = await load(nc, o.requests, o.window);
        results[impl].push(rate);
        log("round", { round, impl, requests_per_s: Math.round(rate) });
        await child.stop();
      }
    }
  } finally {
    await nc.close();
    await Deno.remove(dir, { recursive: true });
  }
  const baseline = median(results.baseline);
  const sluice = median(results.sluice);
  const report = {
    requests: o.requests,
    outstanding: o.window,
    rounds: o.rounds,
    "baseline_requests_per_s": Math.round(baseline),
    "sluice_requests_per_s": Math.round(sluice),
    ratio: Number((sluice / baseline).toFixed(3)),
    "target_30k_met": sluice >= 30_000,
  };
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(report, null, 2) + "\n"));
}

if (import.meta.main) {
  if (Deno.args[0] === "responder") await responder(Deno.args[1]!);
  else await main(options(Deno.args));
}
