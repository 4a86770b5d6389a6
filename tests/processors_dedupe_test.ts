/**
 * `dedupe`: report by exception, unit tests against the processor API, then end to end through
 * the CLI with a real nats-server (dead letter naming the processor).
 */
import assert from "node:assert/strict";
import { DROP } from "../src/processors/types.ts";
import { create, FakeClock, meta, problems } from "./_processors.ts";
import { client, collect, connector, startSluice } from "./_processors_e2e.ts";
import { configDir } from "../dev/config_dir.ts";
import { NatsServer } from "../dev/nats_server.ts";

/** Which of `events` pass, as their indexes. */
function passing(
  entry: Record<string, unknown>,
  events: unknown[],
  clock = new FakeClock(0),
): number[] {
  const { processor } = create(entry, clock);
  const out: number[] = [];
  events.forEach((e, i) => {
    if (processor.process(e, meta()) !== DROP) out.push(i);
  });
  return out;
}

Deno.test("dedupe forwards the first event, then only events whose value changed", () => {
  const events = [20, 20, 21, 21, 20, 20].map((t) => ({ t, n: Math.random() }));
  assert.deepEqual(passing({ dedupe: { value: "t" } }, events), [0, 2, 4]);
});

Deno.test("dedupe compares non-numeric values: strings, bools, maps regardless of key order, lists", () => {
  const events = [
    { s: "open" },
    { s: "open" },
    { s: "closed" },
    { s: true },
    { s: true },
    { s: { a: 1, b: [1, 2] } },
    { s: { b: [1, 2], a: 1 } },
    { s: { b: [2, 1], a: 1 } },
    { s: "21" },
    { s: 21 },
    { s: null },
    { s: null },
  ];
  assert.deepEqual(passing({ dedupe: { value: "s" } }, events), [0, 2, 3, 5, 7, 8, 9, 10]);
});

Deno.test("dedupe without value compares whole events; the event passes unchanged", () => {
  const { processor } = create({ dedupe: {} });
  const a = { t: 1, site: "x" };
  assert.equal(processor.process(a, meta()), a);
  assert.equal(processor.process({ site: "x", t: 1 }, meta()), DROP);
  assert.notEqual(processor.process({ site: "x", t: 2 }, meta()), DROP);
});

Deno.test("dedupe takes a whole number from CEL (21) as equal to the double 21.0", () => {
  // `int(i)` gives a CEL int (a bigint); `d` is a JSON number, a double.
  const value = "has(event.i) ? dyn(int(i)) : dyn(d)";
  const events = [{ i: 21 }, { d: 21.0 }, { d: 21.5 }, { i: 21 }];
  assert.deepEqual(passing({ dedupe: { value } }, events), [0, 2, 3]);
  assert.deepEqual(passing({ dedupe: { value, deadband: 0.5 } }, events), [0, 2, 3]);
  assert.deepEqual(
    passing({ dedupe: { key: "int(k)", value: "v" } }, [
      { k: 21, v: 1 },
      { k: 21.0, v: 1 },
    ]),
    [0],
  );
});

Deno.test("dedupe with a deadband: a move equal to the deadband forwards, a smaller one does not", () => {
  const events = [20.0, 20.4, 20.5, 20.9, 20.01, 21.0, 20.5].map((t) => ({ t }));
  assert.deepEqual(passing({ dedupe: { value: "t", deadband: 0.5 } }, events), [0, 2, 5, 6]);
});

Deno.test("dedupe's deadband boundary survives floating-point rounding (20.3 - 20.1 >= 0.2)", () => {
  assert.ok(20.3 - 20.1 < 0.2, "the premise: plain subtraction falls short");
  const events = [{ t: 20.1 }, { t: 20.3 }, { t: 1000.1 }, { t: 1000.3 }, { t: 1000.49 }];
  assert.deepEqual(passing({ dedupe: { value: "t", deadband: 0.2 } }, events), [0, 1, 2, 3]);
});

Deno.test("dedupe compares with the last forwarded value, so a slow drift is reported", () => {
  const events = [20.0, 20.3, 20.6, 20.9, 21.2].map((t) => ({ t }));
  assert.deepEqual(passing({ dedupe: { value: "t", deadband: 0.5 } }, events), [0, 2, 4]);
});

Deno.test("dedupe keeps one last value per key", () => {
  const events = [
    { id: "a", t: 1 },
    { id: "b", t: 1 },
    { id: "a", t: 1 },
    { id: "b", t: 2 },
    { id: "a", t: 2 },
    { id: "b", t: 2 },
  ];
  assert.deepEqual(passing({ dedupe: { key: "id", value: "t" } }, events), [0, 1, 3, 4]);
});

Deno.test("dedupe forwards an unchanged value as a heartbeat when its key was quiet that long", () => {
  const clock = new FakeClock(1_000_000);
  const { processor } = create(
    { dedupe: { key: "id", value: "t", heartbeat: "10s" } },
    clock,
  );
  const at = (ms: number, e: unknown) => {
    clock.advanceTo(1_000_000 + ms);
    return processor.process(e, meta()) !== DROP;
  };
  assert.equal(at(0, { id: "a", t: 1 }), true);
  assert.equal(at(5_000, { id: "a", t: 1 }), false);
  assert.equal(at(9_999, { id: "a", t: 1 }), false);
  assert.equal(at(9_999, { id: "b", t: 1 }), true, "another key has its own heartbeat");
  assert.equal(at(10_000, { id: "a", t: 1 }), true, "10s after the last forward");
  assert.equal(at(15_000, { id: "a", t: 2 }), true, "a change forwards and restarts the wait");
  assert.equal(at(24_999, { id: "a", t: 2 }), false);
  assert.equal(at(25_000, { id: "a", t: 2 }), true);
});

Deno.test("dedupe forgets the least recently seen key beyond max_keys and counts it", () => {
  const { processor, counters } = create({ dedupe: { key: "id", value: "t", max_keys: 2 } });
  const pass = (id: string) => processor.process({ id, t: 1 }, meta()) !== DROP;
  assert.equal(pass("a"), true);
  assert.equal(pass("b"), true);
  assert.equal(pass("a"), false, "a is now more recently seen than b");
  assert.equal(pass("c"), true);
  assert.equal(counters.evicted, 1);
  assert.equal(processor.keys?.(), 2);
  assert.equal(pass("a"), false, "a was kept");
  assert.equal(pass("b"), true, "b was forgotten: its next event is a first one");
  assert.equal(counters.evicted, 2);
});

Deno.test("dedupe with a deadband fails on a value that is not a number, keeping its state", () => {
  const { processor } = create({ dedupe: { value: "t", deadband: 1 } });
  assert.notEqual(processor.process({ t: 10 }, meta()), DROP);
  assert.throws(
    () => processor.process({ t: "hot" }, meta()),
    (e: unknown) => {
      assert.ok(e instanceof TypeError);
      assert.equal(
        e.message,
        'value must be a number for the deadband, got string "hot" from "t"',
      );
      return true;
    },
  );
  assert.equal(processor.process({ t: 10.5 }, meta()), DROP, "still compared with 10");
});

Deno.test("dedupe check: a deadband needs a value that can be a number", () => {
  assert.deepEqual(problems({ dedupe: { value: '"x" + s', deadband: 1 } }), [
    "value: a deadband needs a number, but this expression gives string: make it numeric or " +
    "remove the deadband",
  ]);
  assert.match(problems({ dedupe: { value: "t > 3", deadband: 1 } })[0]!, /gives bool/);
  assert.match(problems({ dedupe: { deadband: 1 } })[0]!, /^deadband: .*without `value`/);
  assert.deepEqual(problems({ dedupe: { value: "double(t)", deadband: 1 } }), []);
  assert.deepEqual(problems({ dedupe: { value: "t", deadband: 1 } }), []);
});

Deno.test("dedupe check: bad settings are refused with a message each", () => {
  assert.match(problems({ dedupe: { heartbeat: "10" } })[0]!, /^heartbeat: invalid duration "10"/);
  assert.match(
    problems({ dedupe: { heartbeat: "0s" } })[0]!,
    /^heartbeat: expected a duration more than 0/,
  );
  assert.match(
    problems({ dedupe: { deadband: 0 } })[0]!,
    /^deadband: expected a number more than 0/,
  );
  assert.match(problems({ dedupe: { value: "t", deadband: "1" } })[0]!, /^deadband: /);
  assert.match(problems({ dedupe: { max_keys: 0 } })[0]!, /^max_keys: expected at least 1/);
  assert.match(problems({ dedupe: { key: "a +" } })[0]!, /^key: invalid expression/);
  assert.match(problems({ dedupe: { valu: "t" } })[0]!, /valu/);
});

Deno.test("sluice run: dedupe reports by exception; a bad value goes to the dead letter naming it", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connector(server.url) + `
pipelines:
  by-exception:
    source: { connector: local, subject: sensors.> }
    processors:
      - map: { sensor: "_tokens[1]" }
      - dedupe: { key: sensor, value: temperature, deadband: 0.5 }
    sinks: [{ connector: local, subject: "out.{sensor}" }]
    dead_letter: { connector: local, subject: dlq.by-exception }
`,
  );
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const out = collect(nc, "out.>");
  const dlq = collect(nc, "dlq.>");
  await nc.flush();
  const sent: [string, string][] = [
    ["sensors.a", '{"temperature":20}'],
    ["sensors.b", '{"temperature":20}'],
    ["sensors.a", '{"temperature":20.4}'],
    ["sensors.a", '{"temperature":"hot"}'],
    ["sensors.a", '{"temperature":20.5}'],
    ["sensors.b", '{"temperature":19.6}'],
    ["sensors.b", '{"temperature":19.5}'],
  ];
  for (const [subject, data] of sent) nc.publish(subject, data);
  const bad = await dlq.waitForCount(1, 10_000, "the dead letter");
  assert.equal(
    bad[0]!.headers?.get("Sluice-Error"),
    'processors[1] dedupe: value must be a number for the deadband, got string "hot" from "temperature"',
  );
  assert.equal(bad[0]!.string(), '{"temperature":"hot"}');
  const got = await out.waitForCount(4, 10_000, "four forwarded events");
  assert.deepEqual(got.map((m) => [m.subject, m.json<{ temperature: number }>().temperature]), [
    ["out.a", 20],
    ["out.b", 20],
    ["out.a", 20.5],
    ["out.b", 19.5],
  ]);
  assert.equal((await sluice.stop()).code, 0);
  const summary = await sluice.waitForMsg("pipeline summary");
  assert.deepEqual([summary.in, summary.passed, summary.filtered, summary.dead_lettered], [
    7,
    4,
    2,
    1,
  ]);
});
