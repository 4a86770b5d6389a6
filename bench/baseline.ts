/**
 * The hand-written baseline: what a careful developer would write with nats.js for each scenario,
 * without Sluice. Subscribes, decodes with a fatal TextDecoder and JSON.parse, tests
 * `temperature > 30` in plain JavaScript, and publishes the original bytes. It is the ceiling a
 * JavaScript runtime reaches on this machine.
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-env --allow-sys=hostname bench/baseline.ts
 * <nats-url> <scenario>`. Logs `started` once subscribed and, on SIGTERM, one `pipeline summary`
 * line per subscription, like Sluice.
 *
 * @module
 */
import { headers, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { report, scenario, type ScenarioName, ZONES } from "./_scenarios.ts";

interface Counts {
  name: string;
  in: number;
  passed: number;
  filtered: number;
  deadLettered: number;
  errors: number;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function counts(name: string): Counts {
  return { name, in: 0, passed: 0, filtered: 0, deadLettered: 0, errors: 0 };
}

/** A valid single subject token: non-empty, no `.`, `*`, `>` or white space. */
function isToken(s: unknown): s is string {
  return typeof s === "string" && s.length > 0 && !/[.*>\s]/.test(s);
}

function handler(
  nc: NatsConnection,
  name: ScenarioName,
  c: Counts,
  sink: string,
): (err: Error | null, msg: Msg) => void {
  switch (name) {
    case "filter":
    case "pipelines-10":
      return (err, msg) => {
        if (err) return;
        c.in++;
        try {
          const e = JSON.parse(decoder.decode(msg.data));
          if (e.temperature > 30) {
            c.passed++;
            nc.publish(sink, msg.data);
          } else c.filtered++;
        } catch {
          c.errors++;
        }
      };
    case "pass-all":
      return (err, msg) => {
        if (err) return;
        c.in++;
        try {
          JSON.parse(decoder.decode(msg.data));
          c.passed++;
          nc.publish(sink, msg.data);
        } catch {
          c.errors++;
        }
      };
    case "template":
      return (err, msg) => {
        if (err) return;
        c.in++;
        try {
          const e = JSON.parse(decoder.decode(msg.data));
          if (!(e.temperature > 30)) {
            c.filtered++;
            return;
          }
          c.passed++;
          if (isToken(e.site)) nc.publish(`alerts.${e.site}`, msg.data);
          else c.errors++;
        } catch {
          c.errors++;
        }
      };
    case "dead-letter":
      return (err, msg) => {
        if (err) return;
        c.in++;
        let e;
        try {
          e = JSON.parse(decoder.decode(msg.data));
        } catch (error) {
          c.errors++;
          const h = headers();
          h.set("Sluice-Error", `malformed JSON: ${String(error).replace(/[\r\n]+/g, " ")}`);
          h.set("Sluice-Pipeline", c.name);
          h.set("Sluice-Subject", msg.subject);
          nc.publish("dlq.alerts", msg.data, { headers: h });
          c.deadLettered++;
          return;
        }
        if (e.temperature > 30) {
          c.passed++;
          nc.publish(sink, msg.data);
        } else c.filtered++;
      };
  }
}

async function main(url: string, name: ScenarioName): Promise<void> {
  const nc = await connect({ servers: url, name: "baseline-bench" });
  const all: Counts[] = [];
  if (name === "pipelines-10") {
    for (let z = 0; z < ZONES; z++) {
      const c = counts(`zone-${z}`);
      all.push(c);
      nc.subscribe(`sensors.temperature.z${z}.>`, {
        callback: handler(nc, name, c, `alerts.z${z}`),
      });
    }
  } else {
    const c = counts(name);
    all.push(c);
    const sink = name === "pass-all" ? "alerts.all" : "alerts.high-value";
    nc.subscribe("sensors.temperature.>", { callback: handler(nc, name, c, sink) });
  }
  await nc.flush();
  report("started", { pipelines: all.length });
  const { promise: stopped, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", resolve);
  await stopped;
  await nc.drain();
  for (const c of all) {
    report("pipeline summary", {
      pipeline: c.name,
      in: c.in,
      passed: c.passed,
      filtered: c.filtered,
      dead_lettered: c.deadLettered,
      errors: c.errors,
    });
  }
}

if (import.meta.main) {
  const [url, name] = Deno.args;
  if (url === undefined || name === undefined) {
    report("usage: baseline.ts <nats-url> <scenario>");
    Deno.exit(2);
  }
  await main(url, scenario(name).name);
}
