/**
 * The MQTT comparison's own logic (`bench/mqtt_nodered.ts`, `bench/_nodered.ts`): Node-RED's flow
 * does the scenario's job, the command line refuses bad input, and the report's ratios are taken
 * within each repetition. Nothing here is timed, and Node-RED is not installed: the bench itself
 * checks on every run that each program delivered every expected output.
 */
import assert from "node:assert/strict";
import { flows, NODE_RED_CLIENT_ID } from "../bench/_nodered.ts";
import { markdown, mqttOptions, type MqttRun } from "../bench/mqtt_nodered.ts";
import { MQTT } from "../bench/_scenarios.ts";

interface FlowNode {
  id: string;
  type: string;
  wires?: string[][];
  [key: string]: unknown;
}

Deno.test("Node-RED's flow: mqtt in → json → switch (temperature > 30) → mqtt out, QoS 0", () => {
  const nodes = flows(41234) as FlowNode[];
  const byType = (t: string) => nodes.filter((n) => n.type === t);
  const broker = byType("mqtt-broker");
  assert.equal(broker.length, 1);
  assert.equal(broker[0]!.port, "41234");
  assert.equal(broker[0]!.broker, "127.0.0.1");
  assert.equal(broker[0]!.clientid, NODE_RED_CLIENT_ID);
  const [input] = byType("mqtt in");
  const [json] = byType("json");
  const [sw] = byType("switch");
  const [output] = byType("mqtt out");
  assert.ok(input && json && sw && output);
  // Wired in a line, and the output goes nowhere else.
  assert.deepEqual(input.wires, [[json.id]]);
  assert.deepEqual(json.wires, [[sw.id]]);
  assert.deepEqual(sw.wires, [[output.id]]);
  assert.deepEqual(output.wires, []);
  assert.equal(input.topic, MQTT.sourceFilter);
  assert.equal(input.qos, "0");
  assert.equal(input.datatype, "utf8", "the json node parses a string");
  assert.equal(json.action, "obj");
  assert.equal(sw.property, "payload.temperature");
  assert.deepEqual(sw.rules, [{ t: "gt", v: "30", vt: "num" }]);
  assert.equal(output.topic, MQTT.sinkTopic);
  assert.equal(output.qos, "0");
  assert.equal(output.retain, "false");
  for (const n of [input, output]) assert.equal(n.broker, broker[0]!.id);
});

Deno.test("mqttOptions() fills in the defaults", () => {
  assert.deepEqual(mqttOptions([]), {
    events: 200_000,
    reps: 3,
    impls: ["sluice", "baseline", "nodered"],
    mode: "backlog",
  });
  assert.equal(mqttOptions(["--live"]).mode, "live");
  assert.equal(mqttOptions(["--rate", "5000"]).mode, 5000);
  assert.deepEqual(mqttOptions(["--impls", "sluice,nodered"]).impls, ["sluice", "nodered"]);
});

Deno.test("mqttOptions() refuses bad input and says which flag", () => {
  const cases: [string[], RegExp][] = [
    [["--events", "1500"], /--events must be a positive multiple of 1000, got 1500/],
    [["--events", "many"], /--events/],
    [["--reps", "0"], /--reps must be a positive integer, got 0/],
    [["--impls", "sluice,telegraf"], /unknown program "telegraf": expected sluice, baseline/],
    [["--rate", "0"], /--rate must be a positive number of events\/s, got 0/],
    [["--rate", "fast"], /--rate/],
    [["--live", "--rate", "5000"], /--live and --rate exclude each other/],
  ];
  for (const [argv, message] of cases) {
    assert.throws(() => mqttOptions(argv), (e: unknown) => {
      assert.ok(e instanceof RangeError, `${argv.join(" ")}: ${e}`);
      assert.match(e.message, message);
      return true;
    });
  }
  assert.throws(() => mqttOptions(["--unknown"]), /unknown/i);
});

function runOf(eventsPerS: number, cpuUsPerEvent: number, peakRssMiB: number): MqttRun {
  return {
    eventsPerS,
    events: 1000,
    expected: 294,
    received: 294,
    consumed: 1000,
    publishEventsPerS: 50_000,
    cpuUsPerEvent,
    brokerCpuUsPerEvent: 6,
    peakRssMiB,
    idleRssMiB: 70,
    readyMs: 100,
  };
}

Deno.test("the report's ratios are medians of per-repetition ratios, and losses are shown", () => {
  // Repetition k of each program ran back to back; the machine was slower in repetition 2.
  const runs = {
    sluice: [runOf(100, 4, 120), runOf(20, 5, 130), runOf(90, 4, 125)],
    baseline: [runOf(50, 4, 100), runOf(40, 5, 100), runOf(100, 4, 100)],
    nodered: [runOf(10, 60, 300), { ...runOf(5, 70, 340), received: 200 }],
  };
  const md = markdown({ date: "d", events: 1000, reps: 3, machine: "m", mode: "backlog" }, runs);
  // Per repetition sluice/baseline: 2, 0.5, 0.9 → median 0.9 (the ratio of medians would be 1.8).
  assert.match(md, /\| sluice \/ baseline \| 0\.90× \(0\.50–2\.00\) \| 1\.00× \(1\.00–1\.00\) \|/);
  // Node-RED ran twice: the ratios use the repetitions both programs ran.
  assert.match(md, /\| sluice \/ nodered \| 7\.00× \(4\.00–10\.00\) \|/);
  assert.match(md, /Node-RED[^\n]*\| 94 lost \|/);
  assert.match(md, /hand-written MQTT\.js[^\n]*\| all \|/);
  assert.match(md, /Backlog: the program was paused/);
});
