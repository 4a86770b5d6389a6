/**
 * `throttle`: token buckets per key; unit tests on a fake clock, the rate field, and one run
 * through the CLI with a real nats-server.
 */
import assert from "node:assert/strict";
import { DROP } from "../src/processors/types.ts";
import { parseRate } from "../src/processors/_fields.ts";
import { create, FakeClock, meta, problems } from "./_processors.ts";
import { client, collect, connector, startSluice } from "./_processors_e2e.ts";
import { configDir } from "../dev/config_dir.ts";
import { NatsServer } from "../dev/nats_server.ts";

Deno.test("throttle passes a burst of N, then drops until the bucket refills", () => {
  const clock = new FakeClock(5_000_000);
  const { processor, counters } = create({ throttle: { rate: "10/s" } }, clock);
  const pass = () => processor.process({}, meta()) !== DROP;
  const burst = Array.from({ length: 15 }, pass);
  assert.deepEqual(burst, [...Array(10).fill(true), ...Array(5).fill(false)]);
  clock.advance(99);
  assert.equal(pass(), false, "not yet a whole token after 99 ms");
  clock.advance(1);
  assert.equal(pass(), true, "one token after 100 ms (10/s refills continuously)");
  assert.equal(pass(), false);
  clock.advance(250);
  assert.deepEqual([pass(), pass(), pass()], [true, true, false], "2.5 tokens: two pass");
  clock.advance(60_000);
  const after = Array.from({ length: 12 }, pass);
  assert.equal(after.filter(Boolean).length, 10, "a long pause refills only up to N");
  assert.equal(counters.evicted, 0);
});

Deno.test("throttle with a longer period: 100/1m passes 100 at once, then one per 600 ms", () => {
  const clock = new FakeClock(0);
  const { processor } = create({ throttle: { rate: "100/1m" } }, clock);
  const pass = () => processor.process({}, meta()) !== DROP;
  assert.equal(Array.from({ length: 150 }, pass).filter(Boolean).length, 100);
  clock.advance(599);
  assert.equal(pass(), false);
  clock.advance(1);
  assert.equal(pass(), true);
});

Deno.test("throttle keeps one budget per key", () => {
  const { processor } = create({ throttle: { key: "id", rate: "2/1h" } });
  const pass = (id: string) => processor.process({ id }, meta()) !== DROP;
  assert.deepEqual(["a", "a", "a", "b", "b", "b", "a"].map(pass), [
    true,
    true,
    false,
    true,
    true,
    false,
    false,
  ]);
  assert.equal(processor.keys?.(), 2);
});

Deno.test("throttle forgets the least recently seen key beyond max_keys; it starts with a full budget", () => {
  const { processor, counters } = create({ throttle: { key: "id", rate: "1/1h", max_keys: 2 } });
  const pass = (id: string) => processor.process({ id }, meta()) !== DROP;
  assert.deepEqual(["a", "b", "a", "c"].map(pass), [true, true, false, true]);
  assert.equal(counters.evicted, 1, "b, the least recently seen, was forgotten");
  assert.equal(pass("a"), false, "a was kept, with its empty bucket");
  assert.equal(pass("b"), true, "b starts again");
  assert.equal(counters.evicted, 2);
  assert.equal(processor.keys?.(), 2);
});

Deno.test("parseRate() reads N/duration with a bare unit meaning one of it", () => {
  assert.deepEqual(parseRate("10/s"), { count: 10, periodMs: 1_000 });
  assert.deepEqual(parseRate("100/1m"), { count: 100, periodMs: 60_000 });
  assert.deepEqual(parseRate("5/250ms"), { count: 5, periodMs: 250 });
  assert.deepEqual(parseRate("1/1.5s"), { count: 1, periodMs: 1_500 });
  assert.deepEqual(parseRate("3/h"), { count: 3, periodMs: 3_600_000 });
});

Deno.test("parseRate() says what is wrong with a bad rate", () => {
  const cases: [string, RegExp][] = [
    ["0/s", /"0\/s": the number of events must be a whole number of at least 1/],
    ["ten/s", /"ten\/s": expected N\/duration, e.g. 10\/s/],
    ["1.5/s", /"1.5\/s": expected N\/duration/],
    ["-1/s", /expected N\/duration/],
    ["10/0s", /"10\/0s": the duration must be more than 0/],
    ["10", /"10": expected N\/duration/],
    ["10/5", /"10\/5": "5" is not a duration/],
    ["10/", /"10\/": "" is not a duration/],
    ["10/sec", /"sec" is not a duration/],
  ];
  for (const [text, message] of cases) {
    const got = parseRate(text);
    assert.equal(typeof got, "string", text);
    assert.match(got as string, message);
  }
});

Deno.test("throttle check: a bad rate, a missing rate and a bad key are refused", () => {
  assert.match(problems({ throttle: { rate: "0/s" } })[0]!, /^rate: invalid rate "0\/s"/);
  assert.match(problems({ throttle: {} })[0]!, /^rate: /);
  assert.match(problems({ throttle: { rate: 10 } })[0]!, /^rate: /);
  assert.match(problems({ throttle: { rate: "1/s", key: "a +" } })[0]!, /^key: invalid expression/);
  assert.match(problems({ throttle: { rate: "1/s", max_keys: -1 } })[0]!, /^max_keys: /);
  assert.deepEqual(problems({ throttle: { rate: "1/s", key: "id" } }), []);
});

Deno.test("sluice run: throttle passes at most N per key; the rest are counted as dropped", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connector(server.url) + `
pipelines:
  limited:
    source: { connector: local, subject: devices.> }
    processors:
      - throttle: { key: _subject, rate: 3/1h }
    sinks: [{ connector: local, subject: "out.{_tokens[1]}" }]
`,
  );
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const out = collect(nc, "out.>");
  await nc.flush();
  for (let i = 0; i < 5; i++) nc.publish("devices.a", JSON.stringify({ i }));
  for (let i = 0; i < 5; i++) nc.publish("devices.b", JSON.stringify({ i }));
  await nc.flush();
  assert.equal((await sluice.stop()).code, 0);
  const summary = await sluice.waitForMsg("pipeline summary");
  assert.deepEqual([summary.in, summary.passed, summary.filtered], [10, 6, 4]);
  await out.waitForCount(6, 10_000, "six events");
  const seen = out.items.map((m) => `${m.subject}:${m.json<{ i: number }>().i}`);
  assert.deepEqual(seen.sort(), ["out.a:0", "out.a:1", "out.a:2", "out.b:0", "out.b:1", "out.b:2"]);
});
