// Health endpoints against a real nats-server and the real CLI: readiness that follows the
// connection, exact counters, Prometheus exposition, health over NATS, `sluice status`, and no
// secrets in anything health reports.
import assert from "node:assert/strict";
import { connect, type ConnectionOptions } from "@nats-io/transport-node";
import { NatsServer } from "../dev/nats_server.ts";
import { runSluice, SluiceProcess } from "../dev/sluice_process.ts";
import { Collector, pollUntil } from "../dev/wait.ts";
import { METRIC_NAMES } from "../src/health/metrics.ts";
import type { HealthSnapshot, NotReady } from "../src/health/snapshot.ts";
import type { Heartbeat } from "../src/health/nats.ts";
import { countersBySnake, newCounters } from "../src/engine/counters.ts";
import { nkeys } from "@nats-io/nats-core";

const PROMTOOL = findPromtool();

function findPromtool(): string | undefined {
  for (const candidate of ["promtool", "/usr/bin/promtool"]) {
    try {
      const { success } = new Deno.Command(candidate, { args: ["--version"] }).outputSync();
      if (success) return candidate;
    } catch {
      // Not installed under this name.
    }
  }
  return undefined;
}

/** A running Sluice with health endpoints, and the temporary directory of its config. */
class HealthFixture implements AsyncDisposable {
  readonly sluice: SluiceProcess;
  readonly dir: string;
  url = "";

  private constructor(sluice: SluiceProcess, dir: string) {
    this.sluice = sluice;
    this.dir = dir;
  }

  /**
   * Writes `config` and runs `sluice run` on it; resolves once Sluice logs `readyMsg`
   * ("health listening", whose `url` is kept, unless the config has no HTTP).
   */
  static async start(config: string, readyMsg = "health listening"): Promise<HealthFixture> {
    const dir = await Deno.makeTempDir({ prefix: "sluice-health-" });
    const path = `${dir}/sluice.yaml`;
    await Deno.writeTextFile(path, config);
    const fixture = new HealthFixture(
      SluiceProcess.start(["run", "--log-format", "json", path]),
      dir,
    );
    try {
      const record = await fixture.sluice.waitForMsg(readyMsg);
      if (typeof record.url === "string") fixture.url = record.url;
    } catch (e) {
      await fixture[Symbol.asyncDispose]();
      throw e;
    }
    return fixture;
  }

  /** GET a path; the body is always read. */
  async get(path: string): Promise<{ status: number; body: string; type: string | null }> {
    const r = await fetch(`${this.url}${path}`);
    return { status: r.status, body: await r.text(), type: r.headers.get("content-type") };
  }

  async status(): Promise<HealthSnapshot> {
    const r = await this.get("/status");
    assert.equal(r.status, 200, r.body);
    return JSON.parse(r.body) as HealthSnapshot;
  }

  /** Polls `/readyz` until it answers `status`. */
  readyz(status: 200 | 503, ms = 15_000): Promise<{ status: number; body: string }> {
    return pollUntil(
      async () => {
        const r = await this.get("/readyz");
        return r.status === status ? r : undefined;
      },
      ms,
      `/readyz to answer ${status}`,
      50,
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.sluice[Symbol.asyncDispose]();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** One connector `local` on `server`, retrying fast, and pipeline `alerts`. */
function basicConfig(server: NatsServer, health: string): string {
  return `
connectors:
  local:
    type: nats
    servers: ${server.url}
    reconnect: { wait: 100ms, jitter: 0ms }
pipelines:
  alerts:
    source: { connector: local, subject: sensors.> }
    filter: temperature > 30
    sinks: [{ connector: local, subject: alerts.high }]
health:
${health}
`;
}

async function client(server: NatsServer, options: Partial<ConnectionOptions> = {}) {
  return await connect({ servers: server.url, ...options });
}

/** Reads one sample from exposition text, e.g. `sluice_ready` or `x{pipeline="a"}`. */
function sample(metrics: string, series: string): number | undefined {
  for (const line of metrics.split("\n")) {
    if (line.startsWith(series + " ")) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

Deno.test("/readyz follows the connection: 200, 503 naming the connector, 200 after restart", async () => {
  await using server = await NatsServer.start();
  await using fx = await HealthFixture.start(basicConfig(server, `  listen: 127.0.0.1:0`));
  await fx.sluice.waitForMsg("started");
  const up = await fx.readyz(200);
  assert.deepEqual(JSON.parse(up.body), { ready: true });
  const healthz = await fx.get("/healthz");
  assert.equal(healthz.status, 200);

  const ok = await runSluice(["status", "--url", fx.url]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /READY/);
  assert.match(ok.stdout, /^CONNECTOR\s+STATE\s+SINCE\s+RECONNECTS\s+RTT\s+LAST ERROR$/m);
  assert.match(ok.stdout, /^local\s+connected\s/m);
  assert.match(ok.stdout, /^PIPELINE\s+STATE\s+IN\s+PASSED\s+FILTERED\s+DEAD-LETTERED\s+ERRORS$/m);
  assert.match(ok.stdout, /^alerts\s+running\s+0\s+0\s+0\s+0\s+0$/m);

  await server.kill();
  const down = await fx.readyz(503);
  const body = JSON.parse(down.body) as { ready: boolean; not_ready: NotReady[] };
  assert.equal(body.ready, false);
  const connector = body.not_ready.find((n) => n.kind === "connector");
  assert.equal(connector?.name, "local");
  assert.match(connector?.reason ?? "", /connector "local" is (disconnected|reconnecting)/);
  const pipeline = body.not_ready.find((n) => n.kind === "pipeline");
  assert.equal(pipeline?.name, "alerts");
  assert.equal(pipeline?.state, "degraded");
  assert.equal((await fx.get("/healthz")).status, 200, "liveness does not depend on NATS");
  const metrics = (await fx.get("/metrics")).body;
  assert.equal(sample(metrics, "sluice_ready"), 0);
  assert.equal(sample(metrics, 'sluice_connector_up{connector="local"}'), 0);
  assert.equal(sample(metrics, 'sluice_pipeline_state{pipeline="alerts",state="degraded"}'), 1);

  const notReady = await runSluice(["status", "--url", fx.url]);
  assert.equal(notReady.code, 1, notReady.stderr);
  assert.match(notReady.stdout, /NOT READY/);
  assert.match(notReady.stdout, /^alerts\s+degraded\s/m);
  assert.match(notReady.stdout, /connector "local" is/);

  await server.restart();
  await fx.readyz(200);
  const s = await fx.status();
  assert.equal(s.ready, true);
  assert.equal(s.connectors[0]?.state, "connected");
  assert.ok((s.connectors[0]?.reconnects ?? 0) >= 1, "the reconnect is counted");
  assert.equal(s.pipelines[0]?.state, "running");
  assert.equal((await fx.sluice.stop()).code, 0);
});

Deno.test("/readyz is 503 while the connector is still connecting, 200 once connected", async () => {
  await using server = await NatsServer.start();
  await server.kill(); // Keeps the port: Sluice starts against a server that is not there yet.
  await using fx = await HealthFixture.start(basicConfig(server, `  listen: 127.0.0.1:0`));
  await fx.sluice.waitForMsg("connector unreachable, retrying");
  assert.equal((await fx.get("/healthz")).status, 200);
  const early = await fx.get("/readyz");
  assert.equal(early.status, 503);
  const body = JSON.parse(early.body) as { not_ready: NotReady[] };
  assert.deepEqual(
    body.not_ready.map((n) => [n.kind, n.name, n.state]),
    [["connector", "local", "connecting"], ["pipeline", "alerts", "starting"]],
  );
  assert.match(body.not_ready[0]!.reason, /last error: /);
  await server.restart();
  await fx.sluice.waitForMsg("started");
  await fx.readyz(200);
  assert.equal((await fx.sluice.stop()).code, 0);
});

Deno.test("health over NATS with refused credentials stops sluice with exit 1", async () => {
  await using server = await NatsServer.start();
  await using fleet = await NatsServer.start({ extraConfig: `authorization { token: "right" }` });
  await using fx = await HealthFixture.start(
    basicConfig(server, `  listen: false\n  instance: gw-1\n  nats: { connector: fleet }`)
      .replace(
        "pipelines:",
        `  fleet:\n    type: nats\n    servers: ${fleet.url}\n    auth: { token: wrong }\npipelines:`,
      ),
    "health over NATS failed",
  );
  const status = await fx.sluice.status;
  assert.equal(status.code, 1, fx.sluice.stderr());
});

Deno.test("counters match the traffic exactly in /status and /metrics", async () => {
  await using server = await NatsServer.start();
  await using fx = await HealthFixture.start(basicConfig(server, `  listen: 127.0.0.1:0`));
  await fx.sluice.waitForMsg("started");
  const nc = await client(server);
  try {
    const alerts = new Collector<string>();
    nc.subscribe("alerts.high", { callback: (_e, m) => alerts.push(m.string()) });
    await nc.flush();
    const N = 25, K = 4, M = 9;
    const enc = new TextEncoder();
    for (let i = 0; i < N; i++) {
      const payload = i < K
        ? "{not json"
        : i < K + M
        ? JSON.stringify({ temperature: 40 + i })
        : JSON.stringify({ temperature: 10 });
      nc.publish(`sensors.t${i}`, enc.encode(payload));
    }
    await nc.flush();
    await alerts.waitForCount(M, 10_000, `${M} alerts`);
    const s = await pollUntil(
      async () => {
        const s = await fx.status();
        return s.pipelines[0]?.counters.in === N ? s : undefined;
      },
      10_000,
      `/status to count ${N} events`,
    );
    const c = s.pipelines[0]!.counters;
    assert.deepEqual(c, {
      ...countersBySnake(newCounters()),
      in: N,
      passed: M,
      filtered: N - K - M,
      "dead_lettered": 0,
      "parse_errors": K,
      "filter_errors": 0,
      "template_errors": 0,
      "sink_errors": 0,
      "dead_letter_errors": 0,
    });
    assert.notEqual(s.pipelines[0]!.last_event_at, null);
    assert.equal(s.pipelines[0]!.in_flight, 0);

    const m = await fx.get("/metrics");
    assert.equal(m.status, 200);
    assert.match(m.type ?? "", /^text\/plain; version=0\.0\.4/);
    const p = 'pipeline="alerts"';
    assert.equal(sample(m.body, `sluice_pipeline_events_received_total{${p}}`), N);
    assert.equal(sample(m.body, `sluice_pipeline_events_total{${p},outcome="passed"}`), M);
    assert.equal(sample(m.body, `sluice_pipeline_events_total{${p},outcome="parse_error"}`), K);
    assert.equal(
      sample(m.body, `sluice_pipeline_events_total{${p},outcome="filtered"}`),
      N - K - M,
    );
    assert.equal(sample(m.body, `sluice_pipeline_events_total{${p},outcome="filter_error"}`), 0);
    // Every family is there, with HELP and TYPE, in the pinned order.
    const families = [...m.body.matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1]);
    assert.deepEqual(families, METRIC_NAMES);
    assert.equal(
      [...m.body.matchAll(/^# HELP (\S+) /gm)].length,
      METRIC_NAMES.length,
    );
    assert.ok((sample(m.body, 'sluice_connector_messages_in_total{connector="local"}') ?? 0) >= N);
  } finally {
    await nc.close();
  }
});

Deno.test({
  // Ignored, with the reason in its name, only where promtool is missing.
  name: "/metrics passes promtool check metrics" +
    (PROMTOOL === undefined ? " (SKIPPED: promtool not found: apt-get install prometheus)" : ""),
  ignore: PROMTOOL === undefined,
  async fn() {
    await using server = await NatsServer.start();
    await using fx = await HealthFixture.start(basicConfig(server, `  listen: 127.0.0.1:0`));
    await fx.sluice.waitForMsg("started");
    const nc = await client(server);
    try {
      nc.publish("sensors.a", JSON.stringify({ temperature: 50 }));
      nc.publish("sensors.b", "{broken");
      await nc.flush();
      await pollUntil(
        async () => {
          const s = await fx.status();
          return s.pipelines[0]?.counters.in === 2 ? true : undefined;
        },
        10_000,
        "2 events counted",
      );
    } finally {
      await nc.close();
    }
    const metrics = (await fx.get("/metrics")).body;
    const child = new Deno.Command(PROMTOOL!, {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(metrics));
    await writer.close();
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(
      out.code,
      0,
      `promtool check metrics failed:\n${text}\n--- metrics ---\n${metrics}`,
    );
    assert.equal(text.trim(), "", `promtool reported problems:\n${text}`);
  },
});

Deno.test("health over NATS: the responder answers and heartbeats arrive", async () => {
  await using server = await NatsServer.start();
  await using fx = await HealthFixture.start(
    basicConfig(
      server,
      `  listen: false
  instance: gw-test-1
  nats: { connector: local, interval: 200ms }`,
    ),
    "health over NATS",
  );
  const nc = await client(server);
  try {
    const beats = new Collector<Heartbeat>();
    nc.subscribe("sluice.heartbeat.gw-test-1", {
      callback: (_e, m) => beats.push(m.json<Heartbeat>()),
    });
    await nc.flush();
    const [a, b] = await beats.waitForCount(2, 15_000, "2 heartbeats");
    for (const beat of [a!, b!]) {
      assert.equal(beat.instance, "gw-test-1");
      assert.equal(typeof beat.ready, "boolean");
      assert.equal(beat.connectors.local, "connected");
      assert.ok(beat.pipelines.alerts);
    }
    assert.ok(Date.parse(b!.time) > Date.parse(a!.time), "heartbeats are fresh");

    const reply = await nc.request("sluice.health.gw-test-1", "", { timeout: 10_000 });
    const s = reply.json<HealthSnapshot>();
    assert.equal(s.process.instance, "gw-test-1");
    assert.equal(s.connectors.find((c) => c.name === "local")?.in_use, true);
    assert.deepEqual(s.pipelines.map((p) => p.name), ["alerts"]);
  } finally {
    await nc.close();
  }
  assert.equal((await fx.sluice.stop()).code, 0);
});

Deno.test("health over NATS follows its connector when a reload replaces it", async () => {
  await using server = await NatsServer.start();
  const health = `  listen: 127.0.0.1:0
  instance: gw-reload
  nats: { connector: local, interval: 200ms }`;
  await using fx = await HealthFixture.start(basicConfig(server, health));
  await fx.sluice.waitForMsg("health over NATS");
  // A changed declaration (a client name) makes the reload replace the connector's client.
  await Deno.writeTextFile(
    `${fx.dir}/sluice.yaml`,
    basicConfig(server, health).replace("    type: nats\n", "    type: nats\n    name: renamed\n"),
  );
  fx.sluice.signal("SIGHUP");
  await fx.sluice.waitForMsg("health over NATS follows the reloaded connector");
  const nc = await client(server);
  try {
    const beats = new Collector<Heartbeat>();
    nc.subscribe("sluice.heartbeat.gw-reload", {
      callback: (_e, m) => beats.push(m.json<Heartbeat>()),
    });
    await nc.flush();
    await beats.waitForCount(1, 15_000, "a heartbeat after the reload");
    const reply = await nc.request("sluice.health.gw-reload", "", { timeout: 10_000 });
    assert.equal(reply.json<HealthSnapshot>().process.instance, "gw-reload");
    await fx.readyz(200);
    // Only the new client remains (besides this test's): the replaced one was let go.
    await pollUntil(
      async () => {
        const names = (await server.connz()).connections.map((c) => c.name ?? "");
        return names.length === 2 && names.includes("renamed") ? true : undefined;
      },
      15_000,
      "the replaced client to close",
    );
  } finally {
    await nc.close();
  }
  assert.equal((await fx.sluice.stop()).code, 0);
});

Deno.test("sluice status: unreachable is exit 1 with a message; bad usage is exit 2", async () => {
  // A port nothing listens on: bind one and close it.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const gone = await runSluice(["status", "--url", `http://127.0.0.1:${port}`]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/status`));
  for (
    const args of [
      ["status", "extra"],
      ["status", "--url", "ftp://127.0.0.1:9180"],
      ["status", "--url", "not a url"],
      ["check", "--url", "http://127.0.0.1:9180"],
    ]
  ) {
    const r = await runSluice(args);
    assert.equal(r.code, 2, `sluice ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /sluice: /);
  }
});

// Secrets for every auth kind. The token and the user/password really connect; the NKey seed
// and the .creds file are read by connectors that cannot reach a server.
const TOKEN = "tok-7f3a9c2e-SECRET";
const PASSWORD = "pw-51b8d0e4-SECRET";
// Real seeds: `check` verifies that a seed file holds one.
const NKEY_SEED = new TextDecoder().decode(nkeys.createUser().getSeed());
const CREDS_SEED = new TextDecoder().decode(nkeys.createUser().getSeed());
const CREDS_JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.SECRETJWTBODY.SECRETJWTSIG";

Deno.test("no password, token, seed or JWT in /status, /readyz, /metrics, NATS health or logs", async () => {
  await using tokenServer = await NatsServer.start({
    extraConfig: `authorization { token: "${TOKEN}" }`,
  });
  await using userServer = await NatsServer.start({
    extraConfig: `authorization { users: [{ user: "sluice", password: "${PASSWORD}" }] }`,
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const nowhere = `nats://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  listener.close();
  const dir = await Deno.makeTempDir({ prefix: "sluice-secrets-" });
  try {
    await Deno.writeTextFile(`${dir}/user.nk`, NKEY_SEED + "\n");
    await Deno.writeTextFile(
      `${dir}/user.creds`,
      `-----BEGIN NATS USER JWT-----\n${CREDS_JWT}\n------END NATS USER JWT------\n\n` +
        `-----BEGIN USER NKEY SEED-----\n${CREDS_SEED}\n------END USER NKEY SEED------\n`,
    );
    const pipeline = (name: string, connector: string) => `
  ${name}:
    source: { connector: ${connector}, subject: in.${name} }
    sinks: [{ connector: ${connector}, subject: out.${name} }]`;
    const config = `
connectors:
  tok:
    type: nats
    servers: ${tokenServer.url}
    auth: { token: "${TOKEN}" }
  up:
    type: nats
    servers: ${userServer.url}
    auth: { user: sluice, password: "${PASSWORD}" }
  nk:
    type: nats
    servers: ${nowhere}
    auth: { nkey_seed_file: ${dir}/user.nk }
    reconnect: { wait: 100ms, jitter: 0ms }
  cr:
    type: nats
    servers: ${nowhere}
    auth: { creds_file: ${dir}/user.creds }
    reconnect: { wait: 100ms, jitter: 0ms }
pipelines:${pipeline("p-tok", "tok")}${pipeline("p-up", "up")}${pipeline("p-nk", "nk")}${
      pipeline("p-cr", "cr")
    }
health:
  listen: 127.0.0.1:0
  instance: gw-secrets
  nats: { connector: tok, interval: 200ms }
`;
    await using fx = await HealthFixture.start(config);
    // Wait until the real connections are up and the unreachable ones have failed at least once.
    const s = await pollUntil(
      async () => {
        const s = await fx.status();
        const state = (n: string) => s.pipelines.find((p) => p.name === n)?.state;
        const failed = (n: string) => s.connectors.find((c) => c.name === n)?.last_error !== null;
        return state("p-tok") === "running" && state("p-up") === "running" && failed("nk") &&
            failed("cr")
          ? s
          : undefined;
      },
      15_000,
      "tok and up running, nk and cr failing",
    );
    assert.equal(s.ready, false);

    const nc = await connect({ servers: tokenServer.url, token: TOKEN });
    let natsHealth = "";
    try {
      const beats = new Collector<string>();
      nc.subscribe("sluice.heartbeat.gw-secrets", { callback: (_e, m) => beats.push(m.string()) });
      await nc.flush();
      natsHealth += (await beats.waitForCount(1, 15_000, "a heartbeat")).join("\n");
      natsHealth += (await nc.request("sluice.health.gw-secrets", "", { timeout: 10_000 }))
        .string();
    } finally {
      await nc.close();
    }
    const reports = {
      "/status": (await fx.get("/status")).body,
      "/readyz": (await fx.get("/readyz")).body,
      "/metrics": (await fx.get("/metrics")).body,
      "NATS health": natsHealth,
      "the log": fx.sluice.stderr(),
    };
    assert.match(reports["/status"], /"nk"/, "the snapshot does list the nkey connector");
    for (const [where, text] of Object.entries(reports)) {
      for (const secret of [TOKEN, PASSWORD, NKEY_SEED, CREDS_SEED, CREDS_JWT, "SECRET"]) {
        assert.ok(!text.includes(secret), `${where} contains a secret ("${secret}"):\n${text}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
