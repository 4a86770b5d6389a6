/**
 * End-to-end tests: the real CLI process against a real nats-server, as an operator runs it.
 */
import assert from "node:assert/strict";
import { connect, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { configDir } from "../dev/config_dir.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { runSluice, SluiceProcess } from "../dev/sluice_process.ts";
import { Collector, pollUntil, scaled } from "../dev/wait.ts";

const enc = new TextEncoder();

function connector(url: string, extra = ""): string {
  return `connectors:
  local:
    type: nats
    servers: ${url}
    name: sluice-e2e
    reconnect: { wait: 100ms, jitter: 50ms }
${extra}`;
}

async function client(server: NatsServer): Promise<NatsConnection & AsyncDisposable> {
  const nc = await connect({ servers: server.url, name: "e2e-test-client" });
  return Object.assign(nc, { [Symbol.asyncDispose]: () => nc.close() });
}

function collect(nc: NatsConnection, subject: string): Collector<Msg> {
  const c = new Collector<Msg>();
  nc.subscribe(subject, { callback: (_err, msg) => c.push(msg) });
  return c;
}

async function startSluice(file: string): Promise<SluiceProcess> {
  const sluice = SluiceProcess.start(["run", "--log-format", "json", file]);
  await sluice.waitForMsg("started");
  return sluice;
}

const ALERTS = `
pipelines:
  temperature-alerts:
    source: { connector: local, subject: sensors.temperature.> }
    filter: temperature > 30
    sinks: [{ connector: local, subject: alerts.high-value }]
    dead_letter: { connector: local, subject: dlq.temperature-alerts }
`;

Deno.test("sluice run routes matching events from wildcard subjects, bytes unchanged", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(connector(server.url) + ALERTS);
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const alerts = collect(nc, "alerts.>");
  await nc.flush();

  // Odd spacing and key order prove the payload is forwarded, not re-serialised.
  const events: [string, string][] = [
    ["sensors.temperature.a", '{"temperature": 31, "id":1}'],
    ["sensors.temperature.b.deep", '{ "id":2,"temperature":30.5 }'],
    ["sensors.temperature.c", '{"temperature":30,"id":3}'],
    ["sensors.temperature.d", '{"temperature":-4.25,"id":4}'],
    ["sensors.humidity.a", '{"temperature":99,"id":5}'],
    ["sensors.temperature", '{"temperature":99,"id":6}'],
    ["sensors.temperature.e", '{"temperature":1e3,"id":7}'],
  ];
  for (const [subject, payload] of events) nc.publish(subject, payload);
  const got = await alerts.waitForCount(3, 10_000, "three alerts");
  // A last matching event: once it arrives, everything published before it has been handled.
  nc.publish("sensors.temperature.z", '{"temperature":50,"id":"last"}');
  await alerts.waitFor((m) => m.string().includes('"last"'), 10_000, "the last alert");

  assert.deepEqual(
    alerts.items.map((m) => m.string()),
    [
      '{"temperature": 31, "id":1}',
      '{ "id":2,"temperature":30.5 }',
      '{"temperature":1e3,"id":7}',
      '{"temperature":50,"id":"last"}',
    ],
  );
  assert.ok(got.every((m) => m.subject === "alerts.high-value"));
  assert.equal((await sluice.stop()).code, 0);
  const summary = await sluice.waitForMsg("pipeline summary");
  assert.deepEqual(
    [summary.in, summary.passed, summary.filtered, summary.dead_lettered, summary.errors],
    [6, 4, 2, 0, 0],
  );
});

Deno.test("sluice run dead-letters malformed events with the original bytes and reason headers", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(connector(server.url) + ALERTS);
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const dlq = collect(nc, "dlq.>");
  const alerts = collect(nc, "alerts.>");
  await nc.flush();

  const bad: [string, Uint8Array, RegExp][] = [
    ["sensors.temperature.a", enc.encode("{not json"), /^malformed JSON/],
    ["sensors.temperature.b", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), /^invalid UTF-8$/],
    ["sensors.temperature.c", new Uint8Array(), /^empty payload$/],
    ["sensors.temperature.d", enc.encode('{"humidity":3}'), /^filter failed: .*temperature/],
    ["sensors.temperature.e", enc.encode('{"temperature":"hot"}'), /^filter failed/],
  ];
  for (const [subject, data] of bad) nc.publish(subject, data);
  nc.publish("sensors.temperature.ok", '{"temperature":40}');
  await dlq.waitForCount(bad.length, 10_000, "dead letters");
  await alerts.waitForCount(1, 10_000, "the good event's alert");

  bad.forEach(([subject, data, reason], i) => {
    const m = dlq.items[i]!;
    assert.equal(m.subject, "dlq.temperature-alerts");
    assert.deepEqual(new Uint8Array(m.data), data, `payload of ${subject} unchanged`);
    assert.equal(m.headers?.get("Sluice-Subject"), subject);
    assert.equal(m.headers?.get("Sluice-Pipeline"), "temperature-alerts");
    assert.match(m.headers?.get("Sluice-Error") ?? "", reason);
  });
  assert.equal(alerts.items.length, 1);
  assert.equal((await sluice.stop()).code, 0);
  const summary = await sluice.waitForMsg("pipeline summary");
  assert.deepEqual([summary.in, summary.passed, summary.dead_lettered, summary.errors], [
    6,
    1,
    5,
    5,
  ]);
});

Deno.test("sluice run renders templated sink subjects and dead-letters values that cannot be", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connector(server.url) + `
pipelines:
  site-routing:
    source: { connector: local, subject: "sensors.*.>" }
    sinks: [{ connector: local, subject: "sites.{site}.{_tokens[1]}" }]
    dead_letter: { connector: local, subject: dlq.site-routing }
`,
  );
  await using _sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const routed = collect(nc, "sites.>");
  const dlq = collect(nc, "dlq.>");
  await nc.flush();

  nc.publish("sensors.temperature.t1", '{"site":"berlin","temperature":20}');
  nc.publish("sensors.humidity.h1", '{"site":"oslo","humidity":80}');
  nc.publish("sensors.humidity.h2", '{"humidity":80}');
  nc.publish("sensors.humidity.h3", '{"site":"a.b"}');
  nc.publish("sensors.humidity.h4", '{"site":7}');
  await routed.waitForCount(3, 10_000, "routed events");
  await dlq.waitForCount(2, 10_000, "dead letters");

  assert.deepEqual(routed.items.map((m) => m.subject), [
    "sites.berlin.temperature",
    "sites.oslo.humidity",
    "sites.7.humidity",
  ]);
  assert.deepEqual(dlq.items.map((m) => m.headers?.get("Sluice-Subject")), [
    "sensors.humidity.h2",
    "sensors.humidity.h3",
  ]);
  assert.match(dlq.items[0]!.headers?.get("Sluice-Error") ?? "", /\{site\} is missing/);
  assert.match(dlq.items[1]!.headers?.get("Sluice-Error") ?? "", /contains '\.'/);
});

Deno.test("pipelines naming one connector share one connection", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connector(server.url) + ALERTS + `
  humidity-alerts:
    source: { connector: local, subject: sensors.humidity.> }
    filter: humidity > 90
    sinks: [{ connector: local, subject: alerts.humid }]
`,
  );
  await using _sluice = await startSluice(cfg.file);
  const connz = await server.connz();
  const ours = connz.connections.filter((c) => c.name === "sluice-e2e");
  assert.equal(
    ours.length,
    1,
    `one connection named sluice-e2e, got ${JSON.stringify(connz.connections)}`,
  );
  assert.deepEqual(
    [...(ours[0]!.subscriptions_list ?? [])].sort(),
    ["sensors.humidity.>", "sensors.temperature.>"],
  );
});

Deno.test("two instances in one queue group split the stream without duplicates", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connector(server.url) + `
pipelines:
  shared:
    source: { connector: local, subject: "readings.>", queue: workers }
    sinks: [{ connector: local, subject: out.readings }]
`,
  );
  await using a = await startSluice(cfg.file);
  await using b = await startSluice(cfg.file);
  await using nc = await client(server);
  const out = collect(nc, "out.readings");
  await nc.flush();

  const total = 2000;
  for (let i = 0; i < total; i++) nc.publish(`readings.r${i % 7}`, JSON.stringify({ id: i }));
  await nc.flush();
  await out.waitForCount(total, 20_000, `${total} events`);

  const ids = out.items.map((m) => (m.json() as { id: number }).id).sort((x, y) => x - y);
  assert.deepEqual(ids, Array.from({ length: total }, (_, i) => i));
  await a.stop();
  await b.stop();
  const ins = await Promise.all(
    [a, b].map(async (p) => (await p.waitForMsg("pipeline summary")).in),
  );
  assert.equal(Number(ins[0]) + Number(ins[1]), total);
  assert.ok(Number(ins[0]) > 0 && Number(ins[1]) > 0, `both instances received events: ${ins}`);
});

Deno.test("SIGTERM drains: every event the server delivered before the signal reaches the sink", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connector(server.url) + `
pipelines:
  drain:
    source: { connector: local, subject: "in.>" }
    filter: n < 10000
    sinks: [{ connector: local, subject: out.drain }]
`,
  );
  const sluice = await startSluice(cfg.file);
  await using _sluice = sluice;
  await using nc = await client(server);
  const out = collect(nc, "out.drain");
  await nc.flush();

  const total = 20_000;
  for (let i = 0; i < total; i++) {
    nc.publish("in.x", `{"n":${i},"pad":"${"x".repeat(64)}"}`);
    if (i % 5000 === 4999) await nc.flush();
  }
  await nc.flush(); // the server has every event before the signal is sent
  const status = await sluice.stop(scaled(30_000));
  assert.equal(status.code, 0);
  const summary = await sluice.waitForMsg("pipeline summary");
  assert.equal(summary.in, total);
  assert.equal(summary.passed, total / 2);
  await out.waitForCount(total / 2, 10_000, "every passing event");
  await nc.flush();
  assert.equal(out.items.length, total / 2);
});

Deno.test("an unreachable server at start is retried and reported, then used once it is up", async () => {
  // Learn a free port by letting a server pick one, then stop it.
  const probe = await NatsServer.start();
  const port = probe.port;
  await probe.stop();
  await using cfg = await configDir(connector(`nats://127.0.0.1:${port}`) + ALERTS);
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  const first = await sluice.waitForLog(
    (r) => r.msg === "connector unreachable, retrying" && r.attempt === 2,
    15_000,
    "a second connection attempt",
  );
  assert.equal(first.connector, "local");
  assert.equal(first.level, "warn");

  await using server = await NatsServer.start({ port });
  await sluice.waitForMsg("started", 15_000);
  await using nc = await client(server);
  const alerts = collect(nc, "alerts.>");
  await nc.flush();
  nc.publish("sensors.temperature.a", '{"temperature":35}');
  await alerts.waitForCount(1, 10_000, "an alert after the late start");
});

Deno.test("SIGTERM while a server is still unreachable at start stops promptly with exit 0", async () => {
  const probe = await NatsServer.start();
  const port = probe.port;
  await probe.stop();
  await using cfg = await configDir(connector(`nats://127.0.0.1:${port}`) + ALERTS);
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  await sluice.waitForMsg("connector unreachable, retrying");
  const status = await sluice.stop(10_000);
  assert.equal(status.code, 0);
  const summary = await sluice.waitForMsg("pipeline summary");
  assert.equal(summary.in, 0);
});

Deno.test("sluice rides out a server restart and resumes routing", async () => {
  const server = await NatsServer.start();
  await using cfg = await configDir(connector(server.url) + ALERTS);
  await using sluice = await startSluice(cfg.file);
  await server.kill();
  await sluice.waitForMsg("connector disconnected");
  await using restarted = await server.restart();
  await sluice.waitForMsg("connector reconnected", 20_000);
  await using nc = await client(restarted);
  const alerts = collect(nc, "alerts.>");
  await nc.flush();
  nc.publish("sensors.temperature.a", '{"temperature":35}');
  await alerts.waitForCount(1, 10_000, "an alert after the restart");
});

Deno.test("wrong credentials stop sluice with exit code 1 and a clear message", async () => {
  await using server = await NatsServer.start({
    extraConfig: 'authorization { token: "s3cret-token" }',
  });
  await using cfg = await configDir(
    connector(server.url).replace("reconnect:", "auth: { token: wrong-token }\n    reconnect:") +
      ALERTS,
  );
  const result = await runSluice(["run", "--log-format", "json", cfg.file]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /Connector \\?"local\\?": the server refused the credentials/);
  assert.doesNotMatch(result.stderr, /wrong-token|s3cret-token/);
});

Deno.test("the right token connects", async () => {
  await using server = await NatsServer.start({
    extraConfig: 'authorization { token: "s3cret-token" }',
  });
  await using cfg = await configDir(
    connector(server.url).replace("reconnect:", "auth: { token: s3cret-token }\n    reconnect:") +
      ALERTS,
  );
  await using sluice = await startSluice(cfg.file);
  assert.ok(!sluice.stderr().includes("s3cret-token"));
});

Deno.test("sluice run with an invalid config exits 2 with every error and starts nothing", async () => {
  await using cfg = await configDir(`connectors:
  local: { type: nats, servers: "nats://127.0.0.1:1", sever: x }
pipelines:
  p:
    source: { connector: nope, subject: "a..b" }
    filter: "temperature >"
    sinks: [{ connector: local, subject: "alerts.>" }]
`);
  const result = await runSluice(["run", cfg.file]);
  assert.equal(result.code, 2);
  const lines = result.stderr.trim().split("\n");
  assert.match(
    lines[0]!,
    new RegExp(`^${cfg.file}:2:\\d+: connectors\\.local\\.sever: unknown key`),
  );
  assert.ok(
    lines.some((l) => l.startsWith(`${cfg.file}:5:`) && l.includes('unknown connector "nope"')),
  );
  assert.ok(lines.some((l) => l.startsWith(`${cfg.file}:6:`) && l.includes("invalid filter")));
  assert.ok(lines.some((l) => l.startsWith(`${cfg.file}:7:`) && l.includes("alerts.>")));
  assert.match(lines.at(-1)!, /configuration errors?; nothing was started/);
});

Deno.test("sluice check accepts the shipped examples", async () => {
  const result = await runSluice(["check"]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^ok: 2 connectors, 6 pipelines in 8 files/);
});

Deno.test("sluice --version and --help exit 0, unknown commands exit 2", async () => {
  assert.match((await runSluice(["--version"])).stdout, /^sluice \d+\.\d+\.\d+/);
  assert.match((await runSluice(["--help"])).stdout, /Usage:/);
  const bad = await runSluice(["frobnicate"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command "frobnicate"/);
  assert.equal((await runSluice(["run", "--log-format", "xml"])).code, 2);
});

Deno.test("pass_headers copies the source message's headers to the sink", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connector(server.url) + `
pipelines:
  with-headers:
    source: { connector: local, subject: "in.>" }
    sinks:
      - { connector: local, subject: out.with, pass_headers: true }
      - { connector: local, subject: out.without }
`,
  );
  await using _sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const withH = collect(nc, "out.with");
  const withoutH = collect(nc, "out.without");
  await nc.flush();
  const h = headers();
  h.append("Trace-Id", "abc-123");
  h.append("Site", "berlin");
  nc.publish("in.a", '{"x":1}', { headers: h });
  await withH.waitForCount(1, 10_000, "the event with headers");
  await withoutH.waitForCount(1, 10_000, "the event without headers");
  assert.equal(withH.items[0]!.headers?.get("Trace-Id"), "abc-123");
  assert.equal(withH.items[0]!.headers?.get("Site"), "berlin");
  assert.equal(withoutH.items[0]!.headers, undefined);
});

Deno.test("a stalled uplink makes sinks refuse events beyond max_pending, counted", async () => {
  const TOTAL = 40_000;
  await using local = await NatsServer.start();
  await using uplink = await NatsServer.start();
  await using cfg = await configDir(`connectors:
  local: { type: nats, servers: ${local.url} }
  uplink:
    type: nats
    servers: ${uplink.url}
    max_pending: 64KiB
    ping_interval: 1h
pipelines:
  forward:
    source: { connector: local, subject: "in.>" }
    sinks: [{ connector: uplink, subject: up.readings }]
`);
  await using sluice = await startSluice(cfg.file);
  await using upstream = await client(uplink);
  const received = collect(upstream, "up.readings");
  await upstream.flush();
  await using nc = await client(local);

  const uplinkPid = uplink.pid!;
  Deno.kill(uplinkPid, "SIGSTOP");
  try {
    // ~40 MB: more than the kernel's loopback socket buffers absorb, against a 64 KiB bound.
    for (let i = 0; i < TOTAL; i++) {
      nc.publish("in.x", JSON.stringify({ id: i, pad: "x".repeat(1000) }));
      if (i % 1000 === 999) await nc.flush();
    }
    await nc.flush();
    const warning = await sluice.waitForMsg(
      "connector overflowing: server has not confirmed sent data, refusing events",
    );
    assert.equal(warning.connector, "uplink");
  } finally {
    Deno.kill(uplinkPid, "SIGCONT");
  }
  await sluice.waitForMsg("connector accepting events again", 20_000);
  assert.equal((await sluice.stop(20_000)).code, 0);
  const summary = await sluice.waitForMsg("pipeline summary");
  assert.equal(summary.in, TOTAL);
  const refused = Number(summary.errors);
  assert.ok(refused > 0 && refused < TOTAL, `some events refused: ${refused}`);
  // Everything not refused was delivered once the uplink came back.
  await received.waitForCount(TOTAL - refused, 20_000, "every accepted event upstream");
  await upstream.flush();
  assert.equal(received.items.length, TOTAL - refused);
});

Deno.test("--log-format text and --log-level warn shape the log", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(connector(server.url) + ALERTS);
  await using sluice = SluiceProcess.start(["run", "--log-level", "warn", cfg.file]);
  await using nc = await client(server);
  // Nothing at info is printed, so readiness is seen through the server: the subscription.
  await server.waitForConnection(
    (c) => c.name === "sluice-e2e" && (c.subscriptions_list ?? []).length > 0,
    10_000,
    "Sluice's subscription",
  );
  nc.publish("sensors.temperature.a", "{oops");
  await nc.flush();
  await pollStderr(sluice, /WARN +event rejected .*kind=parse/);
  await sluice.stop();
  assert.doesNotMatch(sluice.stderr(), /INFO/);
  assert.doesNotMatch(sluice.stderr(), /^\{/m);
});

async function pollStderr(p: SluiceProcess, pattern: RegExp): Promise<void> {
  await pollUntil(
    () => pattern.test(p.stderr()) || undefined,
    10_000,
    `stderr to match ${pattern}`,
  );
}
