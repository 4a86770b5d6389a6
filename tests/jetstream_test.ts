// JetStream source and sink against a real nats-server with JetStream: at-least-once delivery,
// poison messages, a Sluice crash mid-stream, and deduplication by Nats-Msg-Id.
import assert from "node:assert/strict";
import { AckPolicy, jetstream, type JetStreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../dev/nats_server.ts";
import { pollUntil, withTimeout } from "../dev/wait.ts";
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

function jsPipeline(options: {
  filter?: string;
  sink?: string;
  jetstream?: string;
  deadLetter?: boolean;
}): string {
  return `
pipelines:
  from-stream:
    source:
      connector: local
      subject: ev.>
      jetstream: { stream: EV, durable: sluice, ack_wait: 5s, nak_delay: 100ms${
    options.jetstream ? `, ${options.jetstream}` : ""
  } }
${options.filter ? `    filter: ${options.filter}\n` : ""}    sinks:
      - ${options.sink ?? "{ connector: local, subject: out.events }"}
${options.deadLetter ? "    dead_letter: { connector: local, subject: dlq.from-stream }\n" : ""}`;
}

/** Waits until the durable consumer has nothing pending and nothing unacknowledged. */
async function waitSettled(server: NatsServer, stream = "EV", durable = "sluice") {
  await using nc = await client(server);
  const jsm = await manager(nc);
  return await pollUntil(
    async () => {
      const info = await jsm.consumers.info(stream, durable);
      return info.num_pending === 0 && info.num_ack_pending === 0 ? info : undefined;
    },
    20_000,
    `consumer ${durable} to have every message acked`,
  );
}

Deno.test("a JetStream source delivers every stored event at least once and acks it", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using nc = await client(server);
  const jsm = await manager(nc);
  await jsm.streams.add({ name: "EV", subjects: ["ev.>"] });
  const js = jetstream(nc);
  const count = 2000;
  for (let i = 0; i < count; i++) await js.publish("ev.a", event(i));
  const ids = await collectIds(nc, "out.events");
  await using cfg = await configDir(
    `connectors:\n${natsConnector("local", server.url)}${jsPipeline({})}`,
  );
  await using sluice = await startSluice(cfg.file);
  await ids.waitForIds(count, 20_000, "events from the stream");
  const info = await waitSettled(server);
  assert.equal(info.config.ack_policy, AckPolicy.Explicit);
  assert.deepEqual(ids.missing(count), []);
  assert.equal((await sluice.stop()).code, 0);
  const summary = sluice.records.find((r) => r.msg === "pipeline summary");
  assert.equal(summary?.in, count);
});

Deno.test("a poison message is dead-lettered once and terminated, not redelivered", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using nc = await client(server);
  const jsm = await manager(nc);
  await jsm.streams.add({ name: "EV", subjects: ["ev.>"] });
  const js = jetstream(nc);
  await js.publish("ev.a", event(0));
  await js.publish("ev.a", enc.encode("{not json"));
  await js.publish("ev.a", enc.encode(JSON.stringify({ id: "no-temperature" })));
  await js.publish("ev.a", event(1));
  const ids = await collectIds(nc, "out.events");
  const dead: { data: string; error: string }[] = [];
  nc.subscribe("dlq.from-stream", {
    callback: (_e, m) => {
      dead.push({ data: m.string(), error: m.headers?.get("Sluice-Error") ?? "" });
    },
  });
  await nc.flush();
  await using cfg = await configDir(
    `connectors:\n${natsConnector("local", server.url)}${
      jsPipeline({ filter: "temperature > 30", deadLetter: true })
    }`,
  );
  await using _sluice = await startSluice(cfg.file);
  await ids.waitForIds(2, 20_000, "the two good events");
  const info = await waitSettled(server);
  // Terminated messages are neither pending nor redelivered.
  assert.equal(info.num_redelivered, 0);
  await pollUntil(() => dead.length >= 2 ? true : undefined, 10_000, "two dead letters");
  assert.equal(dead.length, 2);
  assert.equal(dead[0]?.data, "{not json");
  assert.match(dead[0]?.error ?? "", /malformed JSON/);
  assert.match(dead[1]?.error ?? "", /filter failed/);
});

Deno.test("a failing JetStream sink naks; the events arrive once the sink works", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using nc = await client(server);
  const jsm = await manager(nc);
  await jsm.streams.add({ name: "EV", subjects: ["ev.>"] });
  const js = jetstream(nc);
  for (let i = 0; i < 20; i++) await js.publish("ev.a", event(i));
  await using cfg = await configDir(
    `connectors:\n${natsConnector("local", server.url)}${
      jsPipeline({
        sink:
          "{ connector: local, subject: up.events, jetstream: { retries: 0, timeout: 500ms }, msg_id: { field: id } }",
      })
    }`,
  );
  await using sluice = await startSluice(cfg.file);
  // No stream takes up.> yet: every publish fails and the message is nak'ed.
  await sluice.waitForLog(
    (r) => r.msg === "event rejected" && /redelivered/.test(String(r.reason)),
    20_000,
    "a sink failure that leads to a nak",
  );
  await jsm.streams.add({ name: "UP", subjects: ["up.>"] });
  await pollUntil(
    async () => {
      const info = await jsm.streams.info("UP");
      return info.state.messages >= 20 ? true : undefined;
    },
    30_000,
    "20 events in stream UP after redelivery",
  );
  await waitSettled(server);
  assert.equal((await jsm.streams.info("UP")).state.messages, 20);
});

Deno.test("Sluice killed mid-stream and restarted delivers every event at least once", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using nc = await client(server);
  const jsm = await manager(nc);
  await jsm.streams.add({ name: "EV", subjects: ["ev.>"] });
  const js = jetstream(nc);
  const count = 20_000;
  const acks = [];
  for (let i = 0; i < count; i++) {
    acks.push(js.publish("ev.a", event(i)));
    if (acks.length === 500) await Promise.all(acks.splice(0));
  }
  await Promise.all(acks);
  const ids = await collectIds(nc, "out.events");
  await using cfg = await configDir(
    `connectors:\n${natsConnector("local", server.url)}${jsPipeline({})}`,
  );
  {
    await using first = await startSluice(cfg.file);
    await ids.waitForIds(2000, 20_000, "the first events");
    first.signal("SIGKILL");
    await first.status;
  }
  const beforeRestart = ids.ids.size;
  await using _second = await startSluice(cfg.file);
  await ids.waitForIds(count, 60_000, "every event after the restart");
  await waitSettled(server);
  assert.deepEqual(ids.missing(count), []);
  // deno-lint-ignore no-console -- the measurement is reported, not asserted
  console.log(
    `killed after ${beforeRestart} distinct events; ${ids.arrivals} arrivals for ${count} events`,
  );
});

/**
 * Runs Sluice with `sinks` (YAML list items) on `ev.>`, into a stream UP on `up.>`, and sends each
 * of `count` events twice, as a retry or a replay would; then stops Sluice and hands the stream's
 * manager and the pipeline's summary to `check`.
 */
async function sendEachTwice(
  sinks: string,
  count: number,
  check: (jsm: JetStreamManager, summary: Record<string, unknown> | undefined) => Promise<void>,
): Promise<void> {
  await using server = await NatsServer.start({ jetstream: true });
  await using nc = await client(server);
  const jsm = await manager(nc);
  await jsm.streams.add({ name: "UP", subjects: ["up.>"] });
  await using cfg = await configDir(`connectors:\n${natsConnector("local", server.url)}
pipelines:
  to-stream:
    source: { connector: local, subject: ev.> }
    sinks:
${sinks}`);
  await using sluice = await startSluice(cfg.file);
  for (let i = 0; i < count; i++) {
    nc.publish("ev.a", event(i));
    nc.publish("ev.a", event(i));
  }
  await nc.flush();
  await sluice.stop();
  await check(jsm, sluice.records.find((r) => r.msg === "pipeline summary"));
}

Deno.test("a JetStream sink sets Nats-Msg-Id so the stream stores duplicates once", async () => {
  await sendEachTwice(
    `      - { connector: local, subject: up.events, jetstream: true, msg_id: { field: id } }
      - { connector: local, subject: up.hashed, jetstream: true, msg_id: hash }
`,
    200,
    async (jsm, summary) => {
      const info = await jsm.streams.info("UP", { subjects_filter: ">" });
      assert.equal(info.state.subjects?.["up.events"], 200);
      assert.equal(info.state.subjects?.["up.hashed"], 200);
      const stored = await jsm.streams.getMessage("UP", { seq: 1 });
      assert.equal(stored?.header.get("Nats-Msg-Id"), "e-0");
      assert.deepEqual([summary?.in, summary?.errors], [400, 0]);
    },
  );
});

Deno.test("a core sink with msg_id: hash sets Nats-Msg-Id, and a stream stores duplicates once", async () => {
  // A Sluice of its own: no JetStream sink in it loads the hash for this one.
  await sendEachTwice(
    "      - { connector: local, subject: up.core, msg_id: hash }\n",
    100,
    async (jsm, summary) => {
      // A core publish is not confirmed, but the stream dedupes it by the header all the same.
      const info = await jsm.streams.info("UP");
      assert.equal(info.state.messages, 100);
      const stored = await jsm.streams.getMessage("UP", { seq: 1 });
      assert.match(stored?.header.get("Nats-Msg-Id") ?? "", /^[A-Za-z0-9_-]{43}$/);
      assert.deepEqual([summary?.in, summary?.errors], [200, 0]);
    },
  );
});

Deno.test("a JetStream source on a missing stream fails to start with a clear error", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using cfg = await configDir(
    `connectors:\n${natsConnector("local", server.url)}${jsPipeline({})}`,
  );
  const { SluiceProcess } = await import("../dev/sluice_process.ts");
  await using sluice = SluiceProcess.start(["run", "--log-format", "json", cfg.file]);
  const status = await sluice.status;
  assert.equal(status.code, 1);
  assert.match(sluice.stderr(), /stream \\"EV\\" does not exist.*create_stream: true/);
});

Deno.test("create_stream: true creates a missing stream on the source subject", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using nc = await client(server);
  await using cfg = await configDir(
    `connectors:\n${natsConnector("local", server.url)}${
      jsPipeline({ jetstream: "create_stream: true" })
    }`,
  );
  await using _sluice = await startSluice(cfg.file);
  const info = await (await manager(nc)).streams.info("EV");
  assert.deepEqual(info.config.subjects, ["ev.>"]);
  const ids = await collectIds(nc, "out.events");
  await jetstream(nc).publish("ev.x", event(7));
  await ids.waitForIds(1, 10_000, "an event through the created stream");
});

Deno.test("a JetStream sink retries a publish nothing answered, and the stream stores it once", async () => {
  await using server = await NatsServer.start({ jetstream: true });
  await using nc = await client(server);
  const jsm = await manager(nc);
  // A subscriber that never answers: each attempt reaches it and times out.
  const silent = nc.subscribe("up.events");
  const attempts: (string | undefined)[] = [];
  const twoAttempts = (async () => {
    for await (const m of silent) {
      attempts.push(m.headers?.get("Nats-Msg-Id"));
      if (attempts.length === 2) return;
    }
  })();
  await nc.flush();
  await using cfg = await configDir(`connectors:\n${natsConnector("local", server.url)}
pipelines:
  to-stream:
    source: { connector: local, subject: ev.> }
    sinks:
      - connector: local
        subject: up.events
        jetstream: { timeout: 200ms, retries: 20, retry_wait: 50ms }
        msg_id: { field: id }
`);
  await using sluice = await startSluice(cfg.file);
  nc.publish("ev.a", event(7));
  await withTimeout(twoAttempts, 20_000, "a first attempt and a retry");
  // Both attempts carry the same id, so the stream can drop a late duplicate.
  assert.deepEqual(attempts, ["e-7", "e-7"]);
  await jsm.streams.add({ name: "UP", subjects: ["up.>"] });
  silent.unsubscribe();
  await pollUntil(
    async () => (await jsm.streams.info("UP")).state.messages >= 1 ? true : undefined,
    20_000,
    "the retried event in stream UP",
  );
  await sluice.stop();
  assert.equal((await jsm.streams.info("UP")).state.messages, 1);
  const summary = sluice.records.find((r) => r.msg === "pipeline summary");
  assert.equal(summary?.in, 1);
  assert.equal(summary?.errors, 0);
});
