// Smoke test of the emulated target: the real CLI on the runtime of SLUICE_DENO (aarch64 Deno
// under qemu, see run.sh) against a real nats-server on loopback. Ignored unless SLUICE_DENO is
// set; SLUICE_EXPECT_ARCH names the architecture the runtime must report. Once tests/e2e_test.ts
// exists, run.sh keeps only the architecture probe here (SLUICE_AARCH64_SMOKE=0).
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { NatsServer } from "../../dev/nats_server.ts";
import { REPO_ROOT, runSluice, RUNTIME_ENV, SluiceProcess } from "../../dev/sluice_process.ts";
import { Collector } from "../../dev/wait.ts";

const noRuntime = !Deno.env.get(RUNTIME_ENV);
const ignore = noRuntime || Deno.env.get("SLUICE_AARCH64_SMOKE") === "0";
const expectedArch = Deno.env.get("SLUICE_EXPECT_ARCH");
const CONFIG = [`${REPO_ROOT}connectors`, `${REPO_ROOT}pipelines`];

Deno.test({
  name: "aarch64: the harness runs Sluice's runtime on the expected architecture",
  ignore: noRuntime,
  async fn() {
    const { code, stdout, stderr } = await runSluice([], {
      entry: new URL("./arch_probe.ts", import.meta.url),
      denoFlags: [],
    });
    assert.equal(code, 0, stderr);
    const probe = JSON.parse(stdout) as { arch: string; target: string; deno: string };
    // deno-lint-ignore no-console -- the report of the run says which runtime it proved.
    console.log(`Sluice's runtime: deno ${probe.deno} on ${probe.target}`);
    assert.equal(
      probe.arch,
      expectedArch ?? probe.arch,
      `expected ${expectedArch}, but the runtime reports ${probe.target}`,
    );
  },
});

Deno.test({
  name: "aarch64: sluice check accepts the example configuration",
  ignore,
  async fn() {
    const { code, stdout, stderr } = await runSluice(["check", ...CONFIG]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^ok: 2 connectors, 6 pipelines in 8 files/);
  },
});

Deno.test({
  name: "aarch64: sluice run routes, filters and dead-letters, then drains on SIGTERM",
  ignore,
  async fn() {
    await using server = await NatsServer.start();
    await using sluice = SluiceProcess.start(["run", "--log-format", "json", ...CONFIG], {
      env: { NATS_URL: server.url, UPLINK_URL: server.url },
    });
    await sluice.waitForMsg("started");

    const nc = await connect({ servers: server.url, name: "aarch64-smoke" });
    try {
      const alerts = new Collector<number>();
      const sites = new Collector<string>();
      const dead = new Collector<string>();
      nc.subscribe("alerts.high-value", {
        callback: (_, m) => alerts.push((m.json() as { temperature: number }).temperature),
      });
      nc.subscribe("sites.>", { callback: (_, m) => sites.push(m.subject) });
      // The two pipelines this test is about; the other examples dead-letter on their own subjects.
      for (const subject of ["dlq.site-routing", "dlq.temperature-alerts"]) {
        nc.subscribe(subject, {
          callback: (_, m) => dead.push(`${m.subject}: ${m.headers?.get("Sluice-Error")}`),
        });
      }
      await nc.flush();

      nc.publish("sensors.temperature.t-1", JSON.stringify({ site: "pi", temperature: 12 }));
      nc.publish("sensors.temperature.t-1", JSON.stringify({ site: "pi", temperature: 42 }));
      nc.publish("sensors.temperature.t-1", "not json");
      await nc.flush();

      assert.deepEqual(await sites.waitForCount(2, 10_000, "2 routed readings"), [
        "sites.pi.temperature",
        "sites.pi.temperature",
      ]);
      const dlq = await dead.waitForCount(2, 10_000, "2 dead letters");
      assert.deepEqual(dlq.map((d) => d.split(":")[0]).sort(), [
        "dlq.site-routing",
        "dlq.temperature-alerts",
      ]);
      assert.match(dlq[0] ?? "", /malformed JSON/);
      // One pipeline publishes in order: the alert came before its dead letter, and only one.
      assert.deepEqual(await alerts.waitForCount(1, 10_000, "the alert"), [42]);
      assert.equal(alerts.items.length, 1, "the 12-degree reading passed the filter");

      const status = await sluice.stop();
      assert.equal(status.code, 0, sluice.stderr());
      assert.ok(sluice.records.some((r) => r.msg === "stopped"), sluice.stderr());
    } finally {
      await nc.close();
    }
  },
});
