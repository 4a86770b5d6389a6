/**
 * Fleet scale, by simulation: N lightweight gateway clients in this one process, each with its own
 * connection and the watchers a gateway without labels runs (`all.>` and `gw.<id>.>`), against a
 * real nats-server with JetStream. Measures the time from a deploy to every gateway (the write of
 * `all.<pipeline>`, what `sluice fleet deploy --all` does after validating) until every gateway
 * has reported it (`sluice.fleet.report.<id>`), and the server's CPU time and memory.
 *
 * A simulated gateway parses the deployed YAML and reports; it neither validates nor restarts a
 * pipeline, which a real gateway does on its own CPU (a few milliseconds, see its log).
 *
 * Run: deno run -A bench/fleet_bench.ts [N...]   (default 10 100 500)
 */
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { parse } from "yaml";
import { NatsServer } from "../dev/nats_server.ts";
import { CLOCK_TICKS_PER_S, cpuTicks, procStatus } from "./_proc.ts";
import { summarize } from "./_stats.ts";

const ROUNDS = 5;
const BUCKET = "sluice-fleet";
const PIPELINE = `pipelines:
  bench:
    source: {connector: local, subject: in.bench}
    processors: [{map: {round: "ROUND"}}]
    sinks: [{connector: local, subject: out.bench}]
`;

/** One simulated gateway: a connection and two KV watchers. */
async function gateway(url: string, id: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url, name: id });
  const kv = await new Kvm(nc).open(BUCKET);
  const encoder = new TextEncoder();
  for (const key of ["all.>", `gw.${id}.>`]) {
    const watch = await kv.watch({ key });
    (async () => {
      for await (const e of watch) {
        if (e.operation !== "PUT") continue;
        parse(e.string());
        nc.publish(
          `sluice.fleet.report.${id}`,
          encoder.encode(JSON.stringify({ id, revision: e.revision })),
        );
      }
    })().catch(() => {});
  }
  return nc;
}

interface Result {
  gateways: number;
  setupMs: number;
  deployMs: ReturnType<typeof summarize>;
  serverCpuMsPerDeploy: number;
  serverRssMiB: number;
  serverPeakMiB: number;
}

async function run(server: NatsServer, n: number): Promise<Result> {
  const operator = await connect({ servers: server.url });
  const kv = await new Kvm(operator).create(BUCKET, { history: 10 });
  await kv.purge("all.bench").catch(() => {});
  const reports = new Map<number, Set<string>>();
  let wake: (() => void) | undefined;
  const sub = operator.subscribe("sluice.fleet.report.>", {
    callback: (_e, m) => {
      const { id, revision } = m.json<{ id: string; revision: number }>();
      let ids = reports.get(revision);
      if (!ids) reports.set(revision, ids = new Set());
      ids.add(id);
      wake?.();
    },
  });
  await operator.flush();
  const setupStart = performance.now();
  const gateways: NatsConnection[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from(
      { length: Math.min(50, n - i) },
      (_, j) => gateway(server.url, `gw-${String(i + j).padStart(4, "0")}`),
    );
    gateways.push(...await Promise.all(batch));
  }
  const setupMs = performance.now() - setupStart;
  const times: number[] = [];
  const pid = server.pid!;
  const cpuBefore = await cpuTicks(pid);
  for (let round = 1; round <= ROUNDS; round++) {
    const start = performance.now();
    const revision = await kv.put("all.bench", PIPELINE.replace("ROUND", String(round)));
    await new Promise<void>((resolve) => {
      const check = () => {
        if ((reports.get(revision)?.size ?? 0) >= n) {
          wake = undefined;
          resolve();
        }
      };
      wake = check;
      check();
    });
    times.push(performance.now() - start);
  }
  const cpuAfter = await cpuTicks(pid);
  const mem = await procStatus(pid);
  sub.unsubscribe();
  await Promise.all(gateways.map((g) => g.close()));
  await kv.destroy();
  await operator.close();
  return {
    gateways: n,
    setupMs,
    deployMs: summarize(times),
    serverCpuMsPerDeploy: ((cpuAfter - cpuBefore) / CLOCK_TICKS_PER_S) * 1000 / ROUNDS,
    serverRssMiB: mem.rssKiB / 1024,
    serverPeakMiB: mem.hwmKiB / 1024,
  };
}

const sizes = Deno.args.length > 0 ? Deno.args.map(Number) : [10, 100, 500];
const rows: string[] = [];
for (const n of sizes) {
  // A fresh server per size, so that memory is that of this many gateways.
  await using server = await NatsServer.start({ jetstream: true });
  const r = await run(server, n);
  rows.push(
    `| ${r.gateways} | ${r.setupMs.toFixed(0)} | ${r.deployMs.median.toFixed(1)} | ${
      r.deployMs.min.toFixed(1)
    }–${r.deployMs.max.toFixed(1)} | ${r.serverCpuMsPerDeploy.toFixed(0)} | ${
      r.serverRssMiB.toFixed(1)
    } | ${r.serverPeakMiB.toFixed(1)} |`,
  );
}
const out = [
  `Fleet deploy fan-out (${ROUNDS} deploys per size, nats-server ${Deno.build.os}):`,
  "",
  "| gateways | connect + watch all (ms) | deploy → all reported, median (ms) | min–max (ms) | server CPU per deploy (ms) | server RSS (MiB) | server peak RSS (MiB) |",
  "|---|---|---|---|---|---|---|",
  ...rows,
];
for (const line of out) Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
