/**
 * The `request` processor on its own, with the connector's request replaced by a function the
 * test answers: cache hits and expiry on a fake clock, joining identical requests in flight,
 * the `max_in_flight` bound, malformed replies and the statistics. The real round trip through
 * nats-server is in request_e2e_test.ts.
 */
import assert from "node:assert/strict";
import { loadConfigTexts } from "../src/config/load.ts";
import { builtinRegistry } from "../src/connectors/mod.ts";
import { type Reply, RequestError, type RequestOptions } from "../src/engine/types.ts";
import { newProcessorCounters, type Processor } from "../src/processors/types.ts";
import { Deferred } from "../dev/wait.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Sent {
  connector: string;
  subject: string;
  body: unknown;
  options: RequestOptions;
  reply: Deferred<Reply>;
}

/** A request processor compiled from YAML settings, with a clock and requests the test drives. */
function requestProcessor(settings: string) {
  const config = loadConfigTexts([{
    path: "c.yaml",
    text: `connectors:
  local: {type: nats}
pipelines:
  p:
    source: {connector: local, subject: s.>}
    processors:
      - request: ${settings}
    sinks: [{connector: local, subject: out}]
`,
  }], { registry: builtinRegistry(), env: () => undefined });
  const sent: Sent[] = [];
  const clock = { now: 1_000_000 };
  const counters = newProcessorCounters();
  const processor: Processor = config.pipelines.get("p")!.processors[0]!.factory.create({
    counters,
    now: () => clock.now,
    request(connector, subject, data, options) {
      const reply = new Deferred<Reply>();
      sent.push({ connector, subject, body: JSON.parse(dec.decode(data)), options, reply });
      return reply.promise;
    },
  });
  return { processor, sent, clock, counters };
}

const meta = { subject: "s.site-a.t1" };
const json = (v: unknown): Reply => ({ data: enc.encode(JSON.stringify(v)) });

Deno.test("request sends the rendered subject and CEL body, and sets the reply at into", async () => {
  const { processor, sent } = requestProcessor(
    `{connector: local, subject: "reg.{_tokens[1]}.{id}", body: '{"q": id}', timeout: 250ms, into: meta.reg}`,
  );
  assert.equal(processor.waits, true);
  const event = { id: "t1", v: 3, meta: { keep: true } };
  const out = processor.process(event, meta) as Promise<unknown>;
  assert.equal(sent.length, 1);
  assert.deepEqual(
    [sent[0]!.connector, sent[0]!.subject, sent[0]!.body, sent[0]!.options.timeoutMs],
    ["local", "reg.site-a.t1", { q: "t1" }, 250],
  );
  sent[0]!.reply.resolve(json({ unit: "C", n: 1 }));
  assert.deepEqual(await out, { id: "t1", v: 3, meta: { keep: true, reg: { unit: "C", n: 1 } } });
  assert.deepEqual(event, { id: "t1", v: 3, meta: { keep: true } }, "the input is not changed");
});

Deno.test("request without body sends the event, and without into the reply replaces it", async () => {
  const { processor, sent } = requestProcessor(`{connector: local, subject: svc}`);
  const out = processor.process({ a: [1, 2] }, meta) as Promise<unknown>;
  assert.deepEqual(sent[0]!.body, { a: [1, 2] });
  assert.equal(sent[0]!.options.timeoutMs, 1000);
  sent[0]!.reply.resolve(json([true]));
  assert.deepEqual(await out, [true]);
});

Deno.test("request answers from its cache until the ttl passes, then asks again", async () => {
  const { processor, sent, clock } = requestProcessor(
    `{connector: local, subject: "reg.{id}", into: r, cache: {ttl: 5s}}`,
  );
  const first = processor.process({ id: 1 }, meta) as Promise<unknown>;
  sent[0]!.reply.resolve(json("one"));
  assert.deepEqual(await first, { id: 1, r: "one" });

  clock.now += 4_999;
  // A hit needs no round trip: the result is there at once, not a promise.
  assert.deepEqual(processor.process({ id: 1 }, meta), { id: 1, r: "one" });
  assert.equal(sent.length, 1);
  // Another body is another key.
  const other = processor.process({ id: 2 }, meta) as Promise<unknown>;
  assert.equal(sent.length, 2);
  sent[1]!.reply.resolve(json("two"));
  await other;

  clock.now += 1;
  const again = processor.process({ id: 1 }, meta) as Promise<unknown>;
  assert.equal(sent.length, 3, "expired: asked again");
  sent[2]!.reply.resolve(json("one again"));
  assert.deepEqual(await again, { id: 1, r: "one again" });
  const { counters: c, gauges: g } = processor.stats!();
  assert.deepEqual([c.requests, c.replies, c.cache_hits, c.cache_misses, g?.cache_entries], [
    3,
    3,
    1,
    3,
    2,
  ]);
});

Deno.test("request keeps at most max_entries replies, forgetting the oldest", async () => {
  const { processor, sent, counters } = requestProcessor(
    `{connector: local, subject: "reg.{id}", into: r, cache: {ttl: 1h, max_entries: 2}}`,
  );
  for (const id of [1, 2, 3]) {
    const p = processor.process({ id }, meta) as Promise<unknown>;
    sent.at(-1)!.reply.resolve(json(id));
    await p;
  }
  assert.equal(processor.keys!(), 2);
  assert.equal(counters.evicted, 1);
  assert.deepEqual(processor.process({ id: 3 }, meta), { id: 3, r: 3 });
  assert.ok(processor.process({ id: 1 }, meta) instanceof Promise, "1 was forgotten");
});

Deno.test("request joins identical requests in flight and shares the outcome", async () => {
  const { processor, sent } = requestProcessor(
    `{connector: local, subject: "reg.{id}", into: r, cache: {ttl: 1m}}`,
  );
  const a = processor.process({ id: 1, n: "a" }, meta) as Promise<unknown>;
  const b = processor.process({ id: 1, n: "b" }, meta) as Promise<unknown>;
  assert.equal(sent.length, 2, "different events make different bodies");
  const c = processor.process({ id: 1, n: "a" }, meta) as Promise<unknown>;
  assert.equal(sent.length, 2, "the identical one joined the first");
  sent[0]!.reply.resolve(json("x"));
  sent[1]!.reply.reject(new RequestError("timeout", 'timeout after 1000ms on "reg.1"'));
  assert.deepEqual(await a, { id: 1, n: "a", r: "x" });
  assert.deepEqual(await c, { id: 1, n: "a", r: "x" });
  await assert.rejects(b, /timeout after 1000ms/);
  // A failure is not cached: the next identical event asks again.
  const again = processor.process({ id: 1, n: "b" }, meta);
  assert.ok(again instanceof Promise);
  assert.equal(sent.length, 3);
  sent[2]!.reply.resolve(json("y"));
  await again;
  assert.equal(processor.stats!().counters.coalesced, 1);
});

Deno.test("request refuses an event over max_in_flight without sending it", async () => {
  const { processor, sent } = requestProcessor(
    `{connector: local, subject: svc, max_in_flight: 2}`,
  );
  const a = processor.process({ n: 1 }, meta) as Promise<unknown>;
  const b = processor.process({ n: 2 }, meta) as Promise<unknown>;
  await assert.rejects(
    processor.process({ n: 3 }, meta) as Promise<unknown>,
    (e: unknown) =>
      e instanceof RequestError && e.code === "overloaded" &&
      e.message === "too many requests in flight (max_in_flight 2)",
  );
  assert.equal(sent.length, 2);
  sent[0]!.reply.resolve(json(1));
  await a;
  const d = processor.process({ n: 4 }, meta) as Promise<unknown>;
  assert.equal(sent.length, 3, "room again once a reply came");
  sent[1]!.reply.resolve(json(2));
  sent[2]!.reply.resolve(json(4));
  await Promise.all([b, d]);
  assert.equal(processor.stats!().counters.overloaded, 1);
});

Deno.test("request fails an event whose reply is not JSON, and counts each failure kind", async () => {
  const { processor, sent } = requestProcessor(`{connector: local, subject: "reg.{id}"}`);
  const bad = processor.process({ id: 1 }, meta) as Promise<unknown>;
  sent[0]!.reply.resolve({ data: enc.encode("<html>") });
  await assert.rejects(bad, /^RequestError: reply from "reg\.1" is not JSON: malformed JSON/);
  for (const code of ["timeout", "no_responders", "error_reply"] as const) {
    const p = processor.process({ id: 2 }, meta) as Promise<unknown>;
    sent.at(-1)!.reply.reject(new RequestError(code, code));
    await assert.rejects(p);
  }
  const s = processor.stats!();
  assert.deepEqual(
    [s.counters.requests, s.counters.errors, s.counters.timeouts, s.counters.no_responders],
    [4, 4, 1, 1],
  );
  assert.equal(s.counters.error_replies, 1);
  assert.equal(s.gauges?.in_flight, 0);
  // Latency is observed for every answer that came (the non-JSON one and the error reply).
  const latency = s.histograms.latency_seconds!;
  assert.equal(latency.count, 2);
  assert.equal(latency.counts.length, latency.bounds.length);
  assert.equal(latency.counts.at(-1), 2, "the last bucket (10 s) holds both");
});

Deno.test("request fails an event whose subject cannot be rendered, before sending", () => {
  const { processor, sent } = requestProcessor(`{connector: local, subject: "reg.{id}", into: r}`);
  assert.throws(
    () => processor.process({ name: "x" }, meta),
    /subject: template value \{id\} is missing/,
  );
  assert.throws(() => processor.process([1], meta), /the event is not a JSON object/);
  assert.equal(sent.length, 0);
});

Deno.test("request fails an event whose body cannot be evaluated, before sending", () => {
  const { processor, sent } = requestProcessor(
    `{connector: local, subject: svc, body: '{"id": sensor}', into: r}`,
  );
  assert.throws(() => processor.process({ name: "x" }, meta), /sensor/);
  assert.equal(sent.length, 0);
});
