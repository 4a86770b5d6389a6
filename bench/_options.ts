/**
 * The command line of `deno task bench`: what to run, how often and with which diagnosis
 * settings. The options are listed in `main.ts`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { taskDenoFlags, taskEnv } from "../dev/tasks.ts";
import type { Impl } from "./_results.ts";
import { JETSTREAM, POOL_SIZE, type Scenario, scenario, SCENARIOS } from "./_scenarios.ts";

/** What one invocation runs. */
export interface Options {
  quick: boolean;
  reps: number;
  events: number;
  /** Events per run of the JetStream scenarios. */
  jsEvents: number;
  /** Outputs outstanding in the closed loop of the JetStream sink scenarios. */
  window: number;
  /** Diagnosis: pull batch and `max_ack_pending` of the JetStream source, in both programs. */
  jsBatch: number | undefined;
  jsMaxAckPending: number | undefined;
  /** Diagnosis: nats.js `noAsyncTraces` in the baseline. */
  baselineNoAsyncTraces: boolean;
  /**
   * Reference: the baseline loads a small configuration with yaml, zod and CEL before it
   * subscribes (`config_stack.ts`), to show what those libraries alone hold in memory.
   */
  baselineConfigStack: boolean;
  scenarios: Scenario[];
  latencyScenarios: Scenario[];
  phases: { rate: number; seconds: number }[];
  throughput: boolean;
  impls: Impl[];
  cpuProf: string | undefined;
  /** Overrides the connector's `max_pending` (diagnosis only; the report says so). */
  maxPending: string | undefined;
  /** V8 flags for Sluice (`--v8-flags=...`), to try memory settings; the report says so. */
  v8Flags: string | undefined;
  /**
   * Run Sluice as it is shipped (`--shipped`): with the V8 flags and environment of the `start`
   * task, which the service and the `sluice` command share (tests/v8_flags_test.ts). Resolved
   * into {@link v8Flags} and {@link sluiceEnv} by {@link shippedLaunch}.
   */
  shipped: boolean;
  /** Run Sluice from a bundle built as the `bundle` task builds it (`--bundle`). */
  bundle: boolean;
  /** Environment variables for Sluice beyond the scenario's (the shipped malloc setting). */
  sluiceEnv: Record<string, string>;
  /** Only rewrite the markdown report from this results file. */
  render: string | undefined;
}

/**
 * Parses the command line.
 *
 * @param args The arguments, e.g. `Deno.args`.
 * @returns The options, with the defaults of a full or a `--quick` run filled in.
 * @throws {RangeError} When a value is out of range or a scenario is unknown.
 */
export function options(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      reps: { type: "string" },
      events: { type: "string" },
      "js-events": { type: "string" },
      window: { type: "string" },
      "js-batch": { type: "string" },
      "js-max-ack-pending": { type: "string" },
      "baseline-no-async-traces": { type: "boolean", default: false },
      "baseline-config-stack": { type: "boolean", default: false },
      scenarios: { type: "string" },
      "no-latency": { type: "boolean", default: false },
      "no-throughput": { type: "boolean", default: false },
      impl: { type: "string" },
      "cpu-prof": { type: "string" },
      "max-pending": { type: "string" },
      "v8-flags": { type: "string" },
      shipped: { type: "boolean", default: false },
      bundle: { type: "boolean", default: false },
      render: { type: "string" },
    },
  });
  const quick = values.quick;
  if (values.shipped && values["v8-flags"] !== undefined) {
    throw new RangeError("--shipped runs the start task's V8 flags: drop --v8-flags");
  }
  const scenarios = values.scenarios
    ? values.scenarios.split(",").map(scenario)
    : SCENARIOS.filter((s) => s.disabled === undefined);
  const events = Number(values.events ?? (quick ? 150_000 : 1_000_000));
  const jsEvents = Number(
    values["js-events"] ?? Math.max(POOL_SIZE, Math.round(events / 4 / POOL_SIZE) * POOL_SIZE),
  );
  for (const [flag, n] of [["--events", events], ["--js-events", jsEvents]] as const) {
    if (!Number.isInteger(n) || n < POOL_SIZE || n % POOL_SIZE !== 0) {
      throw new RangeError(`${flag} must be a positive multiple of ${POOL_SIZE}, got ${n}`);
    }
  }
  const window = Number(values.window ?? JETSTREAM.maxInFlight / 2);
  if (!Number.isInteger(window) || window < 1) {
    throw new RangeError(`--window must be a positive integer, got ${values.window}`);
  }
  const impl = values.impl;
  if (impl !== undefined && impl !== "baseline" && impl !== "sluice") {
    throw new RangeError(`--impl must be baseline or sluice, got "${impl}"`);
  }
  const positive = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${flag} must be a positive integer`);
    return n;
  };
  return {
    quick,
    reps: Number(values.reps ?? (quick ? 1 : 3)),
    events,
    jsEvents,
    window,
    jsBatch: positive("--js-batch", values["js-batch"]),
    jsMaxAckPending: positive("--js-max-ack-pending", values["js-max-ack-pending"]),
    baselineNoAsyncTraces: values["baseline-no-async-traces"],
    baselineConfigStack: values["baseline-config-stack"],
    scenarios: values["no-throughput"] ? [] : scenarios,
    // The latency driver publishes to core NATS and its phases assume a core source.
    // ... and one output per event: the processor scenarios are timed by their marks only.
    latencyScenarios: values["no-latency"]
      ? []
      : quick
      ? scenarios.filter((s) => s.name === "filter")
      : scenarios.filter((s) => s.transport === "core" && !s.marks),
    phases: quick
      ? [{ rate: 1_000, seconds: 1 }, { rate: 5_000, seconds: 1 }, { rate: 20_000, seconds: 1 }]
      : [{ rate: 1_000, seconds: 8 }, { rate: 5_000, seconds: 4 }, { rate: 20_000, seconds: 3 }],
    throughput: !values["no-throughput"],
    impls: impl ? [impl] : ["baseline", "sluice"],
    cpuProf: values["cpu-prof"],
    maxPending: values["max-pending"],
    v8Flags: values["v8-flags"],
    shipped: values.shipped,
    bundle: values.bundle,
    sluiceEnv: {},
    render: values.render,
  };
}

/**
 * Fills in the V8 flags and environment of `--shipped` from the `start` task.
 *
 * @param o The parsed options; changed in place when `o.shipped`.
 * @throws {Error} When the start task has no `--v8-flags=`.
 */
export async function shippedLaunch(o: Options): Promise<void> {
  if (!o.shipped) return;
  const flag = (await taskDenoFlags("start")).find((f) => f.startsWith("--v8-flags="));
  if (flag === undefined) throw new Error("the start task passes no --v8-flags=");
  o.v8Flags = flag.slice("--v8-flags=".length);
  o.sluiceEnv = await taskEnv("start");
}

/** How Sluice was launched, for the report: plain `deno run`, as shipped, or with given flags. */
export function launchText(o: Options): string {
  const from = o.bundle ? "from the bundle (`deno run --no-config dist/sluice.js`), " : "";
  return from + launchSettings(o);
}

function launchSettings(o: Options): string {
  if (o.shipped) {
    const env = Object.entries(o.sluiceEnv).map(([k, v]) => `${k}=${v} `).join("");
    return `as shipped (\`${env}deno run --v8-flags=${o.v8Flags}\`, as \`deno task start\`, ` +
      "the service and the `sluice` command run it)";
  }
  if (o.v8Flags) return `with \`--v8-flags=${o.v8Flags}\` (diagnosis)`;
  return "with `deno run` and no V8 flags, as a user runs it";
}
