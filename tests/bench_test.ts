/**
 * The benchmark's own logic, which decides whether a run lost events: the expected outputs of the
 * processor scenarios, the hand-written baselines they are compared with, the command line and
 * the report's columns. Nothing here is timed.
 */
import assert from "node:assert/strict";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { launchText, options, shippedLaunch } from "../bench/_options.ts";
import { loadConfigStack } from "../bench/config_stack.ts";
import { taskDenoFlags, taskEnv } from "../dev/tasks.ts";
import { markdown } from "../bench/_report.ts";
import type { Results, ThroughputRun } from "../bench/_results.ts";
import {
  buildPool,
  DEDUPE,
  expectedOutputs,
  movedBy,
  scenario,
  SCENARIOS,
} from "../bench/_scenarios.ts";
import { type Counts, mapDedupe, tumblingWindows } from "../bench/baseline_processors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Stands in for a connection: records what the baseline publishes. */
function recorder() {
  const published: { subject: string; data: Uint8Array }[] = [];
  const nc = {
    publish: (subject: string, data: Uint8Array) => published.push({ subject, data }),
  } as unknown as NatsConnection;
  return { nc, published };
}

function counts(): Counts {
  return { name: "t", in: 0, passed: 0, filtered: 0, deadLettered: 0, errors: 0, acked: 0 };
}

/** The events of a scenario's pool as messages, cycling from its start. */
function messages(name: "map-dedupe" | "dedupe-10k" | "window-1k", events: number): Msg[] {
  const pool = buildPool(scenario(name));
  const size = pool.subjects.length;
  return Array.from({ length: events }, (_, n) => {
    const i = n % size;
    const data = encoder.encode(`{"ts":1718000000000.123${pool.tails[i]}`);
    return { subject: pool.subjects[i]!, data } as unknown as Msg;
  });
}

Deno.test("movedBy() forwards a difference equal to the deadband despite rounding", () => {
  assert.ok(20.3 - 20.1 < 0.2, "the difference really is rounded down");
  assert.equal(movedBy(20.1, 20.3, 0.2), true);
  assert.equal(movedBy(20.3, 20.1, 0.2), true);
  assert.equal(movedBy(20.1, 20.29, 0.2), false);
  assert.equal(movedBy(21, 26, DEDUPE.deadband), true);
});

for (const name of ["map-dedupe", "dedupe-10k"] as const) {
  Deno.test(`${name}: the hand-written dedupe forwards exactly the simulated outputs`, () => {
    const s = scenario(name);
    const events = 3 * buildPool(s).subjects.length + 123;
    const { nc, published } = recorder();
    const c = counts();
    const handle = mapDedupe(nc, c, "alerts.changed");
    for (const msg of messages(name, events)) handle(null, msg);
    assert.equal(c.errors, 0);
    assert.equal(published.length, expectedOutputs(s, buildPool(s), events));
    assert.ok(published.length < events, "some events are deduplicated");
    const first = JSON.parse(decoder.decode(published[0]!.data));
    assert.equal(first.zone, "z0");
    assert.equal(first["temperature_f"], first.temperature * 1.8 + 32.0);
  });
}

Deno.test("window-1k: the hand-written windows account for every event, partial ones on close", () => {
  const s = scenario("window-1k");
  const { nc, published } = recorder();
  const c = counts();
  const windows = tumblingWindows(nc, c, "alerts.window");
  const events = 2_500;
  for (const msg of messages("window-1k", events)) windows.callback(null, msg);
  windows.close();
  const outputs = published.map((p) => JSON.parse(decoder.decode(p.data)));
  const readings = outputs.reduce((n, o) => n + o.readings, 0);
  assert.equal(readings, expectedOutputs(s, buildPool(s), events));
  assert.ok(outputs.some((o) => o.partial === true));
  assert.ok(outputs.length >= 1_000, "one window per sensor at least");
  for (const o of outputs) {
    assert.equal(o["window_end"] - o["window_start"], 1_000);
    assert.ok(o["temperature_max"] >= o["temperature_avg"] - 1e-9, "avg ≤ max, up to rounding");
  }
});

Deno.test("options(): disabled scenarios run only when named", () => {
  const o = options([]);
  assert.ok(o.scenarios.every((s) => s.disabled === undefined));
  const disabled = SCENARIOS.filter((s) => s.disabled !== undefined).map((s) => s.name);
  for (const name of disabled) {
    assert.deepEqual(options(["--scenarios", name]).scenarios.map((s) => s.name), [name]);
  }
  const marked = options(["--scenarios", "filter,map-dedupe,window-1k"]);
  assert.deepEqual(marked.latencyScenarios.map((s) => s.name), ["filter"]);
});

Deno.test("options(): bad values are refused with the flag named", () => {
  assert.throws(() => options(["--scenarios", "nope"]), /Unknown scenario "nope": expected one of/);
  assert.throws(() => options(["--events", "1500"]), /--events must be a positive multiple/);
  assert.throws(() => options(["--impl", "node"]), /--impl must be baseline or sluice/);
  assert.throws(() => options(["--window", "0"]), /--window must be a positive integer/);
});

Deno.test("options(): --shipped runs Sluice with the start task's V8 flags and environment", async () => {
  const plain = options([]);
  await shippedLaunch(plain);
  assert.equal(plain.v8Flags, undefined);
  assert.deepEqual(plain.sluiceEnv, {});
  assert.match(launchText(plain), /no V8 flags/);
  const shipped = options(["--shipped"]);
  await shippedLaunch(shipped);
  assert.ok((await taskDenoFlags("start")).includes(`--v8-flags=${shipped.v8Flags}`));
  assert.deepEqual(shipped.sluiceEnv, await taskEnv("start"));
  assert.ok(Object.keys(shipped.sluiceEnv).length > 0, "the start task sets the malloc setting");
  assert.match(
    launchText(shipped),
    /^as shipped \(`MALLOC_TRIM_THRESHOLD_=\d+ deno run --v8-flags=/,
  );
  assert.throws(
    () => options(["--shipped", "--v8-flags=--max-semi-space-size=2"]),
    /--shipped runs the start task's V8 flags: drop --v8-flags/,
  );
});

Deno.test("the baseline's config stack parses, validates and compiles a working filter", () => {
  assert.equal(options(["--baseline-config-stack"]).baselineConfigStack, true);
  assert.equal(options([]).baselineConfigStack, false);
  const { config, filters } = loadConfigStack() as {
    config: { pipelines: Record<string, { filter: string }> };
    filters: ((context: Record<string, unknown>) => unknown)[];
  };
  assert.equal(config.pipelines.hot?.filter, "temperature > 30");
  assert.deepEqual(filters.map((f) => [f({ temperature: 31 }), f({ temperature: 30 })]), [[
    true,
    false,
  ]]);
});

Deno.test("markdown(): the summary table has idle and peak RSS of both programs", () => {
  const run = (eventsPerS: number, idle: number, peak: number): ThroughputRun => ({
    eventsPerS,
    events: 1000,
    expected: 300,
    received: 300,
    consumed: 1000,
    publishMs: 1,
    windowMs: 1,
    readyMs: 100,
    peakRssMiB: peak,
    endAnonMiB: 50,
    endFileMiB: 44,
    subscribedRssMiB: idle - 1,
    idleRssMiB: idle,
    cpuUsPerEvent: 2,
  });
  const res: Results = {
    meta: {
      date: "2026-11-30T00:00:00.000Z",
      reps: 1,
      events: 1000,
      phases: [],
      machine: { nproc: 2, cpu: "test", deno: "2", v8: "1", nats_server: "v2" },
    },
    throughput: {
      filter: { baseline: [run(100, 52, 120)], sluice: [run(110, 75, 98)] },
      "dedupe-10k": { baseline: [run(100, 53, 130)], sluice: [run(90, 77, 140)] },
    },
    latency: {},
  };
  const md = markdown(res);
  assert.match(md, /\| idle RSS MiB baseline \/ sluice \| peak RSS MiB baseline \/ sluice \|/);
  assert.match(
    md,
    /\| filter \| 100 \| 110 \| 1\.10 \| 2\.00 \/ 2\.00 \| 52 \/ 75 \| 120 \/ 98 \|/,
  );
  assert.match(md, /\| idle RSS ≤ 60 MiB \| 75 MiB \(JSON filter\) \| \*\*not met\*\* \|/);
  assert.match(md, /peak RSS with 10,000 dedupe keys \| 140 MiB \(baseline 130 MiB\) \| reported/);
  assert.match(md, /- dedupe-10k: as map-dedupe with 10,000 sensors/);
});
