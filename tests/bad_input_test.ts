// Bad input must never crash Sluice or lose other events: oversized, deeply nested, invalid
// UTF-8, empty and random payloads; configs that are far too large; fuzzed payloads and YAML.
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { loadConfigTexts } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { ConfigErrors } from "../src/errors.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { runSluice } from "../dev/sluice_process.ts";
import { pollUntil } from "../dev/wait.ts";
import {
  client,
  collectIds,
  configDir,
  event,
  manager,
  natsConnector,
  startSluice,
} from "./_delivery.ts";

const enc = new TextEncoder();

/** A small deterministic PRNG (mulberry32), so every run fuzzes the same inputs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(random: () => number, max: number): Uint8Array {
  const out = new Uint8Array(Math.floor(random() * max));
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

function nested(depth: number, inner = "31"): string {
  return "[".repeat(depth) + inner + "]".repeat(depth);
}

Deno.test("bad payloads are dead-lettered; Sluice keeps running and loses no good event", async () => {
  await using local = await NatsServer.start();
  await using uplink = await NatsServer.start({ maxPayload: 1024 });
  await using cfg = await configDir(`connectors:
${natsConnector("local", local.url)}${natsConnector("uplink", uplink.url)}
pipelines:
  forward:
    source: { connector: local, subject: ev.> }
    filter: temperature > 30
    sinks: [{ connector: uplink, subject: "up.{_tokens[1]}" }]
    dead_letter: { connector: local, subject: dlq.forward }
`);
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(local);
  await using up = await client(uplink);
  const good = await collectIds(up, "up.>");
  let dead = 0;
  nc.subscribe("dlq.forward", { callback: () => void dead++ });
  await nc.flush();

  const bad: Uint8Array[] = [
    enc.encode(JSON.stringify({ id: "too-big", temperature: 31, pad: "x".repeat(4000) })),
    enc.encode(nested(100_000)), // not an object: the filter cannot evaluate it
    enc.encode(`{"temperature": 31, "id": "deep", "deep": ${nested(100_000, "1")}}`),
    new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), // invalid UTF-8
    new Uint8Array(0),
    randomBytes(prng(1), 900),
    enc.encode('{"temperature": "hot"}'), // a string is not > 30: evaluation error
  ];
  let n = 0;
  for (const payload of bad) {
    nc.publish("ev.a", event(n++));
    nc.publish("ev.a", payload);
  }
  for (let i = 0; i < 100; i++) nc.publish("ev.a", event(n++));
  await nc.flush();

  await pollUntil(() => good.missing(n).length === 0 ? true : undefined, 20_000, "good events");
  assert.equal((await sluice.stop()).code, 0);
  const summary = sluice.records.find((r) => r.msg === "pipeline summary");
  assert.equal(summary?.in, n + bad.length);
  // The deeply nested event that has a temperature is forwarded if the runtime's JSON.parse takes
  // that depth, and dead-lettered as malformed if it does not; every other bad one is rejected.
  const rejected = bad.length - (good.ids.has("deep") ? 1 : 0);
  await pollUntil(() => dead >= rejected ? true : undefined, 10_000, "the dead letters");
  assert.equal(summary?.dead_lettered, rejected);
  assert.equal(dead, rejected);
  assert.ok(!good.ids.has("too-big"));
});

Deno.test("an event too large for a JetStream sink is dead-lettered and terminated", async () => {
  await using local = await NatsServer.start({ jetstream: true });
  await using uplink = await NatsServer.start({ jetstream: true, maxPayload: 1024 });
  await using nc = await client(local);
  await (await manager(nc)).streams.add({ name: "EV", subjects: ["ev.>"] });
  await using up = await client(uplink);
  const upm = await manager(up);
  await upm.streams.add({ name: "UP", subjects: ["up.>"] });
  const js = jetstream(nc);
  await js.publish("ev.a", event(0));
  await js.publish("ev.a", enc.encode(JSON.stringify({ id: "big", pad: "x".repeat(4000) })));
  await js.publish("ev.a", event(1));
  let dead = 0;
  nc.subscribe("dlq.x", { callback: () => void dead++ });
  await nc.flush();
  await using cfg = await configDir(`connectors:
${natsConnector("local", local.url)}${natsConnector("uplink", uplink.url)}
pipelines:
  to-uplink:
    source: { connector: local, subject: ev.>, jetstream: { stream: EV, durable: sluice } }
    sinks: [{ connector: uplink, subject: up.events, jetstream: true }]
    dead_letter: { connector: local, subject: dlq.x }
`);
  await using _sluice = await startSluice(cfg.file);
  const jsm = await manager(nc);
  await pollUntil(
    async () => {
      const info = await jsm.consumers.info("EV", "sluice");
      return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
    },
    20_000,
    "every message settled",
  );
  assert.equal((await upm.streams.info("UP")).state.messages, 2);
  await pollUntil(() => dead === 1 ? true : undefined, 10_000, "one dead letter");
  assert.equal((await jsm.consumers.info("EV", "sluice")).num_redelivered, 0);
});

Deno.test("fuzz: 3000 random payloads through decode and filter never crash Sluice", async () => {
  await using local = await NatsServer.start();
  await using cfg = await configDir(`connectors:
${natsConnector("local", local.url)}
pipelines:
  fuzz:
    source: { connector: local, subject: ev.> }
    filter: 'temperature > 30 && site.startsWith("a") || _headers["x"] == "y"'
    sinks: [{ connector: local, subject: "out.{site}" }]
    dead_letter: { connector: local, subject: dlq.fuzz }
`);
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(local);
  const out = await collectIds(nc, "out.>");
  const random = prng(20_240_601);
  const fragments = [
    '{"',
    '"temperature":',
    "31",
    '"site":',
    '"a"',
    "}",
    "[",
    "]",
    ",",
    "null",
    "\\u00",
  ];
  const count = 3000;
  for (let i = 0; i < count; i++) {
    if (random() < 0.5) {
      nc.publish("ev.f", randomBytes(random, 200));
    } else {
      let text = "";
      const parts = Math.floor(random() * 12);
      for (let p = 0; p < parts; p++) text += fragments[Math.floor(random() * fragments.length)];
      nc.publish("ev.f", enc.encode(text));
    }
    if (i % 500 === 0) await nc.flush();
  }
  // A known-good event after the noise proves the pipeline still runs.
  nc.publish("ev.f", enc.encode(JSON.stringify({ id: "after-fuzz", temperature: 31, site: "a1" })));
  await nc.flush();
  await pollUntil(
    () => out.ids.has("after-fuzz") ? true : undefined,
    20_000,
    "the event after the fuzz",
  );
  assert.equal((await sluice.stop()).code, 0);
  const summary = sluice.records.find((r) => r.msg === "pipeline summary");
  assert.equal(summary?.in, count + 1);
  assert.equal(sluice.records.filter((r) => r.level === "error").length, 0);
});

const VALID = `connectors:
  local:
    type: nats
    servers: nats://127.0.0.1:4222
    reconnect: { wait: 1s }
pipelines:
  alerts:
    source: { connector: local, subject: sensors.> }
    filter: temperature > 30 && site == "a"
    sinks:
      - connector: local
        subject: alerts.{site}
        buffer: { path: /tmp/x.db, max_size: 1MiB, overflow: drop_oldest }
      - { connector: local, subject: up.x, jetstream: { retries: 2 }, msg_id: { field: id } }
    dead_letter: { connector: local, subject: dlq.alerts }
  stream:
    source:
      connector: local
      subject: ev.>
      jetstream: { stream: EV, durable: d, ack_wait: 10s, max_ack_pending: 100 }
    sinks: [{ connector: local, subject: out }]
`;

Deno.test("fuzz: 1500 random YAML mutations load or fail with ConfigErrors, nothing else", () => {
  const registry = builtinRegistry();
  loadConfigTexts([{ path: "valid.yaml", text: VALID }], { registry, env: () => undefined });
  const random = prng(7);
  const alphabet = ":{}[]-,'\"&*!|>#%@` \n\t$0aZ.\\";
  let accepted = 0;
  for (let i = 0; i < 1500; i++) {
    let text = VALID;
    const edits = 1 + Math.floor(random() * 4);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(random() * text.length);
      const kind = random();
      if (kind < 0.3) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 8));
      else if (kind < 0.7) {
        text = text.slice(0, at) + alphabet[Math.floor(random() * alphabet.length)] +
          text.slice(at);
      } else {
        const from = Math.floor(random() * text.length);
        text = text.slice(0, at) + text.slice(from, from + Math.floor(random() * 40)) +
          text.slice(at);
      }
    }
    try {
      loadConfigTexts([{ path: "fuzz.yaml", text }], { registry, env: () => undefined });
      accepted++;
    } catch (e) {
      if (!(e instanceof ConfigErrors)) {
        throw new Error(`mutation ${i} threw ${String(e)}\n--- input ---\n${text}`);
      }
    }
  }
  assert.ok(accepted < 1500, "most mutations are invalid");
});

Deno.test("a config with 100k pipelines is rejected with a clear error in bounded time", async () => {
  await using cfg = await configDir("");
  const lines = ["connectors:", "  l: { type: nats }", "pipelines:"];
  for (let i = 0; i < 100_000; i++) {
    lines.push(
      `  p${i}: {source: {connector: l, subject: a}, sinks: [{connector: l, subject: b}]}`,
    );
  }
  const text = lines.join("\n");
  // Split over files so that each stays under the file size limit and the count check is reached.
  const files: string[] = [];
  const perFile = 20_000;
  for (let f = 0; f * perFile < 100_000; f++) {
    const body = lines.slice(3 + f * perFile, 3 + (f + 1) * perFile).join("\n");
    const path = `${cfg.dir}/p${f}.yaml`;
    await Deno.writeTextFile(
      path,
      `${f === 0 ? "connectors:\n  l: { type: nats }\n" : ""}pipelines:\n${body}\n`,
    );
    files.push(path);
  }
  const started = Date.now();
  const { code, stderr } = await runSluice(["check", cfg.dir], { timeoutMs: 60_000 });
  const took = Date.now() - started;
  assert.equal(code, 2);
  assert.match(stderr, /pipelines.*at most 10000|at most 10000 pipelines/);
  assert.ok(took < 60_000, `rejected in ${took} ms`);

  // One file that large is refused by its size before it is parsed.
  const t0 = Date.now();
  assert.throws(
    () => loadConfigTexts([{ path: "big.yaml", text }], { registry: builtinRegistry() }),
    (e: unknown) => e instanceof ConfigErrors && /config files may be at most/.test(e.message),
  );
  assert.ok(Date.now() - t0 < 5_000);
});

Deno.test("a config holding a 10 MB string is rejected by its size, quickly", async () => {
  await using cfg = await configDir(
    `connectors:\n  l: { type: nats, name: "${"x".repeat(10 * 1024 * 1024)}" }\n`,
  );
  const started = Date.now();
  const { code, stderr } = await runSluice(["check", cfg.file], { timeoutMs: 30_000 });
  assert.equal(code, 2);
  assert.match(stderr, /config files may be at most/);
  assert.ok(Date.now() - started < 30_000);
});
