/**
 * Cost of Sluice's per-event path (decode → filter → sink) in one process, without the network:
 * the real {@linkcode Pipeline} and {@linkcode NatsSink} with a source that is called directly
 * and a connector whose `publish` only counts, against a hand-written closure doing the same work.
 * The difference is what the engine adds per event. The map + dedupe chain is the one of the
 * `map-dedupe` scenario, against the hand-written code of its baseline. Run with
 * `deno bench --allow-read --allow-env bench/pipeline_bench.ts`.
 *
 * @module
 */
import type { PipelineDecl } from "../src/config/config.ts";
import type { NatsConnector } from "../src/connectors/nats/client.ts";
import type { NatsSinkConfig } from "../src/connectors/nats/schema.ts";
import { NatsSink } from "../src/connectors/nats/sink.ts";
import { Pipeline } from "../src/engine/pipeline.ts";
import type { Connector, InboundMessage, MessageHandler, Source } from "../src/engine/types.ts";
import { createLogger } from "../src/log.ts";
import { compileChain } from "../src/processors/chain.ts";
import { builtinProcessors } from "../src/processors/mod.ts";
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { parse } from "yaml";
import { buildPool, POOL_SIZE, scenario, type ScenarioName } from "./_scenarios.ts";
import { mapDedupe } from "./baseline_processors.ts";

const encoder = new TextEncoder();

function messages(malformed: boolean): InboundMessage[] {
  const pool = buildPool({ malformed });
  return pool.tails.map((t, i) => ({
    subject: pool.subjects[i]!,
    data: encoder.encode(`{"ts":1718000000000.123${t}`),
    headers: undefined,
  }));
}

let published = 0;
// Stands in for the managed client: what NatsSink calls on it.
const client = {
  connected: true,
  publish(_subject: string, data: Uint8Array) {
    published += data.length;
    return undefined;
  },
  flush: () => Promise.resolve(),
} as unknown as NatsConnector;

/**
 * A started pipeline whose source is called directly.
 *
 * @param filter The top-level filter.
 * @param sink The sink subject.
 * @param processors The `processors:` list as parsed from YAML.
 * @returns Its message handler, or undefined when Sluice rejects the chain (a kind not there yet).
 */
async function pipeline(
  filter: string | undefined,
  sink: string,
  processors?: unknown,
): Promise<MessageHandler | undefined> {
  const chain = compileChain(builtinProcessors(), filter, processors, { separator: "." });
  if (chain.problems.length > 0) {
    const why = `skipped (${sink}): ${JSON.stringify(chain.problems)}\n`;
    Deno.stderr.writeSync(new TextEncoder().encode(why));
    return undefined;
  }
  let handler: MessageHandler | undefined;
  const source: Source = {
    start: (h) => {
      handler = h;
      return Promise.resolve();
    },
    drain: () => Promise.resolve(),
  };
  const connector = {
    name: "local",
    type: "nats",
    acquire: () => Promise.resolve(),
    release: () => Promise.resolve(),
    createSource: () => source,
    createSink: (config: unknown) => new NatsSink(client, config as NatsSinkConfig),
  } as unknown as Connector<unknown, unknown>;
  const decl = {
    name: "bench",
    source: { connector: "local", settings: { subject: "sensors.temperature.>" } },
    filter,
    processors: chain.processors,
    sinks: [{ connector: "local", settings: { subject: sink, pass_headers: false } }],
    deadLetter: undefined,
    fingerprint: "",
    location: { file: "bench", line: 1, column: 1 },
  } as unknown as PipelineDecl;
  const log = createLogger({ level: "error", write: () => {} });
  const p = new Pipeline(decl, () => connector, log);
  await p.start();
  return handler!;
}

/** The `processors:` of a bench scenario's pipeline, as YAML parses them. */
function processorsOf(name: ScenarioName, pipelineName: string): unknown {
  const config = parse(scenario(name).yaml) as {
    pipelines: Record<string, { processors?: unknown }>;
  };
  return config.pipelines[pipelineName]?.processors;
}

const msgs = messages(false);
const filterPipeline = (await pipeline("temperature > 30", "alerts.high-value"))!;
const templatePipeline = (await pipeline("temperature > 30", "alerts.{site}"))!;
const passPipeline = (await pipeline("true", "alerts.all"))!;
const dedupePipeline = await pipeline(
  undefined,
  "alerts.changed",
  processorsOf("map-dedupe", "dedupe"),
);

const decoder = new TextDecoder("utf-8", { fatal: true });
const handWritten = (msg: InboundMessage) => {
  try {
    const e = JSON.parse(decoder.decode(msg.data));
    if (e.temperature > 30) client.publish("alerts.high-value", msg.data, undefined);
  } catch {
    // counted by a real program
  }
};

const counts = () => ({
  name: "bench",
  in: 0,
  passed: 0,
  filtered: 0,
  deadLettered: 0,
  errors: 0,
  acked: 0,
});
const handDedupe = mapDedupe(client as unknown as NatsConnection, counts(), "alerts.changed");

const each = (h: (m: InboundMessage) => void) => () => {
  for (let i = 0; i < POOL_SIZE; i++) h(msgs[i]!);
};

Deno.bench("hand-written: decode + parse + compare + publish (×1000)", {
  group: "filter",
  baseline: true,
}, each(handWritten));
Deno.bench("sluice pipeline: temperature > 30 (×1000)", { group: "filter" }, each(filterPipeline));
Deno.bench("sluice pipeline: templated sink (×1000)", { group: "filter" }, each(templatePipeline));
Deno.bench("sluice pipeline: filter true (×1000)", { group: "filter" }, each(passPipeline));

Deno.bench("hand-written: map + dedupe (×1000)", {
  group: "map-dedupe",
  baseline: true,
}, each((m) => handDedupe(null, m as unknown as Msg)));
if (dedupePipeline) {
  Deno.bench(
    "sluice pipeline: map + dedupe (×1000)",
    { group: "map-dedupe" },
    each(dedupePipeline),
  );
}
