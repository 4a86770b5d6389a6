/**
 * The hand-written baseline: what a careful developer would write with nats.js for each scenario,
 * without Sluice. Subscribes, decodes with a fatal TextDecoder and JSON.parse, tests
 * `temperature > 30` in plain JavaScript, and publishes the original bytes. It is the ceiling a
 * JavaScript runtime reaches on this machine.
 *
 * The JetStream scenarios do the same with the settings of {@linkcode JETSTREAM}:
 * `jetstream-source` creates the durable pull consumer, reads it with `consume()` (same batch and
 * `max_ack_pending` as Sluice), publishes matches to core NATS and acks every message after its
 * publish; `jetstream-forward` reads the same way, publishes matches with `js.publish` and acks
 * each once its PubAck came (a filtered message at once); `jetstream-sink` (and `outbox`, which has no outbox here) publishes matches with
 * `js.publish`, at most `maxInFlight` awaiting their PubAck, and refuses (counts) an event beyond
 * that, as Sluice's sink does. The processor scenarios are in `baseline_processors.ts`.
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-env --allow-sys=hostname bench/baseline.ts
 * <nats-url> <scenario> [settings]`. Logs `started` once subscribed and, on SIGTERM, one
 * `pipeline summary` line per subscription, like Sluice. `settings` is JSON of
 * {@linkcode Settings}, for diagnosis runs (`deno task bench --js-batch …`).
 *
 * @module
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  JETSTREAM,
  MARKS_PIPELINE,
  report,
  scenario,
  type ScenarioName,
  ZONES,
} from "./_scenarios.ts";
import { type Counts, forwardMarks, mapDedupe, tumblingWindows } from "./baseline_processors.ts";

const decoder = new TextDecoder("utf-8", { fatal: true });

/** What a diagnosis run may change; the orchestrator changes Sluice's configuration alike. */
interface Settings {
  /** Pull batch of the JetStream source (default {@linkcode JETSTREAM}`.batch`). */
  batch?: number;
  /** `max_ack_pending` of the durable consumer (default {@linkcode JETSTREAM}`.maxAckPending`). */
  maxAckPending?: number;
  /**
   * nats.js `noAsyncTraces`: no Error (with its stack) captured per request to report a failed
   * one. Sluice keeps the default (traces on); this shows what they cost.
   */
  noAsyncTraces?: boolean;
  /** Load a small configuration with yaml, zod and CEL first (`config_stack.ts`). */
  configStack?: boolean;
}

function counts(name: string): Counts {
  return { name, in: 0, passed: 0, filtered: 0, deadLettered: 0, errors: 0, acked: 0 };
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
    default:
      throw new RangeError(`No core subscription handler for "${name}"`);
  }
}

/**
 * `jetstream-source`: a durable pull consumer read with `consume()`; each message is decoded,
 * filtered, published to core NATS when it passes, and acked.
 *
 * @returns A function that stops consuming once the messages received are handled.
 */
async function consumeStream(
  nc: NatsConnection,
  c: Counts,
  settings: Settings,
  forward: boolean,
): Promise<() => Promise<void>> {
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(JETSTREAM.sourceStream, {
    "durable_name": JETSTREAM.durable,
    "ack_policy": AckPolicy.Explicit,
    "deliver_policy": DeliverPolicy.All,
    "ack_wait": 30_000_000_000,
    "max_ack_pending": settings.maxAckPending ?? JETSTREAM.maxAckPending,
    "filter_subject": "sensors.temperature.>",
  });
  const consumer = await jetstream(nc).consumers.get(JETSTREAM.sourceStream, JETSTREAM.durable);
  const sink = "alerts.high-value";
  const js = jetstream(nc);
  let inFlight = 0;
  let idle: PromiseWithResolvers<void> | undefined;
  const messages = await consumer.consume({
    "max_messages": settings.batch ?? JETSTREAM.batch,
    callback: (m) => {
      c.in++;
      try {
        const e = JSON.parse(decoder.decode(m.data));
        if (e.temperature > 30) {
          c.passed++;
          if (forward) {
            // Acked once the other stream has it; consume()'s max_ack_pending bounds the wait.
            inFlight++;
            js.publish(JETSTREAM.sinkSubject, m.data).then(() => {
              m.ack();
              c.acked++;
            }, () => {
              m.nak();
              c.errors++;
            }).finally(() => {
              if (--inFlight === 0) idle?.resolve();
            });
            return;
          }
          nc.publish(sink, m.data);
        } else c.filtered++;
      } catch {
        c.errors++;
      }
      m.ack();
      c.acked++;
    },
  });
  return async () => {
    await messages.close();
    if (inFlight === 0) return;
    idle = Promise.withResolvers<void>();
    await idle.promise;
  };
}

/**
 * `jetstream-sink`: a core subscription whose matches are published with `js.publish`, at most
 * {@linkcode JETSTREAM}`.maxInFlight` awaiting their PubAck; an event beyond that is refused and
 * counted as an error, as Sluice's sink overflows.
 *
 * @returns A function that resolves once every publish has its PubAck (or failed).
 */
function publishToStream(nc: NatsConnection, c: Counts): () => Promise<void> {
  const js = jetstream(nc);
  let inFlight = 0;
  let idle: PromiseWithResolvers<void> | undefined;
  const settled = () => {
    if (--inFlight === 0) idle?.resolve();
  };
  nc.subscribe("sensors.temperature.>", {
    callback: (err, msg) => {
      if (err) return;
      c.in++;
      try {
        const e = JSON.parse(decoder.decode(msg.data));
        if (!(e.temperature > 30)) {
          c.filtered++;
          return;
        }
      } catch {
        c.errors++;
        return;
      }
      c.passed++;
      if (inFlight >= JETSTREAM.maxInFlight) {
        c.errors++;
        return;
      }
      inFlight++;
      js.publish(JETSTREAM.sinkSubject, msg.data).then(() => {
        c.acked++;
        settled();
      }, () => {
        c.errors++;
        settled();
      });
    },
  });
  return async () => {
    if (inFlight === 0) return;
    idle = Promise.withResolvers<void>();
    await idle.promise;
  };
}

async function main(url: string, name: ScenarioName, settings: Settings): Promise<void> {
  if (settings.configStack) {
    const { loadConfigStack } = await import("./config_stack.ts");
    (globalThis as { loaded?: unknown }).loaded = loadConfigStack();
  }
  const nc = await connect({
    servers: url,
    name: "baseline-bench",
    ...(settings.noAsyncTraces ? { noAsyncTraces: true } : {}),
  });
  const all: Counts[] = [];
  let finish = () => Promise.resolve();
  if (name === "jetstream-source" || name === "jetstream-forward") {
    const c = counts(name);
    all.push(c);
    finish = await consumeStream(nc, c, settings, name === "jetstream-forward");
  } else if (name === "jetstream-sink" || name === "outbox") {
    const c = counts(name);
    all.push(c);
    finish = publishToStream(nc, c);
  } else if (name === "map-dedupe" || name === "dedupe-10k") {
    const c = counts("dedupe");
    all.push(c);
    nc.subscribe("sensors.temperature.>", { callback: mapDedupe(nc, c, "alerts.changed") });
  } else if (name === "window-1k") {
    const c = counts("window");
    all.push(c);
    const windows = tumblingWindows(nc, c, "alerts.window");
    nc.subscribe("sensors.temperature.>", { callback: windows.callback });
    finish = () => Promise.resolve(windows.close());
  } else if (name === "pipelines-10") {
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
  if (scenario(name).marks) {
    const c = counts(MARKS_PIPELINE);
    all.push(c);
    forwardMarks(nc, c);
  }
  await nc.flush();
  report("started", { pipelines: all.length });
  const { promise: stopped, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", resolve);
  await stopped;
  await finish();
  await nc.drain();
  for (const c of all) {
    report("pipeline summary", {
      pipeline: c.name,
      in: c.in,
      passed: c.passed,
      filtered: c.filtered,
      dead_lettered: c.deadLettered,
      errors: c.errors,
      ...(c.acked > 0 ? { acked: c.acked } : {}),
    });
  }
}

if (import.meta.main) {
  const [url, name, settings] = Deno.args;
  if (url === undefined || name === undefined) {
    report("usage: baseline.ts <nats-url> <scenario> [settings-json]");
    Deno.exit(2);
  }
  await main(url, scenario(name).name, JSON.parse(settings ?? "{}") as Settings);
}
