// Unit tests of the health model: snapshot derivation and readiness, the HTTP handler, the
// heartbeat summary and the `sluice status` table, with stand-ins for connectors and pipelines.
import assert from "node:assert/strict";
import { formatAge, formatStatus, statusUrl } from "../src/cli/status.ts";
import { parseInvocation } from "../src/cli/args.ts";
import { newCounters, type PipelineCounters } from "../src/engine/counters.ts";
import type { PipelineState } from "../src/engine/pipeline.ts";
import type { ConnectorHealth, ConnectorState } from "../src/engine/types.ts";
import { UsageError } from "../src/errors.ts";
import { handleHealthRequest, isLoopback } from "../src/health/http.ts";
import { heartbeatOf } from "../src/health/nats.ts";
import {
  HealthMonitor,
  type HealthPipeline,
  type HealthSource,
  measureRtt,
  pipelineHealthState,
  takeSnapshot,
} from "../src/health/snapshot.ts";

const T0 = Date.parse("2024-05-01T12:00:00.000Z");

class FakeConnector {
  h: ConnectorHealth;
  rttMs: number | undefined = undefined;
  constructor(name: string, state: ConnectorState) {
    this.h = {
      name,
      type: "nats",
      state,
      since: T0 + 1000,
      reconnects: 0,
      lastError: undefined,
      server: state === "connected" ? { id: "S1", version: "2.9.10", url: "h:4222" } : undefined,
      messagesIn: 0,
      messagesOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      overflows: 0,
      users: 1,
    };
  }
  health(): ConnectorHealth {
    return this.h;
  }
  rtt(): Promise<number | undefined> {
    return this.rttMs === undefined ? new Promise(() => {}) : Promise.resolve(this.rttMs);
  }
}

class FakePipeline implements HealthPipeline {
  readonly counters: PipelineCounters = newCounters();
  constructor(
    readonly name: string,
    public state: PipelineState,
    readonly uses: string[],
  ) {}
  connectorNames(): string[] {
    return this.uses;
  }
  inFlight(): number {
    return 0;
  }
}

function source(
  connectors: FakeConnector[],
  pipelines: FakePipeline[],
): HealthSource & { connectors: Map<string, FakeConnector> } {
  return {
    connectors: new Map(connectors.map((c) => [c.h.name, c])),
    pipelines: new Map(pipelines.map((p) => [p.name, p])),
    startedAt: T0,
  };
}

const fixed = {
  instance: "gw-01",
  now: T0 + 10_000,
  memory: () => ({ rss: 3, heapUsed: 1, heapTotal: 2 }),
  version: "9.9.9",
  pid: 7,
};

Deno.test("pipelineHealthState() derives degraded from connectors and maps stopping", () => {
  assert.equal(pipelineHealthState("running", ["connected", "connected"]), "running");
  assert.equal(pipelineHealthState("running", ["connected", "reconnecting"]), "degraded");
  assert.equal(pipelineHealthState("running", ["disconnected"]), "degraded");
  assert.equal(pipelineHealthState("starting", ["connecting"]), "starting");
  assert.equal(pipelineHealthState("stopping", ["connected"]), "stopped");
  assert.equal(pipelineHealthState("stopped", []), "stopped");
});

Deno.test("takeSnapshot() is ready when every connector in use is connected and pipelines run", () => {
  const local = new FakeConnector("local", "connected");
  const spare = new FakeConnector("spare", "closed");
  const alerts = new FakePipeline("alerts", "running", ["local"]);
  alerts.counters.in = 5;
  alerts.counters.passed = 2;
  alerts.counters.deadLettered = 1;
  alerts.counters.lastEventAt = T0 + 9_000;
  const s = takeSnapshot(source([local, spare], [alerts]), fixed);
  assert.equal(s.ready, true, "an unused, closed connector does not count");
  assert.deepEqual(s.not_ready, []);
  assert.equal(s.time, "2024-05-01T12:00:10.000Z");
  assert.deepEqual(s.process, {
    version: "9.9.9",
    instance: "gw-01",
    pid: 7,
    "started_at": "2024-05-01T12:00:00.000Z",
    "uptime_seconds": 10,
    "rss_bytes": 3,
    "heap_used_bytes": 1,
    "heap_total_bytes": 2,
  });
  assert.deepEqual(s.connectors.map((c) => [c.name, c.in_use]), [["local", true], [
    "spare",
    false,
  ]]);
  assert.deepEqual(s.connectors[0]?.server, { id: "S1", version: "2.9.10", url: "h:4222" });
  const p = s.pipelines[0]!;
  assert.equal(p.state, "running");
  assert.equal(p.counters.in, 5);
  assert.equal(p.counters.dead_lettered, 1);
  assert.equal(p.last_event_at, "2024-05-01T12:00:09.000Z");
  assert.equal(s.reloads, null);
});

Deno.test("takeSnapshot() names the connector and the degraded pipeline when a link is down", () => {
  const local = new FakeConnector("local", "reconnecting");
  local.h.lastError = { message: "connection refused", at: T0 + 2000 };
  const alerts = new FakePipeline("alerts", "running", ["local"]);
  const s = takeSnapshot(source([local], [alerts]), fixed);
  assert.equal(s.ready, false);
  assert.deepEqual(s.not_ready, [
    {
      kind: "connector",
      name: "local",
      state: "reconnecting",
      reason:
        'connector "local" is reconnecting since 2024-05-01T12:00:01.000Z; last error: connection refused',
    },
    {
      kind: "pipeline",
      name: "alerts",
      state: "degraded",
      reason: 'pipeline "alerts" is degraded: connector "local" is reconnecting',
    },
  ]);
  assert.equal(s.connectors[0]?.server, null, "no server while not connected");
  assert.equal(s.pipelines[0]?.last_event_at, null);
});

Deno.test("takeSnapshot() follows live state: not ready while starting, ready once running", () => {
  const local = new FakeConnector("local", "connecting");
  const alerts = new FakePipeline("alerts", "starting", ["local"]);
  const src = source([local], [alerts]);
  const before = takeSnapshot(src, fixed);
  assert.equal(before.ready, false);
  assert.equal(before.pipelines[0]?.state, "starting");
  local.h.state = "connected";
  alerts.state = "running";
  assert.equal(takeSnapshot(src, fixed).ready, true);
  local.h.state = "disconnected";
  assert.equal(takeSnapshot(src, fixed).ready, false);
});

Deno.test("takeSnapshot() counts alsoInUse connectors (health over NATS) for readiness", () => {
  const local = new FakeConnector("local", "connected");
  const fleet = new FakeConnector("fleet", "reconnecting");
  const alerts = new FakePipeline("alerts", "running", ["local"]);
  const src = source([local, fleet], [alerts]);
  assert.equal(takeSnapshot(src, fixed).ready, true);
  const s = takeSnapshot(src, { ...fixed, alsoInUse: ["fleet"] });
  assert.equal(s.ready, false);
  assert.equal(s.not_ready[0]?.name, "fleet");
});

Deno.test("measureRtt() measures connected connectors and gives up on a silent one", async () => {
  const fast = new FakeConnector("fast", "connected");
  fast.rttMs = 3;
  const silent = new FakeConnector("silent", "connected"); // rtt() never settles
  const down = new FakeConnector("down", "reconnecting");
  down.rttMs = 1;
  const rtt = await measureRtt(source([fast, silent, down], []), 50);
  assert.deepEqual([...rtt], [["fast", 3]]);
  const s = takeSnapshot(source([fast, silent], []), { ...fixed, rtt });
  assert.deepEqual(s.connectors.map((c) => c.rtt_ms), [3, null]);
});

Deno.test("heartbeatOf() summarises connectors in use, pipelines and the counters that moved", () => {
  const local = new FakeConnector("local", "connected");
  const spare = new FakeConnector("spare", "closed");
  const alerts = new FakePipeline("alerts", "running", ["local"]);
  Object.assign(alerts.counters, { in: 9, passed: 3, filtered: 4, parseErrors: 1, sinkErrors: 1 });
  const beat = heartbeatOf(takeSnapshot(source([local, spare], [alerts]), fixed));
  assert.deepEqual(beat, {
    instance: "gw-01",
    version: "9.9.9",
    time: "2024-05-01T12:00:10.000Z",
    "uptime_seconds": 10,
    ready: true,
    connectors: { local: "connected" },
    pipelines: {
      alerts: {
        state: "running",
        in: 9,
        passed: 3,
        filtered: 4,
        "dead_lettered": 0,
        "parse_errors": 1,
        "sink_errors": 1,
        errors: 2,
      },
    },
  });
});

Deno.test("handleHealthRequest() answers /healthz, /readyz 503 with reasons, 404 and 405", async () => {
  const local = new FakeConnector("local", "reconnecting");
  const alerts = new FakePipeline("alerts", "running", ["local"]);
  const monitor = new HealthMonitor(source([local], [alerts]), fixed, 10);
  const ask = (path: string, method = "GET") =>
    handleHealthRequest(new Request(`http://h${path}`, { method }), monitor);

  const live = await ask("/healthz");
  assert.equal(live.status, 200);
  assert.deepEqual(await live.json(), { alive: true });

  const ready = await ask("/readyz");
  assert.equal(ready.status, 503);
  const body = await ready.json();
  assert.equal(body.ready, false);
  assert.deepEqual(body.not_ready.map((n: { name: string }) => n.name), ["local", "alerts"]);

  local.h.state = "connected";
  const nowReady = await ask("/readyz");
  assert.equal(nowReady.status, 200);
  await nowReady.body?.cancel();

  const head = await ask("/readyz", "HEAD");
  assert.equal(head.status, 200);
  assert.equal(head.body, null);

  const status = await ask("/status");
  assert.equal(status.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal((await status.json()).process.instance, "gw-01");

  const metrics = await ask("/metrics");
  assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  assert.match(await metrics.text(), /^sluice_ready 1$/m);

  const missing = await ask("/nope");
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  const post = await ask("/readyz", "POST");
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  await post.body?.cancel();
});

Deno.test("isLoopback() tells loopback hosts from the rest", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) assert.ok(isLoopback(h), h);
  for (const h of ["0.0.0.0", "::", "192.168.1.10", "gw.local"]) assert.ok(!isLoopback(h), h);
});

Deno.test("formatStatus() prints a headline, connector and pipeline tables and reasons", () => {
  const local = new FakeConnector("local", "reconnecting");
  local.h.reconnects = 3;
  local.h.lastError = { message: "connection refused", at: T0 + 7_000 };
  const alerts = new FakePipeline("temperature-alerts", "running", ["local"]);
  Object.assign(alerts.counters, {
    in: 1200,
    passed: 340,
    filtered: 850,
    deadLettered: 10,
    parseErrors: 10,
  });
  const lines = formatStatus(takeSnapshot(source([local], [alerts]), fixed));
  assert.deepEqual(lines, [
    "sluice 9.9.9 on gw-01, up 10s: NOT READY",
    "",
    "CONNECTOR  STATE         SINCE  RECONNECTS  RTT  LAST ERROR",
    "local      reconnecting  9s     3           -    connection refused (3s ago)",
    "",
    "PIPELINE            STATE     IN    PASSED  FILTERED  DEAD-LETTERED  ERRORS",
    "temperature-alerts  degraded  1200  340     850       10             10",
    "",
    "Not ready:",
    '  connector "local" is reconnecting since 2024-05-01T12:00:01.000Z; last error: connection refused',
    '  pipeline "temperature-alerts" is degraded: connector "local" is reconnecting',
  ]);
});

Deno.test("formatAge() and statusUrl() format for people and find /status", () => {
  assert.equal(formatAge(-5), "0ms");
  assert.equal(formatAge(850), "850ms");
  assert.equal(formatAge(42_000), "42s");
  assert.equal(formatAge(187_000), "3m07s");
  assert.equal(formatAge(7_500_000), "2h05m");
  assert.equal(formatAge(97_200_000), "1d03h");
  assert.equal(statusUrl("http://127.0.0.1:9180"), "http://127.0.0.1:9180/status");
  assert.equal(statusUrl("https://proxy/gw-01/"), "https://proxy/gw-01/status");
  assert.equal(statusUrl("http://h:1/status"), "http://h:1/status");
});

Deno.test("parseInvocation() parses status with --url and rejects misuse", () => {
  const inv = parseInvocation(["status"]);
  assert.equal(inv.command, "status");
  assert.equal(inv.url, "http://127.0.0.1:9180");
  assert.equal(
    parseInvocation(["status", "--url", "http://10.0.0.5:9999"]).url,
    "http://10.0.0.5:9999",
  );
  assert.throws(() => parseInvocation(["status", "dir/"]), UsageError);
  assert.throws(() => parseInvocation(["status", "--url", "9180"]), UsageError);
  assert.throws(() => parseInvocation(["run", "--url", "http://x"]), /--url goes with status/);
});
