/**
 * Fleet while away: a gateway that was down during a deploy applies the new version when it comes
 * back; one that starts without its uplink runs the last applied pipelines from `state_dir`, and
 * catches up once the uplink is back.
 */
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../dev/nats_server.ts";
import type { LogRecord } from "../dev/sluice_process.ts";
import { applied, fleet, fleetJson, pipelineFile, revisionOf, startGateway } from "./_fleet.ts";

type Written = { revision: number }[];

/** Sends one event through pipeline `away` and returns its `version`. */
async function versionSeen(nc: NatsConnection): Promise<number> {
  const sub = nc.subscribe("out.away", { max: 1 });
  await nc.flush();
  nc.publish("in.away", JSON.stringify({ x: 1 }));
  for await (const m of sub) return m.json<{ version: number }>().version;
  throw new Error("no event came out");
}

Deno.test("fleet: down during a deploy, then started without its uplink", async (t) => {
  // The control plane (uplink) and the data plane (local) are separate servers, as on a gateway.
  await using uplink = await NatsServer.start({ jetstream: true });
  await using local = await NatsServer.start();
  const dir = await Deno.makeTempDir({ prefix: "sluice-fleet-away-" });
  const stateDir = `${dir}/state`;
  const nc = await connect({ servers: local.url });
  const deployVersion = async (v: number) => {
    const file = await pipelineFile(dir, "away", `    processors: [{map: {version: "${v}"}}]\n`);
    return revisionOf(await fleetJson<Written>(uplink.url, "deploy", file, "--to", "gw-a"));
  };
  const gateway = () =>
    startGateway({ id: "gw-a", uplink: uplink.url, local: local.url, stateDir });
  try {
    assert.equal((await fleet(uplink.url, "init")).code, 0);

    await t.step(
      "a gateway down during a deploy runs the new version when it is back",
      async () => {
        const r1 = await deployVersion(1);
        {
          await using gw = await gateway();
          await applied(gw, "away", r1);
          assert.equal(await versionSeen(nc), 1);
          assert.equal((await gw.proc.stop()).code, 0);
        }
        const r2 = await deployVersion(2);
        await using gw = await gateway();
        // It starts with what it last applied, then applies what the bucket holds now.
        const loaded = await gw.proc.waitForMsg("fleet state loaded");
        assert.equal(loaded.pipelines, "away");
        await applied(gw, "away", r2);
        assert.equal(await versionSeen(nc), 2);
        assert.equal((await gw.proc.stop()).code, 0);
        const state = JSON.parse(await Deno.readTextFile(`${stateDir}/applied.json`));
        assert.equal(state.pipelines.away.revision, r2);
      },
    );

    await t.step("started without its uplink, it runs the pipelines of state_dir", async () => {
      await uplink.kill(); // keeps its JetStream store for the restart below
      await using gw = await gateway();
      await gw.proc.waitForLog((r) => r.msg === "pipeline started" && r.pipeline === "away");
      assert.equal(await versionSeen(nc), 2);
      const unreachable = await gw.proc.waitForLog((r) =>
        r.msg === "connector unreachable, retrying" && r.connector === "uplink"
      );
      assert.ok(unreachable);
      // Back online, it catches up with a deploy made meanwhile.
      await uplink.restart();
      await gw.proc.waitForMsg("fleet synced");
      const r3 = await deployVersion(3);
      await applied(gw, "away", r3);
      assert.equal(await versionSeen(nc), 3);

      // The uplink restarts under a running gateway: its watch resumes on the new connection.
      await uplink.kill();
      await uplink.restart();
      const r4 = await deployVersion(4);
      await gw.proc.waitForLog(
        (r) => r.msg === "fleet applied" && String(r.deployed).includes(`away@${r4}`),
        30_000,
        "the gateway to apply a deploy made after its uplink restarted",
      );
      assert.equal(await versionSeen(nc), 4);
    });
  } finally {
    await nc.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fleet: a reload that replaces the uplink connector keeps deployed pipelines", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const dir = await Deno.makeTempDir({ prefix: "sluice-fleet-rebind-" });
  try {
    assert.equal((await fleet(server.url, "init")).code, 0);
    await using gw = await startGateway({ id: "gw-r", uplink: server.url });
    await gw.proc.waitForMsg("fleet synced");
    const deploy = async (v: number) => {
      const file = await pipelineFile(dir, "kept", `    processors: [{map: {version: "${v}"}}]\n`);
      return revisionOf(await fleetJson<Written>(server.url, "deploy", file, "--all"));
    };
    await applied(gw, "kept", await deploy(1));
    // A changed declaration of the uplink: the engine replaces its client; the fleet follows.
    const yaml = await Deno.readTextFile(gw.file);
    await Deno.writeTextFile(
      gw.file,
      yaml.replace("uplink: {type: nats,", "uplink: {type: nats, name: renamed,"),
    );
    gw.proc.signal("SIGHUP");
    await gw.proc.waitForLog((r) =>
      r.msg === "reloaded" && Array.isArray(r.connectors_replaced) &&
      r.connectors_replaced.includes("uplink")
    );
    const records = gw.proc.records;
    const after = (index: number) => (r: LogRecord) => records.indexOf(r) > index;
    const firstSync = records.findIndex((r) => r.msg === "fleet synced");
    const second = await gw.proc.waitForLog(
      (r) => r.msg === "fleet synced" && after(firstSync)(r),
      undefined,
      "the fleet to sync again on the new connection",
    );
    // Re-reading the bucket restarts nothing, and deploys reach the gateway on the new connection.
    const resync = await gw.proc.waitForLog((r) =>
      r.msg === "fleet applied" && r.reason === "fleet sync" && after(records.indexOf(second))(r)
    );
    assert.equal(resync.stopped, "");
    assert.equal(resync.started, "");
    await applied(gw, "kept", await deploy(2));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
