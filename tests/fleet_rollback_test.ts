/**
 * Fleet versions: every deploy is a revision of the bucket; `fleet history` lists them and
 * `fleet rollback` writes an earlier one back. Observed through the events a gateway produces.
 */
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../dev/nats_server.ts";
import {
  applied,
  fleet,
  fleetJson,
  pipelineFile,
  removed,
  revisionOf,
  startGateway,
} from "./_fleet.ts";

type Written = { revision: number }[];

/** Sends one event through pipeline `ver` and returns the `version` field it comes out with. */
async function versionSeen(nc: NatsConnection): Promise<number> {
  const sub = nc.subscribe("out.ver", { max: 1 });
  await nc.flush();
  nc.publish("in.ver", JSON.stringify({ x: 1 }));
  for await (const m of sub) return m.json<{ version: number }>().version;
  throw new Error("no event came out");
}

Deno.test("fleet history and rollback, observed through events", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  const url = server.url;
  const dir = await Deno.makeTempDir({ prefix: "sluice-fleet-ver-" });
  const nc = await connect({ servers: url });
  try {
    assert.equal((await fleet(url, "init")).code, 0);
    await using gw = await startGateway({ id: "gw-v", uplink: url });
    await gw.proc.waitForMsg("fleet synced");
    const deployVersion = async (v: number) => {
      const file = await pipelineFile(dir, "ver", `    processors: [{map: {version: "${v}"}}]\n`);
      return revisionOf(await fleetJson<Written>(url, "deploy", file, "--all"));
    };
    const r1 = await deployVersion(1);
    await applied(gw, "ver", r1);
    assert.equal(await versionSeen(nc), 1);
    const r2 = await deployVersion(2);
    await applied(gw, "ver", r2);
    assert.equal(await versionSeen(nc), 2);

    const history = await fleetJson<{ revision: number; target: string; operation: string }[]>(
      url,
      "history",
      "ver",
    );
    assert.deepEqual(history.map((h) => [h.revision, h.target, h.operation]), [
      [r1, "all", "PUT"],
      [r2, "all", "PUT"],
    ]);
    const human = await fleet(url, "history", "ver");
    assert.match(human.stdout, /^REVISION\s+TIME\s+TARGET\s+OPERATION$/m);
    assert.match(human.stdout, new RegExp(`^${r2}\\s+\\S+\\s+all\\s+deploy$`, "m"));

    // Without --revision: back to the version before the last change.
    const back = await fleetJson<{ restored: number; revision: number }>(url, "rollback", "ver");
    assert.equal(back.restored, r1);
    await applied(gw, "ver", back.revision);
    assert.equal(await versionSeen(nc), 1);

    // With --revision: any earlier deploy.
    const forward = await fleetJson<{ revision: number }>(
      url,
      "rollback",
      "ver",
      "--revision",
      String(r2),
    );
    await applied(gw, "ver", forward.revision);
    assert.equal(await versionSeen(nc), 2);

    // An undeploy is undone by a rollback too.
    assert.equal((await fleet(url, "undeploy", "ver", "--all")).code, 0);
    await removed(gw, "ver");
    const undone = await fleetJson<{ restored: number; revision: number }>(
      url,
      "rollback",
      "ver",
    );
    assert.equal(undone.restored, forward.revision);
    await applied(gw, "ver", undone.revision);
    assert.equal(await versionSeen(nc), 2);

    const bad = await fleet(url, "rollback", "ver", "--revision", "99999");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /revision 99999 is not a revision of "ver"/);
    const never = await fleet(url, "history", "never-deployed");
    assert.equal(never.code, 1);
    assert.match(never.stderr, /"never-deployed" was never deployed/);
  } finally {
    await nc.close();
    await Deno.remove(dir, { recursive: true });
  }
});
