/**
 * The shipped permission setup (deploy/nats-server-fleet.conf) enforced by a real nats-server:
 * gateways apply what the operator deploys, but a gateway's credentials cannot write the bucket,
 * cannot watch another gateway's keys and cannot command another gateway.
 */
import assert from "node:assert/strict";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsServer } from "../dev/nats_server.ts";
import { REPO_ROOT } from "../dev/sluice_process.ts";
import { applied, fleet, revisionOf, startGateway } from "./_fleet.ts";

const PASSWORDS = {
  SLUICE_OPERATOR_PASSWORD: "op-pass",
  SLUICE_GW01_PASSWORD: "gw1-pass",
  SLUICE_GW02_PASSWORD: "gw2-pass",
};

const OPERATOR = ["--user", "operator", "--password", PASSWORDS.SLUICE_OPERATOR_PASSWORD];

/** Connects as gateway `id`, as its uplink connector does (its own inbox prefix). */
function asGateway(url: string, id: string, password: string): Promise<NatsConnection> {
  return connect({ servers: url, user: id, pass: password, inboxPrefix: `_INBOX_${id}` });
}

function uplinkAuth(id: string, password: string): string {
  return `auth: {user: ${id}, password: ${password}}, inbox_prefix: _INBOX_${id}`;
}

Deno.test("fleet permissions: only operators write; a gateway reads and answers only its own", async (t) => {
  // nats-server reads the passwords from its environment ($SLUICE_..._PASSWORD in the file).
  for (const [k, v] of Object.entries(PASSWORDS)) Deno.env.set(k, v);
  const shipped = await Deno.readTextFile(`${REPO_ROOT}deploy/nats-server-fleet.conf`);
  await using server = await NatsServer.start({ jetstream: true, extraConfig: shipped });
  const url = server.url;
  const dir = await Deno.makeTempDir({ prefix: "sluice-fleet-perm-" });
  const operator = await connect({ servers: url, user: "operator", pass: "op-pass" });
  const gw1nc = await asGateway(url, "gw-01", "gw1-pass");
  try {
    assert.equal((await fleet(url, "init", ...OPERATOR)).code, 0);
    await using gw1 = await startGateway({
      id: "gw-01",
      labels: { site: "oslo" },
      uplink: url,
      uplinkSettings: uplinkAuth("gw-01", "gw1-pass"),
    });
    await using gw2 = await startGateway({
      id: "gw-02",
      labels: { site: "bergen" },
      uplink: url,
      uplinkSettings: uplinkAuth("gw-02", "gw2-pass"),
    });
    await Promise.all([gw1, gw2].map((g) => g.proc.waitForMsg("fleet synced")));

    await t.step("the operator deploys; a gateway applies and runs it", async () => {
      const file = `${dir}/forward.yaml`;
      await Deno.writeTextFile(
        file,
        "pipelines:\n  forward:\n    source: {connector: uplink, subject: sensors.gw-01.>}\n" +
          "    sinks: [{connector: uplink, subject: telemetry.gw-01.out}]\n",
      );
      const r = await fleet(url, "deploy", file, "--label", "site=oslo", "--json", ...OPERATOR);
      assert.equal(r.code, 0, r.stderr);
      await applied(gw1, "forward", revisionOf(JSON.parse(r.stdout)));
      const sub = operator.subscribe("telemetry.gw-01.out", { max: 1 });
      await operator.flush();
      operator.publish("sensors.gw-01.t1", JSON.stringify({ t: 20 }));
      for await (const m of sub) assert.deepEqual(m.json(), { t: 20 });
      // --all reaches both through their permissions.
      const all = await fleet(url, "deploy", file, "--all", "--json", ...OPERATOR);
      const rev = revisionOf(JSON.parse(all.stdout));
      await applied(gw2, "forward", rev);
    });

    await t.step("a gateway's credentials cannot write the bucket", async () => {
      const cli = await fleet(
        url,
        "deploy",
        `${dir}/forward.yaml`,
        "--all",
        "--user",
        "gw-01",
        "--password",
        "gw1-pass",
      );
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, /Permissions Violation/i);
      const kv = await new Kvm(gw1nc).open("sluice-fleet");
      await assert.rejects(kv.put("gw.gw-02.evil", "pipelines: {}"), /permissions violation/i);
      const history = await fleet(url, "history", "evil", "--json", ...OPERATOR);
      assert.deepEqual(JSON.parse(history.stdout), []);
    });

    await t.step("a gateway cannot watch another gateway's keys", async () => {
      const kv = await new Kvm(gw1nc).open("sluice-fleet");
      await assert.rejects(kv.watch({ key: "gw.gw-02.>" }), /permissions violation/i);
      // Its own keys it can.
      const own = await kv.watch({ key: "gw.gw-01.>" });
      own.stop();
    });

    await t.step("a gateway cannot command another; the operator can", async () => {
      await assert.rejects(
        gw1nc.request("sluice.fleet.gw-02.reload", undefined, { timeout: 2000 }),
        /permissions violation/i,
      );
      const reply = await operator.request("sluice.fleet.gw-02.status", undefined, {
        timeout: 5000,
      });
      assert.equal(reply.json<{ id: string }>().id, "gw-02");
      assert.ok(!gw2.proc.records.some((r) => r.msg === "reloading"));
    });
  } finally {
    await gw1nc.close();
    await operator.close();
    await Deno.remove(dir, { recursive: true });
  }
});
