/**
 * `sluice check` on stateful processors: every mistake of a chain reported at once, each as
 * `file:line:col: key.path: message`, exit code 2; and a good chain passes.
 */
import assert from "node:assert/strict";
import { configDir } from "../dev/config_dir.ts";
import { runSluice } from "../dev/sluice_process.ts";

const CONNECTORS = `connectors:
  local: { type: nats, servers: "nats://127.0.0.1:4222" }
`;

Deno.test("sluice check reports bad durations, rates and a deadband on a string, located", async () => {
  await using cfg = await configDir(
    CONNECTORS + `pipelines:
  p:
    source: { connector: local, subject: a.> }
    processors:
      - dedupe: { key: sensor, value: 'name + "x"', deadband: 0.5 }
      - dedupe: { value: t, heartbeat: 10 minutes }
      - throttle: { rate: 0/s }
      - throttle: { rate: ten/s }
      - throttle: { rate: 10/0s }
      - throttle: { rate: "10" }
      - window: { size: 1m, every: 7s, aggregates: { n: { count: true } } }
      - window: { size: 0ms, aggregates: { n: { count: true } } }
      - window: { size: 1m, aggregates: { s: { avg: 'string(t)' } } }
    sinks: [{ connector: local, subject: b }]
`,
  );
  const { code, stderr } = await runSluice(["check", cfg.file]);
  assert.equal(code, 2);
  const lines = stderr.trim().split("\n").map((l) => l.replace(cfg.file, "FILE"));
  const at = "pipelines.p.processors";
  assert.deepEqual(lines, [
    `FILE:7:39: ${at}[0].dedupe.value: a deadband needs a number, but this expression gives ` +
    "string: make it numeric or remove the deadband",
    `FILE:8:40: ${at}[1].dedupe.heartbeat: invalid duration "10 minutes": expected a number ` +
    "with a unit, e.g. 250ms, 2s, 5m, 1h",
    `FILE:9:27: ${at}[2].throttle.rate: invalid rate "0/s": the number of events must be a ` +
    "whole number of at least 1",
    `FILE:10:27: ${at}[3].throttle.rate: invalid rate "ten/s": expected N/duration, e.g. 10/s, ` +
    "100/1m or 5/250ms",
    `FILE:11:27: ${at}[4].throttle.rate: invalid rate "10/0s": the duration must be more than 0`,
    `FILE:12:27: ${at}[5].throttle.rate: invalid rate "10": expected N/duration, e.g. 10/s, ` +
    "100/1m or 5/250ms",
    `FILE:13:36: ${at}[6].window.every: size 1m is not a whole multiple of every 7s: choose an ` +
    "every that divides the size (each event is then in size/every windows)",
    `FILE:14:25: ${at}[7].window.size: expected a duration more than 0, e.g. 1s`,
    `FILE:15:53: ${at}[8].window.aggregates.s.avg: avg needs a number, but this expression ` +
    "gives string: make it numeric, or use first/last",
    "9 configuration errors; nothing was started",
  ]);
});

Deno.test("sluice check accepts the contract's stateful processors", async () => {
  await using cfg = await configDir(
    CONNECTORS + `pipelines:
  meters:
    source: { connector: local, subject: meters.> }
    processors:
      - dedupe:
          key: sensor
          value: temperature
          deadband: 0.5
          heartbeat: 10m
          max_keys: 10000
      - throttle:
          key: sensor
          rate: 10/s
      - window:
          key: sensor
          size: 1m
          every: 10s
          aggregates:
            temperature_avg: {avg: temperature}
            temperature_max: {max: temperature}
            readings: {count: true}
          max_keys: 10000
    sinks: [{ connector: local, subject: out }]
`,
  );
  const { code, stderr } = await runSluice(["check", cfg.file]);
  assert.equal(stderr.includes("error"), false, stderr);
  assert.equal(code, 0);
});
