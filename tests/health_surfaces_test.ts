/**
 * What health shows beyond connections, through the real CLI and real servers: outbox depth and
 * drops in every surface (/status, /metrics, the heartbeat, `sluice status`), per-processor
 * counters with their `processor` label (promtool-clean), a pipeline that a reload could not start
 * reported as failed, and a rejected reload in `sluice status`.
 */
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { configDir } from "../dev/config_dir.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { runSluice, SluiceProcess } from "../dev/sluice_process.ts";
import { Collector, pollUntil } from "../dev/wait.ts";
import type { HealthSnapshot } from "../src/health/snapshot.ts";
import type { Heartbeat } from "../src/health/nats.ts";
import { killUplink } from "./_delivery.ts";

async function status(url: string): Promise<HealthSnapshot> {
  const r = await fetch(`${url}/status`);
  return await r.json() as HealthSnapshot;
}

async function metrics(url: string): Promise<string> {
  return await (await fetch(`${url}/metrics`)).text();
}

function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(series + " ")) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

async function startSluice(file: string): Promise<{ sluice: SluiceProcess; url: string }> {
  const sluice = SluiceProcess.start(["run", "--log-format", "json", file]);
  const listening = await sluice.waitForMsg("health listening");
  await sluice.waitForMsg("started");
  return { sluice, url: String(listening.url) };
}

Deno.test("outbox depth and drops show in /status, /metrics, the heartbeat and sluice status", async () => {
  await using local = await NatsServer.start();
  await using uplink = await NatsServer.start();
  await using cfg = await configDir("");
  await Deno.writeTextFile(
    cfg.file,
    `
connectors:
  local: { type: nats, servers: "${local.url}", reconnect: { wait: 100ms, jitter: 0ms } }
  uplink: { type: nats, servers: "${uplink.url}", reconnect: { wait: 100ms, jitter: 0ms } }
pipelines:
  up:
    source: { connector: local, subject: ev.> }
    sinks:
      - connector: uplink
        subject: up.ev
        buffer: { path: "${cfg.dir}/outbox.db", max_size: 8KiB, overflow: drop_oldest }
health:
  listen: 127.0.0.1:0
  instance: gw-test
  nats: { connector: local, interval: 200ms }
`,
  );
  const { sluice, url } = await startSluice(cfg.file);
  await using _ = sluice;
  const nc = await connect({ servers: local.url });
  try {
    const beats = new Collector<Heartbeat>();
    nc.subscribe("sluice.heartbeat.gw-test", {
      callback: (_e, m) => beats.push(m.json() as Heartbeat),
    });
    await killUplink(uplink, sluice);
    const payload = JSON.stringify({ pad: "x".repeat(200) });
    for (let i = 0; i < 200; i++) nc.publish("ev.a", payload);
    await nc.flush();

    const s = await pollUntil(
      async () => {
        const s = await status(url);
        const p = s.pipelines[0]!;
        return p.counters.in === 200 && p.outboxes[0]!.dropped > 0 ? s : undefined;
      },
      15_000,
      "/status to show the outbox dropping events",
    );
    const p = s.pipelines[0]!;
    const box = p.outboxes[0]!;
    assert.equal(box.path, `${cfg.dir}/outbox.db`);
    assert.ok(box.events > 0 && box.events < 200, `outbox holds ${box.events}`);
    assert.equal(p.counters.buffer_dropped, box.dropped);
    assert.equal(p.counters.buffered, 200);

    const m = await metrics(url);
    const labels = `pipeline="up",path="${cfg.dir}/outbox.db"`;
    assert.ok((sample(m, `sluice_outbox_events{${labels}}`) ?? 0) > 0);
    assert.ok((sample(m, `sluice_outbox_bytes{${labels}}`) ?? 0) > 0);
    assert.equal(
      sample(m, 'sluice_pipeline_outbox_events_total{pipeline="up",outcome="dropped"}'),
      p.counters.buffer_dropped,
    );

    const beat = await beats.waitFor(
      (b) => Number(b.pipelines.up?.buffer_dropped ?? 0) > 0,
      10_000,
      "a heartbeat that counts outbox drops",
    );
    assert.ok(Number(beat.pipelines.up!.outbox_events) > 0);
    assert.ok(Number(beat.pipelines.up!.errors) >= Number(beat.pipelines.up!.buffer_dropped));

    const cli = await runSluice(["status", "--url", url]);
    assert.equal(cli.code, 1, "not ready while the uplink is down");
    assert.match(cli.stdout, /OUTBOX\s+EVENTS\s+BYTES\s+BUFFERED\s+REPLAYED\s+DROPPED/);
    assert.match(cli.stdout, new RegExp(`up\\s+${cfg.dir}/outbox\\.db\\s+\\d+\\s+\\d+\\s+200\\s`));
  } finally {
    await nc.close();
  }
});

Deno.test("per-processor counters carry a processor label in /status and /metrics", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(`
connectors:
  local: { type: nats, servers: "${server.url}" }
pipelines:
  meters:
    source: { connector: local, subject: meters.> }
    filter: kwh >= 0
    processors:
      - map: { kw: kwh * 4.0 }
      - sample: 2
    sinks: [{ connector: local, subject: out }]
health:
  listen: 127.0.0.1:0
`);
  const { sluice, url } = await startSluice(cfg.file);
  await using _ = sluice;
  const nc: NatsConnection = await connect({ servers: server.url });
  try {
    for (const kwh of [1, 2, -1, 3, 4]) nc.publish("meters.a", JSON.stringify({ kwh }));
    await nc.flush();
    const s = await pollUntil(
      async () => {
        const s = await status(url);
        return s.pipelines[0]!.counters.in === 5 ? s : undefined;
      },
      10_000,
      "5 events counted",
    );
    assert.deepEqual(
      s.pipelines[0]!.processors.map((x) => [x.processor, x.in, x.out, x.dropped, x.errors]),
      [["filter", 5, 4, 1, 0], ["0:map", 4, 4, 0, 0], ["1:sample", 4, 2, 2, 0]],
    );
    assert.equal(s.pipelines[0]!.counters.filtered, 3);
    assert.equal(s.pipelines[0]!.counters.passed, 2);
    const m = await metrics(url);
    const at = (processor: string, outcome: string) =>
      sample(
        m,
        `sluice_processor_events_total{pipeline="meters",processor="${processor}",outcome="${outcome}"}`,
      );
    assert.equal(at("0:map", "in"), 4);
    assert.equal(at("1:sample", "dropped"), 2);
    assert.equal(at("filter", "dropped"), 1);
    await promtoolCheck(m);
  } finally {
    await nc.close();
  }
});

Deno.test("a reload whose new pipeline cannot start reports it failed, and a rejected reload shows in status", async () => {
  await using server = await NatsServer.start();
  const base = `
connectors:
  local: { type: nats, servers: "${server.url}" }
health:
  listen: 127.0.0.1:0
pipelines:
  a:
    source: { connector: local, subject: a }
    sinks: [{ connector: local, subject: a-out }]
`;
  await using cfg = await configDir(base);
  const { sluice, url } = await startSluice(cfg.file);
  await using _ = sluice;
  // The outbox's directory would have to be created inside a regular file: opening it fails.
  await Deno.writeTextFile(`${cfg.dir}/plain-file`, "");
  await Deno.writeTextFile(
    cfg.file,
    base + `
  b:
    source: { connector: local, subject: b }
    sinks:
      - connector: local
        subject: b-out
        buffer: { path: "${cfg.dir}/plain-file/outbox.db" }
`,
  );
  sluice.signal("SIGHUP");
  const reloaded = await sluice.waitForMsg("reloaded");
  assert.equal(reloaded.level, "error");
  assert.deepEqual(reloaded.failed, ["b"]);
  assert.deepEqual(reloaded.started, []);
  const s = await status(url);
  const b = s.pipelines.find((p) => p.name === "b")!;
  assert.equal(b.state, "failed");
  assert.match(b.error ?? "", /outbox/i);
  assert.equal(s.ready, false);
  assert.ok(s.not_ready.some((n) => n.name === "b" && /failed to start/.test(n.reason)));

  await Deno.writeTextFile(cfg.file, base.replace("subject: a-out", "subjet: a-out"));
  sluice.signal("SIGHUP");
  await sluice.waitForMsg("reload rejected: the running configuration stays");
  const cli = await runSluice(["status", "--url", url]);
  assert.match(cli.stdout, /Pipeline b failed to start: /);
  assert.match(cli.stdout, /Last reload \(.*\): .*sluice\.yaml:\d+:\d+/);
  assert.match(cli.stdout, /Reloads: 1 applied, 1 rejected/);
});

async function promtoolCheck(text: string): Promise<void> {
  let child;
  try {
    child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch {
    // .ci/run installs promtool; a developer without it still runs the rest of the test.
    return;
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `promtool check metrics failed:\n${report}`);
  assert.equal(report.trim(), "", report);
}
