/**
 * `window`: unit tests on a fake clock (alignment, aggregates, hopping windows, the timer,
 * partial windows, carry-over, eviction, errors), one on the real clock, and runs through the
 * CLI with a real nats-server: a window closed by the clock and partial windows on SIGTERM.
 */
import assert from "node:assert/strict";
import { DROP } from "../src/processors/types.ts";
import { create, type Emitted, FakeClock, meta, problems, started } from "./_processors.ts";
import { client, collect, connector, startSluice } from "./_processors_e2e.ts";
import { configDir } from "../dev/config_dir.ts";
import { NatsServer } from "../dev/nats_server.ts";
import { Deferred } from "../dev/wait.ts";
import { builtinProcessors } from "../src/processors/mod.ts";
import { compileChain } from "../src/processors/chain.ts";
import { newProcessorCounters } from "../src/processors/types.ts";

const MINUTE = 60_000;
/** 2026-11-30T10:00:00Z plus 12.345 s: not on a window boundary. */
const T0 = Date.UTC(2026, 10, 30, 10, 0, 12, 345);

const ALL_OPS = {
  n: { count: true },
  total: { sum: "t" },
  mean: { avg: "t" },
  low: { min: "t" },
  high: { max: "t" },
  opened: { first: "label" },
  closed: { last: "label" },
};

Deno.test("window aggregates per key over windows aligned to multiples of size, emitted at the end", () => {
  const clock = new FakeClock(T0);
  const { processor } = create(
    { window: { key: "id", size: "1m", aggregates: ALL_OPS } },
    clock,
  );
  const out = started(processor);
  const send = (e: unknown, subject = "sensors.a") => processor.process(e, meta(subject));
  assert.equal(send({ id: "a", t: 3, label: "x" }), DROP, "absorbed");
  clock.advance(1_000);
  send({ id: "b", t: 100, label: "only" }, "sensors.b");
  send({ id: "a", t: 1.5, label: "y" }, "sensors.a.late");
  send({ id: "a", t: 10, label: "z" }, "sensors.a.last");
  assert.equal(out.length, 0);
  assert.equal(processor.keys?.(), 2);
  const start = Date.UTC(2026, 10, 30, 10, 0, 0);
  clock.advanceTo(start + MINUTE - 1);
  assert.equal(out.length, 0, "not before the window ends");
  clock.advanceTo(start + MINUTE);
  out.sort((x, y) => String(x.event.key).localeCompare(String(y.event.key)));
  assert.deepEqual(out.map((o) => o.event), [
    {
      key: "a",
      window_start: start,
      window_end: start + MINUTE,
      n: 3,
      total: 14.5,
      mean: 14.5 / 3,
      low: 1.5,
      high: 10,
      opened: "x",
      closed: "z",
    },
    {
      key: "b",
      window_start: start,
      window_end: start + MINUTE,
      n: 1,
      total: 100,
      mean: 100,
      low: 100,
      high: 100,
      opened: "only",
      closed: "only",
    },
  ]);
  assert.equal(out[0]!.meta.subject, "sensors.a.last", "the meta of the last event absorbed");
  assert.equal(out[1]!.meta.subject, "sensors.b");
  assert.equal(processor.keys?.(), 0, "closed windows are forgotten");
  assert.equal(clock.pending, 0, "no timer while no window is open");
});

Deno.test("window without a key has one window for all events, key null; CEL ints sum as numbers", () => {
  const clock = new FakeClock(T0);
  const { processor } = create(
    { window: { size: "10s", aggregates: { n: { count: true }, s: { sum: "int(t)" } } } },
    clock,
  );
  const out = started(processor);
  processor.process({ t: 2 }, meta());
  processor.process({ t: 3 }, meta());
  clock.advance(10_000);
  assert.deepEqual(out.map((o) => o.event), [
    { key: null, window_start: T0 - 2_345, window_end: T0 + 7_655, n: 2, s: 5 },
  ]);
});

Deno.test("window sets dotted aggregate names as nested fields", () => {
  const clock = new FakeClock(0);
  const { processor } = create(
    { window: { size: "1s", aggregates: { "t.avg": { avg: "t" }, "t.max": { max: "t" } } } },
    clock,
  );
  const out = started(processor);
  processor.process({ t: 1 }, meta());
  processor.process({ t: 3 }, meta());
  clock.advance(1_000);
  assert.deepEqual(out[0]!.event.t, { avg: 2, max: 3 });
});

Deno.test("window is emitted by its timer when no further event arrives", () => {
  const clock = new FakeClock(T0);
  const { processor } = create(
    { window: { size: "5s", aggregates: { n: { count: true } } } },
    clock,
  );
  const out = started(processor);
  assert.equal(clock.pending, 0);
  processor.process({}, meta());
  assert.equal(clock.pending, 1, "one timer, for the window's end");
  processor.process({}, meta());
  assert.equal(clock.pending, 1, "still one timer");
  clock.advance(5_000);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.event.n, 2);
  assert.equal(clock.pending, 0);
});

Deno.test("window: hopping windows start every `every` and each holds the events of its span", () => {
  const base = 1_000 * MINUTE; // a multiple of 30 s
  const clock = new FakeClock(base);
  const { processor } = create(
    {
      window: {
        size: "30s",
        every: "10s",
        aggregates: { n: { count: true }, ids: { last: "id" }, first: { first: "id" } },
      },
    },
    clock,
  );
  const out = started(processor);
  clock.advanceTo(base + 5_000);
  processor.process({ id: 1 }, meta());
  clock.advanceTo(base + 15_000);
  processor.process({ id: 2 }, meta());
  clock.advanceTo(base + 25_000);
  processor.process({ id: 3 }, meta());
  clock.advanceTo(base + 120_000);
  const rel = (o: Emitted) => [
    (o.event.window_start as number) - base,
    (o.event.window_end as number) - base,
    o.event.n,
    o.event.first,
    o.event.ids,
  ];
  assert.deepEqual(out.map(rel), [
    [-20_000, 10_000, 1, 1, 1],
    [-10_000, 20_000, 2, 1, 2],
    [0, 30_000, 3, 1, 3],
    [10_000, 40_000, 2, 2, 3],
    [20_000, 50_000, 1, 3, 3],
  ]);
  assert.equal(processor.keys?.(), 0);
});

Deno.test("window emits windows that ended while the timer lagged before counting a new event", () => {
  /** A clock whose timers never fire, like a timer behind a busy event loop. */
  class StuckClock extends FakeClock {
    override setTimer = (): () => void => () => {};
  }
  const clock = new StuckClock(0);
  const { processor } = create(
    { window: { size: "1s", aggregates: { n: { count: true } } } },
    clock,
  );
  const out = started(processor);
  processor.process({}, meta());
  clock.t = 1_500; // the timer never fired
  processor.process({}, meta());
  assert.deepEqual(out.map((o) => [o.event.window_end, o.event.n]), [[1_000, 1]]);
});

Deno.test("window: a graceful stop emits open windows as partial; the state is gone", () => {
  const clock = new FakeClock(T0);
  const { processor } = create(
    { window: { key: "id", size: "1m", every: "20s", aggregates: { n: { count: true } } } },
    clock,
  );
  const out = started(processor);
  processor.process({ id: "a" }, meta("s.a"));
  clock.advance(20_000); // T0 + 20s: the window ending at 10:00:20 closed
  processor.process({ id: "a" }, meta("s.a2"));
  processor.process({ id: "b" }, meta("s.b"));
  assert.equal(out.length, 1);
  processor.stop?.(true);
  const start = Date.UTC(2026, 10, 30, 10, 0, 20);
  assert.deepEqual(out.slice(1).map((o) => o.event), [
    { key: "a", window_start: start - 40_000, window_end: start + 20_000, n: 2, partial: true },
    { key: "b", window_start: start - 40_000, window_end: start + 20_000, n: 1, partial: true },
  ]);
  assert.equal(out[1]!.meta.subject, "s.a2");
  assert.equal(processor.keys?.(), 0);
  assert.equal(clock.pending, 0, "the timer is cleared");
});

Deno.test("window: a stop without flush keeps open windows for the replacement's start", () => {
  const clock = new FakeClock(T0);
  const { processor } = create(
    { window: { size: "1m", aggregates: { n: { count: true } } } },
    clock,
  );
  const first = started(processor);
  processor.process({}, meta());
  processor.stop?.(false);
  assert.equal(first.length, 0);
  assert.equal(clock.pending, 0, "the timer is cleared");
  assert.equal(processor.keys?.(), 1);
  const second = started(processor);
  processor.process({}, meta());
  clock.advance(MINUTE);
  assert.equal(second.length, 1);
  assert.equal(second[0]!.event.n, 2, "the events before and after the reload");
});

Deno.test("window: windows that ended while stopped are emitted complete on the next start", () => {
  const clock = new FakeClock(T0);
  const { processor } = create(
    { window: { size: "1m", aggregates: { n: { count: true } } } },
    clock,
  );
  started(processor);
  processor.process({}, meta());
  processor.stop?.(false);
  clock.advance(2 * MINUTE);
  const out = started(processor);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.event.partial, undefined);
  assert.equal(out[0]!.event.n, 1);
});

Deno.test("window forgets the least recently seen key beyond max_keys and counts it", () => {
  const clock = new FakeClock(0);
  const { processor, counters } = create(
    { window: { key: "id", size: "1m", max_keys: 2, aggregates: { n: { count: true } } } },
    clock,
  );
  const out = started(processor);
  for (const id of ["a", "b", "a", "c", "b"]) processor.process({ id }, meta());
  assert.equal(counters.evicted, 2, "b, then a");
  assert.equal(processor.keys?.(), 2);
  clock.advance(MINUTE);
  assert.deepEqual(out.map((o) => [o.event.key, o.event.n]), [["c", 1], ["b", 1]]);
});

Deno.test("window fails on a non-numeric value for sum/avg/min/max, and the event leaves no trace", () => {
  const clock = new FakeClock(0);
  const { processor } = create(
    { window: { size: "1s", aggregates: { n: { count: true }, m: { max: "t" } } } },
    clock,
  );
  const out = started(processor);
  processor.process({ t: 1 }, meta());
  assert.throws(
    () => processor.process({ t: "hot" }, meta()),
    /^TypeError: aggregates\.m: max needs a number, got string "hot" from "t"$/,
  );
  assert.throws(() => processor.process({}, meta()), /aggregates|t/);
  clock.advance(1_000);
  assert.deepEqual(out.map((o) => [o.event.n, o.event.m]), [[1, 1]]);
});

Deno.test("window on the real clock: a 200 ms window is emitted without further events", async () => {
  const chain = compileChain(builtinProcessors(), undefined, [
    { window: { size: "200ms", aggregates: { n: { count: true } } } },
  ], {});
  const processor = chain.processors[0]!.factory.create({
    counters: newProcessorCounters(),
    now: Date.now,
  });
  const emitted = new Deferred<unknown>();
  processor.start?.((event) => emitted.resolve(event));
  processor.process({}, meta());
  const event = await emitted.wait(5_000, "the window's event") as Record<string, number>;
  assert.equal(event.n, 1);
  assert.equal(event.window_end! - event.window_start!, 200);
  assert.equal(event.window_start! % 200, 0);
  processor.stop?.(false);
});

Deno.test("window check: sizes, every, ops, reserved names and non-numeric expressions", () => {
  const agg = { n: { count: true } };
  assert.match(
    problems({ window: { size: "0s", aggregates: agg } })[0]!,
    /^size: expected a duration more than 0/,
  );
  assert.match(
    problems({ window: { size: "1 m", aggregates: agg } })[0]!,
    /^size: invalid duration "1 m"/,
  );
  assert.match(problems({ window: { aggregates: agg } })[0]!, /^size: /);
  assert.deepEqual(problems({ window: { size: "1m", every: "7s", aggregates: agg } }), [
    "every: size 1m is not a whole multiple of every 7s: choose an every that divides the size " +
    "(each event is then in size/every windows)",
  ]);
  assert.match(problems({ window: { size: "1m", every: "2m", aggregates: agg } })[0]!, /^every: /);
  assert.match(
    problems({ window: { size: "1h", every: "1s", aggregates: agg } })[0]!,
    /^every: size\/every is 3600, more than 1000/,
  );
  assert.deepEqual(problems({ window: { size: "1m", every: "15s", aggregates: agg } }), []);
  assert.match(
    problems({ window: { size: "1m", aggregates: {} } })[0]!,
    /^aggregates: expected at least one/,
  );
  assert.match(
    problems({ window: { size: "1m", aggregates: { x: { mean: "t" } } } })[0]!,
    /^aggregates\.x: /,
  );
  assert.match(
    problems({ window: { size: "1m", aggregates: { x: { sum: "t", max: "t" } } } })[0]!,
    /^aggregates\.x: expected exactly one operation/,
  );
  assert.match(
    problems({ window: { size: "1m", aggregates: { x: { count: 1 } } } })[0]!,
    /^aggregates\.x\.count: /,
  );
  assert.deepEqual(
    problems({ window: { size: "1m", aggregates: { window_end: { count: true } } } }),
    [
      'aggregates.window_end: "window_end" is set by the window itself (key, window_start, ' +
      "window_end, partial): choose another name",
    ],
  );
  assert.deepEqual(problems({ window: { size: "1m", aggregates: { s: { avg: "string(t)" } } } }), [
    "aggregates.s.avg: avg needs a number, but this expression gives string: make it numeric, " +
    "or use first/last",
  ]);
  assert.deepEqual(
    problems({ window: { size: "1m", aggregates: { s: { last: "string(t)" } } } }),
    [],
  );
  assert.match(
    problems({ window: { size: "1m", aggregates: { s: { min: "t +" } } } })[0]!,
    /^aggregates\.s\.min: invalid expression/,
  );
});

Deno.test("sluice run: a window closed by the clock is emitted with no further events", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connector(server.url) + `
pipelines:
  averages:
    source: { connector: local, subject: meters.> }
    processors:
      - window:
          key: _tokens[1]
          size: 1s
          aggregates:
            kwh_avg: { avg: kwh }
            readings: { count: true }
    sinks: [{ connector: local, subject: "avg.{key}" }]
`,
  );
  await using _sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const out = collect(nc, "avg.>");
  await nc.flush();
  nc.publish("meters.site1", '{"kwh":2}');
  nc.publish("meters.site1", '{"kwh":4}');
  nc.publish("meters.site2", '{"kwh":1}');
  await nc.flush();
  // The events may straddle a window boundary: wait until every reading is accounted for.
  const total = (site: string) =>
    out.items.filter((m) => m.subject === `avg.${site}`).reduce(
      (n, m) => n + m.json<{ readings: number }>().readings,
      0,
    );
  await out.waitFor(() => total("site1") === 2 && total("site2") === 1, 10_000, "the windows");
  for (const m of out.items) {
    const w = m.json<Record<string, number>>();
    assert.equal(w.window_end! - w.window_start!, 1_000);
    assert.equal(w.window_start! % 1_000, 0, "aligned to whole seconds");
    assert.equal(w.partial, undefined);
  }
  if (out.items.length === 2) {
    assert.deepEqual(out.items.map((m) => m.json<{ kwh_avg: number }>().kwh_avg).sort(), [1, 3]);
  }
});

Deno.test("sluice run: SIGTERM emits the open windows marked partial", async () => {
  await using server = await NatsServer.start();
  await using cfg = await configDir(
    connector(server.url) + `
pipelines:
  hourly:
    source: { connector: local, subject: meters.> }
    processors:
      - window:
          key: _tokens[1]
          size: 1h
          aggregates: { kwh_sum: { sum: kwh }, readings: { count: true } }
    sinks: [{ connector: local, subject: "hourly.{_tokens[1]}" }]
`,
  );
  await using sluice = await startSluice(cfg.file);
  await using nc = await client(server);
  const out = collect(nc, "hourly.>");
  await nc.flush();
  nc.publish("meters.site1", '{"kwh":2}');
  nc.publish("meters.site1", '{"kwh":4.5}');
  nc.publish("meters.site2", '{"kwh":1}');
  await nc.flush();
  assert.equal((await sluice.stop()).code, 0);
  const got = await out.waitForCount(2, 10_000, "two partial windows");
  const events = got.map((m) => [m.subject, m.json<Record<string, unknown>>()] as const)
    .sort(([a], [b]) => a.localeCompare(b));
  const now = Date.now();
  for (const [, w] of events) {
    assert.equal(w.partial, true);
    assert.equal((w.window_end as number) - (w.window_start as number), 3_600_000);
    assert.ok((w.window_start as number) <= now);
  }
  assert.deepEqual(events.map(([s, w]) => [s, w.key, w.kwh_sum, w.readings]), [
    ["hourly.site1", "site1", 6.5, 2],
    ["hourly.site2", "site2", 1, 1],
  ]);
  const summary = await sluice.waitForMsg("pipeline summary");
  assert.deepEqual([summary.in, summary.filtered], [3, 0], "absorbed events are not dropped");
});
