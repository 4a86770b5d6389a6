/**
 * The NATS-native edge topology: each gateway's local nats-server is a leaf node of a hub; sensors
 * and Sluice use the local server, and the fleet control plane (the KV bucket on the hub's
 * JetStream, the operator CLI) reaches the gateway through the hub. A pipeline deployed to two
 * gateways with a queue group shares one stream of events between them.
 */
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { NatsServer } from "../dev/nats_server.ts";
import { pollUntil } from "../dev/wait.ts";
import { applied, fleet, fleetJson, revisionOf, startGateway } from "./_fleet.ts";

/** A free loopback port for the hub's leaf-node listener. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("fleet over leaf nodes: the hub reaches gateways on their local servers", async () => {
  const leafPort = freePort();
  const store = await Deno.makeTempDir({ prefix: "sluice-fleet-hub-" });
  // The hub's JetStream has a domain, so that leaf nodes forward `$JS.hub.API` requests to it.
  await using hub = await NatsServer.start({
    extraConfig: `jetstream { store_dir: ${JSON.stringify(store)}, domain: hub }\n` +
      `leafnodes { listen: "127.0.0.1:${leafPort}" }`,
  });
  const remote = `leafnodes { remotes: [{ url: "nats-leaf://127.0.0.1:${leafPort}" }] }`;
  await using leafA = await NatsServer.start({ extraConfig: remote });
  await using leafB = await NatsServer.start({ extraConfig: remote });
  await pollUntil(
    async () => {
      const r = await fetch(`${hub.monitorUrl}/leafz`);
      const body = await r.json() as { leafnodes?: number };
      return (body.leafnodes ?? 0) >= 2 ? true : undefined;
    },
    10_000,
    "both leaf nodes to connect to the hub",
  );

  const dir = await Deno.makeTempDir({ prefix: "sluice-fleet-leaf-" });
  const hubClient = await connect({ servers: hub.url });
  try {
    assert.equal((await fleet(hub.url, "init")).code, 0);
    // Each gateway knows only its local server: control plane and data plane alike.
    await using gwA = await startGateway({ id: "gw-a", uplink: leafA.url, domain: "hub" });
    await using gwB = await startGateway({ id: "gw-b", uplink: leafB.url, domain: "hub" });
    await Promise.all([gwA, gwB].map((g) => g.proc.waitForMsg("fleet synced")));

    const ls = await fleetJson<{ id: string }[]>(hub.url, "ls");
    assert.deepEqual(ls.map((g) => g.id), ["gw-a", "gw-b"]);

    const file = `${dir}/shared.yaml`;
    await Deno.writeTextFile(
      file,
      "pipelines:\n  shared:\n    source: {connector: local, subject: work.in, queue: workers}\n" +
        "    sinks: [{connector: local, subject: work.out}]\n",
    );
    const rev = revisionOf(
      await fleetJson<{ revision: number }[]>(hub.url, "deploy", file, "--all"),
    );
    await Promise.all([applied(gwA, "shared", rev), applied(gwB, "shared", rev)]);
    const status = await fleetJson<{ pipelines: { name: string; state: string }[] }>(
      hub.url,
      "status",
      "gw-b",
    );
    assert.deepEqual(status.pipelines.map((p) => [p.name, p.state]), [["shared", "running"]]);

    // Events published at the hub are shared by the two gateways' queue group: each once.
    const total = 200;
    const seen: number[] = [];
    const sub = hubClient.subscribe("work.out", {
      callback: (_e, m) => {
        seen.push(m.json<{ n: number }>().n);
      },
    });
    await hubClient.flush();
    await pollUntil(
      async () => {
        // Both gateways' queue subscriptions have reached the hub through their leaf nodes.
        const r = await fetch(`${hub.monitorUrl}/leafz?subs=1`);
        const body = await r.json() as { leafs?: { subscriptions_list?: string[] }[] };
        const withQueue = (body.leafs ?? []).filter((l) =>
          (l.subscriptions_list ?? []).some((s) => s.startsWith("work.in"))
        );
        return withQueue.length >= 2 ? true : undefined;
      },
      10_000,
      "both queue subscriptions at the hub",
    );
    for (let n = 0; n < total; n++) hubClient.publish("work.in", JSON.stringify({ n }));
    await pollUntil(() => seen.length >= total ? true : undefined, 15_000, "every event out");
    sub.unsubscribe();
    assert.deepEqual([...seen].sort((a, b) => a - b), [...Array(total).keys()]);
  } finally {
    await hubClient.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(store, { recursive: true }).catch(() => {});
  }
});
