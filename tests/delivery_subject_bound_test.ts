// A template value long enough to make a subject the server refuses ("maximum control line
// exceeded") must be dead-lettered, not sent: the server would close the connection every pipeline
// on the connector shares.
import assert from "node:assert/strict";
import { type Msg } from "@nats-io/transport-node";
import { NatsServer } from "../dev/nats_server.ts";
import { Collector } from "../dev/wait.ts";
import {
  compileTemplate,
  isRenderFailure,
  MAX_SUBJECT_BYTES,
} from "../src/connectors/nats/template.ts";
import {
  client,
  collectIds,
  configDir,
  natsConnector,
  publishEvents,
  startSluice,
} from "./_delivery.ts";

const enc = new TextEncoder();

Deno.test("a rendered subject over the bound is a render failure that names the template", () => {
  const t = compileTemplate("alerts.{site}.temperature");
  const fits = t.render(
    { site: "s".repeat(MAX_SUBJECT_BYTES - "alerts..temperature".length) },
    "x",
  );
  assert.equal(typeof fits, "string");
  const long = t.render({ site: "s".repeat(MAX_SUBJECT_BYTES) }, "x");
  assert.ok(isRenderFailure(long));
  assert.match(
    long.failure,
    /"alerts\.\{site\}\.temperature" is 1043 bytes long, more than the 1024/,
  );
  // Counted in UTF-8 bytes: 400 three-byte characters are 1200 bytes.
  const wide = t.render({ site: "€".repeat(400) }, "x");
  assert.ok(isRenderFailure(wide), "multi-byte characters are counted as bytes");
});

Deno.test("a template whose literal text alone is over the bound does not compile", () => {
  assert.throws(
    () => compileTemplate(`a.${"b".repeat(MAX_SUBJECT_BYTES)}.{site}`),
    /bytes long without its placeholders, more than the 1024 allowed/,
  );
});

Deno.test("a 5000-character {site} is dead-lettered; the shared connection and its other pipeline live on", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(`connectors:
${natsConnector("local", server.url)}
pipelines:
  by-site:
    source: { connector: local, subject: sensors.> }
    sinks: [{ connector: local, subject: "alerts.{site}" }]
    dead_letter: { connector: local, subject: dlq.by-site }
  other:
    source: { connector: local, subject: other.> }
    sinks: [{ connector: local, subject: other-out.events }]
`);
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const dead = new Collector<Msg>();
  nc.subscribe("dlq.by-site", { callback: (_e, m) => dead.push(m) });
  const other = await collectIds(nc, "other-out.events");
  const before = await server.waitForConnection(
    (c) => c.name === "sluice-local",
    10_000,
    "Sluice's connection",
  );

  await publishEvents(nc, "other.a", 0, 500, 100);
  nc.publish("sensors.a", enc.encode(JSON.stringify({ id: "long", site: "s".repeat(5000) })));
  await publishEvents(nc, "other.a", 500, 500, 100);

  const [m] = await dead.waitForCount(1, 15_000, "the long-subject event in the dead letter");
  assert.match(m!.headers?.get("Sluice-Error") ?? "", /bytes long, more than the 1024 allowed/);
  assert.equal(m!.headers?.get("Sluice-Pipeline"), "by-site");
  await other.waitForIds(1000, 15_000, "every event of the other pipeline");
  assert.deepEqual(other.missing(1000), []);

  const after = await server.waitForConnection(
    (c) => c.name === "sluice-local",
    10_000,
    "Sluice's connection",
  );
  assert.equal(after.cid, before.cid, "the server kept Sluice's connection");
  assert.equal(sluice.records.filter((r) => r.msg === "connector disconnected").length, 0);
  assert.equal((await sluice.stop()).code, 0);
});
