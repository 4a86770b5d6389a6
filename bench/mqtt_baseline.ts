/**
 * The hand-written MQTT baseline of the `mqtt-filter` scenario: what a careful developer would
 * write with MQTT.js to do the job of an MQTT → filter → MQTT pipeline. Subscribes to
 * `sensors/temperature/#` with QoS 0, decodes with a fatal TextDecoder and JSON.parse, tests
 * `temperature > 30` and publishes the original bytes to `alerts/high-value` with QoS 0.
 *
 * Usage: `deno run --allow-net=127.0.0.1 --allow-env --allow-read --allow-sys=hostname
 * bench/mqtt_baseline.ts <mqtt-url>`. Logs `started` once subscribed and, on SIGTERM, one
 * `pipeline summary` line like Sluice.
 *
 * @module
 */
import mqtt from "mqtt";
import { MQTT, report } from "./_scenarios.ts";

const decoder = new TextDecoder("utf-8", { fatal: true });

async function main(url: string): Promise<void> {
  const c = { in: 0, passed: 0, filtered: 0, errors: 0 };
  const client = await mqtt.connectAsync(url, {
    clientId: "baseline-bench",
    clean: true,
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  client.on("message", (_topic, payload) => {
    c.in++;
    try {
      const e = JSON.parse(decoder.decode(payload));
      if (e.temperature > 30) {
        c.passed++;
        client.publish(MQTT.sinkTopic, payload, { qos: 0 });
      } else c.filtered++;
    } catch {
      c.errors++;
    }
  });
  await client.subscribeAsync(MQTT.sourceFilter, { qos: 0 });
  report("started", { pipelines: 1 });
  const { promise: stopped, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", resolve);
  await stopped;
  await client.endAsync();
  report("pipeline summary", {
    pipeline: "mqtt-filter",
    in: c.in,
    passed: c.passed,
    filtered: c.filtered,
    dead_lettered: 0,
    errors: c.errors,
  });
}

if (import.meta.main) {
  const [url] = Deno.args;
  if (url === undefined) {
    report("usage: mqtt_baseline.ts <mqtt-url>");
    Deno.exit(2);
  }
  await main(url);
}
