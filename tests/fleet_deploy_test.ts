/**
 * Fleet: three gateways (real `sluice run` processes) and the operator CLI against a real
 * nats-server with JetStream: discovery by `fleet ls` and by the NATS services protocol,
 * deployment by --all, --to and --label, undeploy, a pipeline rejected by one gateway (unknown
 * connector) while its previous version keeps running, a local reload that keeps deployed
 * pipelines, and the reload and drain endpoints.
 */
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { NatsServer } from "../dev/nats_server.ts";
import type { GatewayStatus } from "../src/fleet/report.ts";
import {
  applied,
  fleet,
  fleetJson,
  type Gateway,
  pipelineFile,
  rejected,
  removed,
  revisionOf,
  startGateway,
} from "./_fleet.ts";

type Written = { pipeline: string; key: string; revision: number }[];

Deno.test("fleet: discovery, targeting, undeploy, rejection, reload and drain on 3 gateways", async (t) => {
  await using server = await NatsServer.start({ jetstream: true });
  const url = server.url;
  const dir = await Deno.makeTempDir({ prefix: "sluice-fleet-files-" });
  assert.equal((await fleet(url, "init")).code, 0);
  // gw-01 and gw-02 have a `meters` connector; gw-03 does not.
  const meters = `  meters: {type: nats, servers: "${url}"}`;
  await using gw1 = await startGateway({
    id: "gw-01",
    labels: { site: "oslo" },
    uplink: url,
    extraConnectors: meters,
    pipelines: `  local-one:\n    source: {connector: local, subject: in.local-one}\n` +
      `    sinks: [{connector: local, subject: out.local-one}]\n`,
  });
  await using gw2 = await startGateway({
    id: "gw-02",
    labels: { site: "oslo" },
    uplink: url,
    extraConnectors: meters,
  });
  await using gw3 = await startGateway({ id: "gw-03", labels: { site: "bergen" }, uplink: url });
  const gateways: Gateway[] = [gw1, gw2, gw3];
  await Promise.all(gateways.map((g) => g.proc.waitForMsg("fleet synced")));
  const nc = await connect({ servers: url });
  try {
    await t.step("fleet ls finds the 3 gateways with their labels", async () => {
      const ls = await fleetJson<{ id: string; labels: Record<string, string>; ready: boolean }[]>(
        url,
        "ls",
      );
      assert.deepEqual(ls.map((g) => [g.id, g.labels.site]), [
        ["gw-01", "oslo"],
        ["gw-02", "oslo"],
        ["gw-03", "bergen"],
      ]);
      const human = await fleet(url, "ls");
      assert.equal(human.code, 0);
      assert.match(human.stdout, /^ID\s+LABELS\s+VERSION\s+UPTIME\s+READY\s+PIPELINES/);
      assert.match(human.stdout, /gw-01\s+site=oslo\s+\S+\s+\S+\s+yes\s+1 local, 0 deployed/);
    });

    await t.step("the NATS services protocol discovers them: PING, INFO, STATS", async () => {
      const collect = async (subject: string) => {
        const replies = [];
        for await (
          const m of await nc.requestMany(subject, undefined, { maxWait: 1000, strategy: "timer" })
        ) replies.push(m.json<{ name: string; metadata: Record<string, string> }>());
        return replies;
      };
      const pings = await collect("$SRV.PING.sluice");
      assert.deepEqual(pings.map((p) => p.metadata.id).sort(), ["gw-01", "gw-02", "gw-03"]);
      assert.ok(pings.every((p) => p.name === "sluice"));
      const infos = await collect("$SRV.INFO.sluice") as unknown as {
        metadata: Record<string, string>;
        endpoints: { name: string; subject: string }[];
      }[];
      const gw3Info = infos.find((i) => i.metadata.id === "gw-03");
      assert.deepEqual(gw3Info?.endpoints.map((e) => [e.name, e.subject]), [
        ["status", "sluice.fleet.gw-03.status"],
        ["pipelines", "sluice.fleet.gw-03.pipelines"],
        ["reload", "sluice.fleet.gw-03.reload"],
        ["drain", "sluice.fleet.gw-03.drain"],
      ]);
      assert.equal(gw3Info?.metadata["label.site"], "bergen");
      assert.equal((await collect("$SRV.STATS.sluice")).length, 3);
    });

    let allRev = 0;
    await t.step("deploy --all reaches every gateway", async () => {
      // `matches` needs re2js, which `fleet deploy` and the gateways load only for it.
      const filter = "    filter: t > 30 && _subject.matches('^in[.]every')\n";
      const file = await pipelineFile(dir, "everywhere", filter);
      allRev = revisionOf(await fleetJson<Written>(url, "deploy", file, "--all"));
      await Promise.all(gateways.map((g) => applied(g, "everywhere", allRev)));
      const s = await fleetJson<GatewayStatus>(url, "status", "gw-03");
      const p = s.pipelines.find((x) => x.name === "everywhere");
      assert.deepEqual([p?.origin, p?.state, p?.outcome, p?.revision], [
        "deployed",
        "running",
        "applied",
        allRev,
      ]);
      assert.ok(await Deno.stat(`${gw3.stateDir}/applied.json`));
    });

    await t.step("deploy --to reaches only the gateways named", async () => {
      const file = await pipelineFile(dir, "only-two");
      const rev = revisionOf(await fleetJson<Written>(url, "deploy", file, "--to", "gw-02"));
      await applied(gw2, "only-two", rev);
      for (const id of ["gw-01", "gw-03"]) {
        const s = await fleetJson<GatewayStatus>(url, "status", id);
        assert.ok(!s.pipelines.some((p) => p.name === "only-two"), `${id} runs only-two`);
      }
    });

    await t.step("deploy --label reaches only the gateways with the label", async () => {
      const file = await pipelineFile(dir, "oslo-only");
      const rev = revisionOf(
        await fleetJson<Written>(url, "deploy", file, "--label", "site=oslo"),
      );
      await Promise.all([applied(gw1, "oslo-only", rev), applied(gw2, "oslo-only", rev)]);
      const s = await fleetJson<GatewayStatus>(url, "status", "gw-03");
      assert.ok(!s.pipelines.some((p) => p.name === "oslo-only"));
    });

    await t.step("undeploy stops the pipeline where it was deployed", async () => {
      const r = await fleet(url, "undeploy", "only-two", "--to", "gw-02");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /undeployed only-two from gw:gw-02/);
      await removed(gw2, "only-two");
      const again = await fleet(url, "undeploy", "only-two", "--to", "gw-02");
      assert.equal(again.code, 1);
      assert.match(again.stderr, /not deployed to gw:gw-02/);
    });

    await t.step("a connector gw-03 lacks: rejected there, previous version kept", async () => {
      // The new version sends elsewhere, so that what reaches out.everywhere is gw-03's.
      const file = `${dir}/everywhere-v2.yaml`;
      await Deno.writeTextFile(
        file,
        "pipelines:\n  everywhere:\n    source: {connector: meters, subject: in.everywhere}\n" +
          "    sinks: [{connector: meters, subject: out.everywhere-v2}]\n",
      );
      const rev = revisionOf(await fleetJson<Written>(url, "deploy", file, "--all"));
      await Promise.all([
        applied(gw1, "everywhere", rev),
        applied(gw2, "everywhere", rev),
        rejected(gw3, "everywhere", rev),
      ]);
      const s = await fleetJson<GatewayStatus>(url, "status", "gw-03");
      const p = s.pipelines.find((x) => x.name === "everywhere");
      assert.equal(p?.outcome, "rejected");
      assert.equal(p?.state, "running");
      assert.equal(p?.runningRevision, allRev);
      assert.match(
        p?.error ?? "",
        /^all\.everywhere@\d+:4:\d+: pipelines\.everywhere\.source\.connector: unknown connector "meters"/m,
      );
      const human = await fleet(url, "status", "gw-03");
      assert.match(
        human.stdout,
        /everywhere\s+deployed\s+running\s+\d+ \(running \d+\)\s+rejected/,
      );
      // The previous version still filters: t > 30 passes, t = 1 does not (composed again, with
      // `matches`, after gw-03 rejected the new one).
      const sub = nc.subscribe("out.everywhere", { max: 1 });
      await nc.flush();
      nc.publish("in.everywhere", JSON.stringify({ t: 1 }));
      nc.publish("in.everywhere", JSON.stringify({ t: 31 }));
      for await (const m of sub) assert.equal(m.json<{ t: number }>().t, 31);
    });

    await t.step("a deployed outbox lives under state_dir/outbox", async () => {
      const file = `${dir}/buffered.yaml`;
      await Deno.writeTextFile(
        file,
        "pipelines:\n  buffered:\n    source: {connector: local, subject: in.buffered}\n" +
          "    sinks: [{connector: local, subject: out.buffered, buffer: {path: buffered.db}}]\n",
      );
      const rev = revisionOf(await fleetJson<Written>(url, "deploy", file, "--to", "gw-01"));
      await applied(gw1, "buffered", rev);
      assert.ok((await Deno.stat(`${gw1.stateDir}/outbox/buffered.db`)).isFile);
    });

    await t.step("a local pipeline's name deployed is a reported clash", async () => {
      const file = await pipelineFile(dir, "local-one");
      const rev = revisionOf(await fleetJson<Written>(url, "deploy", file, "--to", "gw-01"));
      await rejected(gw1, "local-one", rev);
      const s = await fleetJson<GatewayStatus>(url, "status", "gw-01");
      const p = s.pipelines.find((x) => x.name === "local-one");
      assert.equal(p?.origin, "local");
      assert.match(p?.error ?? "", /a local pipeline has the name "local-one"/);
    });

    await t.step("SIGHUP reloads local files and keeps the deployed pipelines", async () => {
      gw1.proc.signal("SIGHUP");
      await gw1.proc.waitForLog((r) => r.msg === "reloaded" && r.changed === false);
      const s = await fleetJson<GatewayStatus>(url, "status", "gw-01");
      const running = s.pipelines.filter((p) => p.state === "running").map((p) => p.name);
      assert.deepEqual(running, ["buffered", "everywhere", "local-one", "oslo-only"]);
    });

    await t.step("the reload and drain endpoints", async () => {
      const reload = await nc.request("sluice.fleet.gw-02.reload", undefined, { timeout: 5000 });
      assert.equal(reload.json<GatewayStatus>().id, "gw-02");
      await gw2.proc.waitForLog((r) => r.msg === "reloading" && r.reason === "fleet request");
      const drain = await nc.request("sluice.fleet.gw-03.drain", undefined, { timeout: 5000 });
      assert.deepEqual(drain.json(), { id: "gw-03", draining: true });
      assert.equal((await gw3.proc.status).code, 0);
      const ls = await fleetJson<{ id: string }[]>(url, "ls");
      assert.deepEqual(ls.map((g) => g.id), ["gw-01", "gw-02"]);
    });
  } finally {
    await nc.close();
    await Deno.remove(dir, { recursive: true });
  }
});
