/**
 * Request-reply end to end: the real CLI against a real nats-server, with services written here
 * in nats.js. Enrichment (`request` processor) and Sluice as a service (`reply: true`).
 */
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { type ServiceClient, Svcm } from "@nats-io/services";
import { NatsServer } from "../dev/nats_server.ts";
import type { SluiceProcess } from "../dev/sluice_process.ts";
import { Collector, pollUntil } from "../dev/wait.ts";
import { client, configDir, manager, natsConnector, startSluice } from "./_delivery.ts";

const enc = new TextEncoder();

/** Subscribes a collector to `subject`. */
async function collect(nc: NatsConnection, subject: string): Promise<Collector<Msg>> {
  const c = new Collector<Msg>();
  nc.subscribe(subject, { callback: (_err, msg) => c.push(msg) });
  await nc.flush();
  return c;
}

/** A service whose requests the test answers when it likes: `requests` collects them. */
async function heldService(nc: NatsConnection, subject: string): Promise<Collector<Msg>> {
  return await collect(nc, subject);
}

function config(url: string, pipelines: string): string {
  return `connectors:\n${natsConnector("local", url)}\npipelines:\n${pipelines}`;
}

async function summaryOf(sluice: SluiceProcess): Promise<Record<string, unknown>> {
  assert.equal((await sluice.stop()).code, 0);
  return await sluice.waitForMsg("pipeline summary");
}

const ENRICH = `  enrich:
    source: { connector: local, subject: sensors.> }
    processors:
      - request:
          connector: local
          subject: registry.lookup.{sensor}
          body: '{"id": sensor}'
          timeout: 10s
          into: meta
    sinks: [{ connector: local, subject: "enriched.{_tokens[1]}" }]
    dead_letter: { connector: local, subject: dlq.enrich }
`;

Deno.test("request enriches events with the exact replies, in arrival order", async () => {
  await using server = await NatsServer.start();
  await using nc = await client(server);
  const requests = await heldService(nc, "registry.lookup.*");
  const out = await collect(nc, "enriched.>");
  await using cfg = await configDir(config(server.url, ENRICH));
  await using sluice = await startSluice(cfg.file);

  const n = 5;
  for (let i = 0; i < n; i++) {
    nc.publish(`sensors.s${i}`, JSON.stringify({ sensor: `t${i}`, v: i }));
  }
  // All five are in flight at once; answer them last first.
  await requests.waitForCount(n, 10_000, "five requests in flight");
  for (const req of [...requests.items].reverse()) {
    const { id } = req.json<{ id: string }>();
    req.respond(JSON.stringify({ site: `site-of-${id}`, subject: req.subject }));
  }
  await out.waitForCount(n, 10_000, "five enriched events");
  assert.deepEqual(
    out.items.map((m) => [m.subject, m.json()]),
    Array.from({ length: n }, (_, i) => [
      `enriched.s${i}`,
      { sensor: `t${i}`, v: i, meta: { site: `site-of-t${i}`, subject: `registry.lookup.t${i}` } },
    ]),
  );
  const s = await summaryOf(sluice);
  assert.deepEqual([s.in, s.passed, s.errors], [n, n, 0]);
});

Deno.test("request timeouts, missing responders and error replies go to the dead letter", async () => {
  await using server = await NatsServer.start();
  await using nc = await client(server);
  await heldService(nc, "svc.silent"); // listens, never answers
  nc.subscribe("svc.broken", {
    callback: (_err, msg) => {
      const h = headers();
      h.set("Nats-Service-Error-Code", "500");
      h.set("Nats-Service-Error", "database down");
      msg.respond(new Uint8Array(), { headers: h });
    },
  });
  nc.subscribe("svc.ok", { callback: (_err, msg) => void msg.respond('{"ok":true}') });
  const out = await collect(nc, "out");
  const dlq = await collect(nc, "dlq.svc");
  await using cfg = await configDir(config(
    server.url,
    `  svc:
    source: { connector: local, subject: in.> }
    processors:
      - request: { connector: local, subject: "svc.{kind}", timeout: 300ms, into: reply }
    sinks: [{ connector: local, subject: out }]
    dead_letter: { connector: local, subject: dlq.svc }
`,
  ));
  await using sluice = await startSluice(cfg.file);

  const kinds = ["silent", "nobody", "broken", "ok"];
  for (const kind of kinds) nc.publish(`in.${kind}`, JSON.stringify({ kind }));
  await dlq.waitForCount(3, 10_000, "three dead letters");
  await out.waitForCount(1, 10_000, "the answered event");
  assert.deepEqual(out.items[0]!.json(), { kind: "ok", reply: { ok: true } });
  assert.deepEqual(dlq.items.map((m) => [m.headers?.get("Sluice-Subject"), m.string()]), [
    ["in.silent", '{"kind":"silent"}'],
    ["in.nobody", '{"kind":"nobody"}'],
    ["in.broken", '{"kind":"broken"}'],
  ]);
  assert.deepEqual(dlq.items.map((m) => m.headers?.get("Sluice-Error")), [
    'processors[0] request: timeout after 300ms on "svc.silent"',
    'processors[0] request: no responders on "svc.nobody"',
    'processors[0] request: error reply 500 from "svc.broken": database down',
  ]);
  const s = await summaryOf(sluice);
  assert.deepEqual([s.in, s.passed, s.dead_lettered, s.errors], [4, 1, 3, 3]);
});

Deno.test("request joins identical requests in flight and answers repeats from its cache", async () => {
  await using server = await NatsServer.start();
  await using nc = await client(server);
  const requests = await heldService(nc, "registry.lookup.*");
  const out = await collect(nc, "enriched.>");
  await using cfg = await configDir(config(
    server.url,
    ENRICH.replace("into: meta", "into: meta\n          cache: { ttl: 1h, max_entries: 100 }"),
  ));
  await using _sluice = await startSluice(cfg.file);

  for (let i = 0; i < 3; i++) nc.publish(`sensors.a${i}`, '{"sensor":"t1"}');
  nc.publish("sensors.b", '{"sensor":"t2"}');
  // Events are handled in order: once t2's request is here, the three t1 events were handled.
  await requests.waitForCount(2, 10_000, "requests for t1 and t2");
  for (const req of requests.items) req.respond(`{"for":"${req.json<{ id: string }>().id}"}`);
  await out.waitForCount(4, 10_000, "four enriched events");
  // A repeat after the reply came is a cache hit: no further request.
  nc.publish("sensors.c", '{"sensor":"t1"}');
  const last = await out.waitForCount(5, 10_000, "the repeat");
  await nc.flush();
  assert.equal(requests.items.length, 2, "one request per distinct subject and body");
  assert.deepEqual(
    last.map((m) => [m.subject, m.json<{ meta: unknown }>().meta]),
    [
      ["enriched.a0", { for: "t1" }],
      ["enriched.a1", { for: "t1" }],
      ["enriched.a2", { for: "t1" }],
      ["enriched.b", { for: "t2" }],
      ["enriched.c", { for: "t1" }],
    ],
  );
});

const SERVICES = `  convert:
    source: { connector: local, subject: svc.convert, queue: converters }
    processors:
      - map: { fahrenheit: "celsius * 9.0 / 5.0 + 32.0" }
    reply: true
  validate:
    source: { connector: local, subject: svc.validate }
    filter: celsius > -273.15
    reply: true
  lookup:
    source: { connector: local, subject: svc.lookup }
    processors:
      - request: { connector: local, subject: nobody.home, timeout: 5s }
    reply: true
`;

Deno.test("a reply pipeline answers each request with the resulting event", async () => {
  await using server = await NatsServer.start();
  await using nc = await client(server);
  await using cfg = await configDir(config(server.url, SERVICES));
  await using sluice = await startSluice(cfg.file);

  const converted = await nc.request("svc.convert", '{"celsius":100}', { timeout: 10_000 });
  assert.deepEqual(converted.json(), { celsius: 100, fahrenheit: 212 });
  assert.equal(converted.headers, undefined);
  // Unchanged by its processors: the original bytes come back.
  const odd = '{ "celsius" :  21.5 }';
  const validated = await nc.request("svc.validate", odd, { timeout: 10_000 });
  assert.equal(validated.string(), odd);
  // A plain publish on a reply pipeline's subject is handled like any event.
  nc.publish("svc.convert", '{"celsius":0}');
  await nc.flush();
  assert.equal((await sluice.stop()).code, 0);
  const convert = sluice.records.find((r) =>
    r.msg === "pipeline summary" && r.pipeline === "convert"
  );
  assert.deepEqual(
    [convert?.in, convert?.passed, convert?.replied, convert?.reply_errors, convert?.errors],
    [2, 2, 1, undefined, 0],
  );
});

Deno.test("dropped, malformed and failed requests get an error reply at once", async () => {
  await using server = await NatsServer.start();
  await using nc = await client(server);
  await using cfg = await configDir(config(server.url, SERVICES));
  await using sluice = await startSluice(cfg.file);

  // The caller's timeout is far beyond the test's bounds: a reply must come without waiting.
  const ask = (subject: string, data: string | Uint8Array) =>
    nc.request(subject, data, { timeout: 60_000 });
  const cases: [string, string | Uint8Array, string, RegExp][] = [
    ["svc.validate", '{"celsius":-300}', "400", /^the event was dropped by the pipeline$/],
    ["svc.convert", "{nope", "400", /^malformed JSON/],
    ["svc.convert", new Uint8Array(), "400", /^empty payload$/],
    ["svc.convert", '{"kelvin":3}', "400", /^processors\[0\] map: .*celsius/],
    ["svc.validate", '{"celsius":"hot"}', "400", /^filter failed/],
    ["svc.lookup", '{"q":1}', "500", /^processors\[0\] request: no responders on "nobody\.home"$/],
  ];
  for (const [subject, data, code, reason] of cases) {
    const reply = await ask(subject, data);
    assert.equal(reply.data.length, 0, `${subject} ${String(data)}: empty body`);
    assert.equal(reply.headers?.get("Nats-Service-Error-Code"), code, String(data));
    assert.match(reply.headers?.get("Sluice-Error") ?? "", reason);
    assert.equal(reply.headers?.get("Nats-Service-Error"), reply.headers?.get("Sluice-Error"));
  }
  assert.equal((await sluice.stop()).code, 0);
  const counted = sluice.records.filter((r) => r.msg === "pipeline summary")
    .map((r) => [r.pipeline, r.reply_errors, r.replied]).sort();
  assert.deepEqual(counted, [
    ["convert", 3, undefined],
    ["lookup", 1, undefined],
    ["validate", 2, undefined],
  ]);
});

Deno.test("two instances in one queue group share requests, each answered once", async () => {
  await using server = await NatsServer.start();
  await using nc = await client(server);
  await using cfg = await configDir(config(server.url, SERVICES));
  await using a = await startSluice(cfg.file);
  await using b = await startSluice(cfg.file);

  const total = 300;
  const replies = await Promise.all(
    Array.from({ length: total }, async (_, i) => {
      const m = await nc.request("svc.convert", JSON.stringify({ celsius: i }), {
        timeout: 20_000,
      });
      return m.json<{ fahrenheit: number }>().fahrenheit;
    }),
  );
  assert.deepEqual(replies, Array.from({ length: total }, (_, i) => i * 9 / 5 + 32));
  const ins = await Promise.all([a, b].map(async (p) => {
    assert.equal((await p.stop()).code, 0);
    return p.records.filter((r) => r.msg === "pipeline summary" && r.pipeline === "convert")
      .map((r) => Number(r.in))[0] ?? 0;
  }));
  // Every request reached exactly one instance: a duplicate would be counted by both.
  assert.equal(ins[0]! + ins[1]!, total, `requests split ${ins} without duplicates`);
  assert.ok(ins[0]! > 0 && ins[1]! > 0, `both instances answered: ${ins}`);
});

Deno.test("a JetStream event is acked only after its request completed", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using nc = await client(server);
  const jsm = await manager(nc);
  await jsm.streams.add({ name: "EV", subjects: ["ev.>"] });
  const requests = await heldService(nc, "registry.lookup.*");
  const out = await collect(nc, "enriched.>");
  await using cfg = await configDir(config(
    server.url,
    ENRICH.replace(
      "source: { connector: local, subject: sensors.> }",
      "source: { connector: local, subject: ev.>, jetstream: { stream: EV, durable: enrich, ack_wait: 30s } }",
    ),
  ));
  await using sluice = await startSluice(cfg.file);
  await jetstream(nc).publish("ev.s1", enc.encode('{"sensor":"t1"}'));

  const req = await requests.waitFor(() => true, 10_000, "the request");
  const pending = await jsm.consumers.info("EV", "enrich");
  assert.equal(pending.num_ack_pending, 1, "not acked while its request waits");
  assert.equal(out.items.length, 0);
  req.respond('{"site":"oslo"}');
  await out.waitForCount(1, 10_000, "the enriched event");
  await pollUntil(
    async () => (await jsm.consumers.info("EV", "enrich")).num_ack_pending === 0 || undefined,
    10_000,
    "the ack",
  );
  assert.deepEqual(out.items[0]!.json(), { sensor: "t1", meta: { site: "oslo" } });
  const s = await summaryOf(sluice);
  assert.equal(s.acked, 1);
});

/** The first `count` answers of a discovery request, without waiting for stragglers. */
async function discover<T>(
  ask: (c: ServiceClient) => Promise<AsyncIterable<T>>,
  nc: NatsConnection,
  count: number,
): Promise<T[]> {
  // Svcm is typed against its own nats-core release; the connection is the same protocol.
  const svcm = new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]);
  const out: T[] = [];
  for await (
    const r of await ask(svcm.client({ strategy: "count", maxMessages: count, maxWait: 10_000 }))
  ) {
    out.push(r);
  }
  return out;
}

Deno.test("a reply pipeline is discoverable as a NATS service, with request statistics", async () => {
  await using server = await NatsServer.start();
  await using nc = await client(server);
  await using cfg = await configDir(config(server.url, SERVICES));
  await using _sluice = await startSluice(cfg.file);

  const [ping] = await discover((c) => c.ping("convert"), nc, 1);
  assert.equal(ping?.name, "convert");
  assert.match(ping?.version ?? "", /^\d+\.\d+\.\d+/);
  const all = await discover((c) => c.ping(), nc, 3);
  assert.deepEqual(all.map((p) => p.name).sort(), ["convert", "lookup", "validate"]);

  const [info] = await discover((c) => c.info("convert", ping!.id), nc, 1);
  assert.deepEqual(info?.endpoints.map((e) => [e.name, e.subject, e.queue_group]), [
    ["convert", "svc.convert", "converters"],
  ]);

  await nc.request("svc.convert", '{"celsius":1}', { timeout: 10_000 });
  await nc.request("svc.convert", '{"celsius":2}', { timeout: 10_000 });
  await nc.request("svc.convert", "{bad", { timeout: 10_000 });
  const [stats] = await discover((c) => c.stats("convert"), nc, 1);
  const e = stats!.endpoints![0]!;
  assert.deepEqual([e.num_requests, e.num_errors], [3, 1]);
  assert.match(e.last_error ?? "", /^malformed JSON/);
  assert.ok(e.processing_time > 0);
});

Deno.test("a JetStream event over max_in_flight is redelivered, not dead-lettered", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using nc = await client(server);
  const jsm = await manager(nc);
  await jsm.streams.add({ name: "EV", subjects: ["ev.>"] });
  let answering = false;
  const held: Msg[] = [];
  nc.subscribe("registry.lookup.*", {
    callback: (_err, m) => {
      if (answering) m.respond('{"ok":true}');
      else held.push(m);
    },
  });
  const out = await collect(nc, "enriched.>");
  const dlq = await collect(nc, "dlq.enrich");
  await using cfg = await configDir(config(
    server.url,
    ENRICH.replace(
      "source: { connector: local, subject: sensors.> }",
      "source: { connector: local, subject: ev.>, jetstream: { stream: EV, durable: enrich, nak_delay: 100ms } }",
    ).replace("into: meta", "into: meta\n          max_in_flight: 1") + `  probe:
    source: { connector: local, subject: probe.in }
    sinks: [{ connector: local, subject: probe.out }]
`,
  ));
  await using sluice = await startSluice(cfg.file);
  const js = jetstream(nc);
  for (const s of ["t1", "t2", "t3"]) await js.publish(`ev.${s}`, enc.encode(`{"sensor":"${s}"}`));

  // All three are delivered; a probe through the same connection, handled after them, proves
  // that Sluice has handled (and refused) the two over max_in_flight.
  await pollUntil(
    async () => (await jsm.consumers.info("EV", "enrich")).num_ack_pending === 3 || undefined,
    10_000,
    "three deliveries",
  );
  const probes = await collect(nc, "probe.out");
  nc.publish("probe.in", "{}");
  await probes.waitForCount(1, 10_000, "the probe");
  assert.equal(held.length, 1, "one request in flight");
  answering = true;
  for (const m of held) m.respond('{"ok":true}');
  await out.waitForCount(3, 20_000, "all three enriched events");
  const warning = sluice.records.find((r) =>
    r.msg === "event rejected" && String(r.reason).includes("will be redelivered")
  );
  assert.match(String(warning?.reason), /too many requests in flight \(max_in_flight 1\)/);
  assert.deepEqual(out.items.map((m) => m.subject).sort(), [
    "enriched.t1",
    "enriched.t2",
    "enriched.t3",
  ]);
  assert.equal((await sluice.stop()).code, 0);
  const s = sluice.records.find((r) => r.msg === "pipeline summary" && r.pipeline === "enrich");
  assert.equal(dlq.items.length, 0);
  assert.equal(s?.acked, 3);
  // Redelivered together, one of them may be refused again.
  assert.ok(Number(s?.nacked) >= 2, `nacked ${s?.nacked}`);
});

Deno.test("a request through another connector opens that connector for the pipeline", async () => {
  await using server = await NatsServer.start();
  await using nc = await client(server);
  nc.subscribe("registry.lookup.*", { callback: (_err, m) => void m.respond('{"via":"lookup"}') });
  const out = await collect(nc, "enriched.>");
  await using cfg = await configDir(
    `connectors:\n${natsConnector("local", server.url)}${natsConnector("lookup", server.url)}` +
      `pipelines:\n${
        ENRICH.replace(
          "connector: local\n          subject: registry",
          "connector: lookup\n          subject: registry",
        )
      }`,
  );
  await using _sluice = await startSluice(cfg.file);
  const connz = await server.connz();
  assert.deepEqual(
    connz.connections.map((c) => c.name).filter((n) => n?.startsWith("sluice-")).sort(),
    ["sluice-local", "sluice-lookup"],
  );
  nc.publish("sensors.a", '{"sensor":"t1"}');
  const [m] = await out.waitForCount(1, 10_000, "the enriched event");
  assert.deepEqual(m!.json(), { sensor: "t1", meta: { via: "lookup" } });
});

Deno.test("a reply pipeline answers 400 when its sink cannot render a subject, and dead-letters it", async () => {
  await using server = await NatsServer.start();
  await using nc = await client(server);
  const out = await collect(nc, "sites.>");
  const dlq = await collect(nc, "dlq.route");
  await using cfg = await configDir(config(
    server.url,
    `  route:
    source: { connector: local, subject: svc.route }
    sinks: [{ connector: local, subject: "sites.{site}" }]
    dead_letter: { connector: local, subject: dlq.route }
    reply: true
`,
  ));
  await using _sluice = await startSluice(cfg.file);
  const ok = await nc.request("svc.route", '{"site":"oslo"}', { timeout: 60_000 });
  assert.equal(ok.string(), '{"site":"oslo"}');
  const [sent] = await out.waitForCount(1, 10_000, "the routed event");
  assert.equal(sent!.subject, "sites.oslo");
  const bad = await nc.request("svc.route", '{"x":1}', { timeout: 60_000 });
  assert.equal(bad.headers?.get("Nats-Service-Error-Code"), "400");
  assert.equal(bad.headers?.get("Sluice-Error"), "template value {site} is missing");
  const [dead] = await dlq.waitForCount(1, 10_000, "the dead letter");
  assert.equal(dead!.string(), '{"x":1}');
});
