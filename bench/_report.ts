/**
 * The markdown report of a results file: the tables of `bench/results/*.md` and the README's
 * performance section. Rendering only; nothing here measures.
 *
 * @module
 */
import { REPO_ROOT } from "../dev/sluice_process.ts";
import {
  type Impl,
  type LatencyPhase,
  lostIn,
  type Results,
  type ThroughputRun,
} from "./_results.ts";
import { JETSTREAM, scenario } from "./_scenarios.ts";
import { summarize, type Summary } from "./_stats.ts";

// NaN (nothing measured) is written as null in the JSON file.
export const known = (n: number | null): n is number => typeof n === "number" && !Number.isNaN(n);
export const fmtInt = (n: number) => known(n) ? Math.round(n).toLocaleString("en-US") : "–";
export const fmt = (n: number, digits = 1) => known(n) ? n.toFixed(digits) : "–";

function range(s: Summary, f: (n: number) => string): string {
  if (s.n === 0) return "–";
  return s.n === 1 ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

function pick<T>(runs: readonly T[] | undefined, f: (r: T) => number): Summary {
  return summarize((runs ?? []).map(f));
}

/** Per-repetition ratios sluice/baseline: both ran back to back under the same conditions. */
function ratios(r: Partial<Record<Impl, ThroughputRun[]>>): Summary {
  const b = r.baseline ?? [];
  const s = r.sluice ?? [];
  return summarize(s.map((x, i) => x.eventsPerS / (b[i]?.eventsPerS ?? NaN)));
}

/** The targets of issue 6, each with the measured median and whether it is met. */
function targets(res: Results, ready: Summary): string[] {
  const ratio = (name: string) => {
    const r = res.throughput[name];
    return r ? ratios(r).median : NaN;
  };
  const p99At5k = summarize(
    (res.latency.filter?.sluice ?? []).map((x) =>
      x.phases.find((p) => p.rate === 5_000)?.p99 ?? NaN
    ),
  ).median;
  const peaks = Object.entries(res.throughput).map(([name, r]) =>
    [name, pick(r.sluice, (x) => x.peakRssMiB).median] as const
  );
  const worst = peaks.reduce<readonly [string, number]>(
    (w, p) => (p[1] > w[1] ? p : w),
    ["", -Infinity],
  );
  const peak = worst[1] === -Infinity ? NaN : worst[1];
  const filterPeak = peaks.find(([name]) => name === "filter")?.[1] ?? NaN;
  const at20k = summarize(
    Object.values(res.latency).map((r) => pick(r.sluice, (x) => x.peakRssMiB).median),
  ).max;
  const filterIdle = pick(res.throughput.filter?.sluice, (x) => x.idleRssMiB).median;
  const dedupePeak = pick(res.throughput["dedupe-10k"]?.sluice, (x) => x.peakRssMiB).median;
  const dedupeBasePeak = pick(res.throughput["dedupe-10k"]?.baseline, (x) => x.peakRssMiB).median;
  const row = (what: string, value: string, met: boolean | "reported" | undefined) =>
    `| ${what} | ${value} | ${
      met === undefined ? "not measured" : met === "reported" ? met : met ? "met" : "**not met**"
    } |`;
  const check = (n: number, ok: (n: number) => boolean) => known(n) ? ok(n) : undefined;
  return [
    "### Targets (medians)",
    "",
    "| target | measured | |",
    "| --- | --: | --- |",
    row(
      "JSON filter: sluice ≥ 1.0 × baseline",
      fmt(ratio("filter"), 2),
      check(ratio("filter"), (n) => n >= 1.0),
    ),
    row(
      "map + dedupe: sluice ≥ 0.9 × baseline",
      fmt(ratio("map-dedupe"), 2),
      check(ratio("map-dedupe"), (n) => n >= 0.9),
    ),
    row(
      "window (1,000 keys): sluice ≥ 0.9 × baseline",
      fmt(ratio("window-1k"), 2),
      check(ratio("window-1k"), (n) => n >= 0.9),
    ),
    row(
      "10 pipelines on one connector ≥ 0.8 × 10 subscriptions",
      fmt(ratio("pipelines-10"), 2),
      check(ratio("pipelines-10"), (n) => n >= 0.8),
    ),
    row("p99 at 5k events/s < 5 ms", `${fmt(p99At5k, 2)} ms`, check(p99At5k, (n) => n < 5)),
    row(
      "peak RSS at full load < 80 MB (76.3 MiB)",
      `${fmt(filterPeak, 0)} MiB (JSON filter), worst ${fmt(peak, 0)} MiB (${worst[0]})`,
      check(peak, (n) => n * 1024 * 1024 < 80e6),
    ),
    row(
      "idle RSS ≤ 60 MiB",
      `${fmt(filterIdle, 0)} MiB (JSON filter)`,
      check(filterIdle, (n) => n <= 60),
    ),
    row(
      "peak RSS under a flood ≤ 80 MiB",
      `${fmt(filterPeak, 0)} MiB (JSON filter)`,
      check(filterPeak, (n) => n <= 80),
    ),
    row(
      "peak RSS with 10,000 dedupe keys",
      `${fmt(dedupePeak, 0)} MiB (baseline ${fmt(dedupeBasePeak, 0)} MiB)`,
      known(dedupePeak) ? "reported" : undefined,
    ),
    row(
      "(for reference) peak RSS at a steady 20k events/s",
      `${fmt(at20k, 0)} MiB (worst scenario)`,
      check(at20k, (n) => n * 1024 * 1024 < 80e6),
    ),
    row(
      "start to ready < 500 ms",
      `${fmt(ready.median, 0)} ms`,
      check(ready.median, (n) => n < 500),
    ),
    "",
  ];
}

/** What the JetStream runs were checked against, and the server's share of the work. */
function jetstreamTable(
  res: Results,
  rows: [string, Partial<Record<Impl, ThroughputRun[]>>][],
): string[] {
  const meta = res.meta as Record<string, unknown>;
  const lines = [
    "### JetStream scenarios: server side and checks",
    "",
    `Source: pull batch ${meta.js_batch}, \`max_ack_pending\` ${meta.js_max_ack_pending}; ` +
    `sink: \`max_in_flight\` ${JETSTREAM.maxInFlight}, closed loop of ${meta.window} outputs ` +
    `outstanding${meta.baseline_no_async_traces ? "; baseline with nats.js `noAsyncTraces`" : ""}.`,
    "",
    "| scenario | nats-server CPU µs/event baseline / sluice | checked after every run (all runs) |",
    "| --- | --: | --- |",
  ];
  for (const [name, r] of rows) {
    const runs = [...(r.baseline ?? []), ...(r.sluice ?? [])];
    const server = (impl: Impl) =>
      fmt(pick(r[impl], (x) => x.serverCpuUsPerEvent ?? NaN).median, 2);
    const sum = (f: (x: ThroughputRun) => number) => runs.reduce((n, x) => n + f(x), 0);
    let checks: string;
    if (scenario(name).transport === "jetstream-source") {
      const ok = runs.filter((x) => x.serverAcked === x.events && x.serverPending === 0).length;
      checks =
        `${ok} of ${runs.length} runs: every event acked (server ack floor = events), none ` +
        `pending; ${sum((x) => x.redelivered ?? 0)} redelivered; stream filled at ${
          fmtInt(summarize(runs.map((x) => x.ingestEventsPerS ?? NaN)).median)
        } events/s (core publishes)`;
      if (scenario(name).storesOutputs) {
        const held = runs.filter((x) => x.stored === x.expected).length;
        checks += `; ${held} of ${runs.length} runs: sink stream holds exactly the expected ${
          fmtInt(runs[0]?.expected ?? NaN)
        } messages; ${sum((x) => x.sinkErrors ?? 0)} sink errors`;
      }
    } else {
      const ok = runs.filter((x) => x.stored === x.expected).length;
      checks = `${ok} of ${runs.length} runs: sink stream holds exactly the expected ${
        fmtInt(runs[0]?.expected ?? NaN)
      } messages; ${sum((x) => x.sinkErrors ?? 0)} sink errors (overflows)`;
    }
    lines.push(`| ${name} | ${server("baseline")} / ${server("sluice")} | ${checks} |`);
  }
  lines.push("");
  return lines;
}

/**
 * Renders a results file as the markdown report.
 *
 * @param res The results.
 * @returns The report: machine, throughput, JetStream checks, latency, start-up and targets.
 */
export function markdown(res: Results): string {
  const m = res.meta as {
    machine: Record<string, unknown>;
    reps: number;
    events: number;
    js_events?: number;
  };
  const lines: string[] = [];
  lines.push(
    `Machine: ${m.machine.nproc} × ${m.machine.cpu}, Deno ${m.machine.deno} (V8 ${m.machine.v8}), ` +
      `nats-server ${m.machine.nats_server}. ${m.reps} repetition${m.reps === 1 ? "" : "s"}; ` +
      `median (min–max). Run at ${res.meta.date}${res.meta.quick ? " (--quick)" : ""}.`,
    "",
  );
  const tp = Object.entries(res.throughput);
  const isJs = ([name]: [string, unknown]) => scenario(name).transport.startsWith("jetstream");
  const isMqtt = ([name]: [string, unknown]) => scenario(name).transport === "mqtt";
  if (tp.length > 0) {
    const slow = [tp.some(isJs) ? "JetStream" : "", tp.some(isMqtt) ? "MQTT" : ""]
      .filter(Boolean).join(" and ");
    const jsEvents = slow && m.js_events !== undefined && m.js_events !== m.events
      ? `, ${fmtInt(m.js_events)} in the ${slow} scenarios`
      : "";
    lines.push(
      `### Sustained throughput (${
        fmtInt(m.events)
      } events per run${jsEvents}; ≈30 % pass the filter)`,
      "",
      "Idle RSS: one second after the program subscribed, before any event; peak RSS: the " +
        "largest resident set (`VmHWM`) by the end of the flood. Sluice runs " +
        String(res.meta.sluice_launch ?? "with `deno run` and no V8 flags, as a user runs it") +
        ".",
      "",
      "| scenario | baseline events/s | sluice events/s | sluice / baseline | CPU µs/event baseline / sluice | idle RSS MiB baseline / sluice | peak RSS MiB baseline / sluice | sluice RSS at end: private + files MiB | lost |",
      "| --- | --: | --: | --: | --: | --: | --: | --: | --: |",
    );
    for (const [name, r] of tp) {
      const lost = [...(r.baseline ?? []), ...(r.sluice ?? [])].reduce(
        (n, x) => n + lostIn(x),
        0,
      );
      lines.push(
        `| ${name} | ${range(pick(r.baseline, (x) => x.eventsPerS), fmtInt)} | ${
          range(pick(r.sluice, (x) => x.eventsPerS), fmtInt)
        } | ${range(ratios(r), (n) => fmt(n, 2))} | ${
          fmt(pick(r.baseline, (x) => x.cpuUsPerEvent).median, 2)
        } / ${fmt(pick(r.sluice, (x) => x.cpuUsPerEvent).median, 2)} | ${
          fmt(pick(r.baseline, (x) => x.idleRssMiB).median, 0)
        } / ${fmt(pick(r.sluice, (x) => x.idleRssMiB).median, 0)} | ${
          fmt(pick(r.baseline, (x) => x.peakRssMiB).median, 0)
        } / ${range(pick(r.sluice, (x) => x.peakRssMiB), (n) => fmt(n, 0))} | ${
          fmt(pick(r.sluice, (x) => x.endAnonMiB).median, 0)
        } + ${fmt(pick(r.sluice, (x) => x.endFileMiB).median, 0)} | ${lost} |`,
      );
    }
    lines.push("", ...tp.map(([name]) => `- ${name}: ${scenario(name).title}`), "");
    const losses = tp.flatMap(([name, r]) =>
      (["baseline", "sluice"] as const).flatMap((impl) =>
        (r[impl] ?? []).map((x, i) => ({ name, impl, rep: i + 1, x })).filter((l) =>
          lostIn(l.x) !== 0
        )
      )
    );
    if (losses.length > 0) {
      lines.push(
        "Runs with a loss:",
        "",
        ...losses.map(({ name, impl, rep, x }) =>
          `- ${name}, ${impl}, repetition ${rep}: ${fmtInt(x.received)} of ${
            fmtInt(x.expected)
          } outputs received, ${fmtInt(x.consumed)} of ${fmtInt(x.events)} events consumed` +
          (x.sinkErrors ? `, ${fmtInt(x.sinkErrors)} sink errors` : "") +
          (x.sent === undefined ? "" : `; the program says it sent ${fmtInt(x.sent)}`) +
          (x.slowConsumers ? `; nats-server cut off ${x.slowConsumers} slow consumer(s)` : "") +
          (x.failures?.length ? `; it logged: ${x.failures.join(" | ")}` : "")
        ),
        "",
      );
    }
    const js = tp.filter(isJs);
    if (js.length > 0) lines.push(...jetstreamTable(res, js));
  }
  const lat = Object.entries(res.latency);
  if (lat.length > 0) {
    const rates = (res.meta.phases as { rate: number }[]).map((p) => p.rate);
    lines.push(
      "### End-to-end latency at a fixed offered rate (ms, p50 / p99 / p99.9)",
      "",
      `| scenario | program | ${
        rates.map((r) => `${r / 1000}k events/s`).join(" | ")
      } | peak RSS MiB |`,
      `| --- | --- | ${rates.map(() => "--:").join(" | ")} | --: |`,
    );
    for (const [name, r] of lat) {
      for (const impl of ["floor", "baseline", "sluice"] as const) {
        const runs = r[impl];
        if (!runs || runs.length === 0) continue;
        const cells = rates.map((rate) => {
          const ph = runs.map((x) => x.phases.find((p) => p.rate === rate));
          const get = (f: (p: LatencyPhase) => number) =>
            summarize(ph.map((p) => (p ? f(p) : NaN)));
          const p99 = get((p) => p.p99);
          return `${fmt(get((p) => p.p50).median, 2)} / ${
            p99.n > 1 ? `${fmt(p99.median, 2)} (${fmt(p99.min, 2)}–${fmt(p99.max, 2)})` : fmt(
              p99.median,
              2,
            )
          } / ${fmt(get((p) => p.p999).median, 2)}`;
        });
        const label = impl === "floor" ? "one hop (no consumer)" : impl;
        lines.push(
          `| ${impl === "floor" ? "–" : name} | ${label} | ${cells.join(" | ")} | ${
            fmt(pick(runs, (x) => x.peakRssMiB).median, 0)
          } |`,
        );
      }
    }
    lines.push("");
  }
  const readies = (impl: Impl) =>
    summarize([
      ...Object.values(res.throughput).flatMap((r) => (r[impl] ?? []).map((x) => x.readyMs)),
      ...Object.values(res.latency).flatMap((r) => (r[impl] ?? []).map((x) => x.readyMs)),
    ]);
  // Older results files have only `idleRssMiB`, which was read at `started`.
  const subscribed = (impl: Impl) =>
    summarize(
      Object.values(res.throughput).flatMap((r) =>
        (r[impl] ?? []).map((x) => x.subscribedRssMiB ?? x.idleRssMiB)
      ),
    );
  lines.push(
    "### Start-up",
    "",
    "| program | spawn to subscribed (ms) | RSS when subscribed (MiB) |",
    "| --- | --: | --: |",
    `| baseline | ${range(readies("baseline"), (n) => fmt(n, 0))} | ${
      range(subscribed("baseline"), (n) => fmt(n, 0))
    } |`,
    `| sluice | ${range(readies("sluice"), (n) => fmt(n, 0))} | ${
      range(subscribed("sluice"), (n) => fmt(n, 0))
    } |`,
    "",
  );
  lines.push(...targets(res, readies("sluice")));
  return lines.join("\n");
}

/** Formats written reports like the rest of the repository, so `deno fmt --check` passes. */
export async function formatFiles(files: string[]): Promise<void> {
  const out = await new Deno.Command("deno", {
    args: ["fmt", "--quiet", ...files],
    cwd: REPO_ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    Deno.stderr.writeSync(
      new TextEncoder().encode(`deno fmt failed: ${new TextDecoder().decode(out.stderr)}\n`),
    );
  }
}
