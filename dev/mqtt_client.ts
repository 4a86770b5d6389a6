/**
 * MQTT.js clients for tests: a device or watcher that publishes and collects messages. Apart from
 * the broker launcher (`mosquitto.ts`), which must not load MQTT.js: programs that only start a
 * broker (the bench) then need no `--allow-env` for MQTT.js's dependencies.
 *
 * @module
 */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { Collector } from "./wait.ts";

/** A message a test client received. */
export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  /** MQTT 5 user properties. */
  userProperties: Record<string, string | string[]> | undefined;
}

/** An MQTT.js client for a test (MQTT 5 unless told otherwise), ended on dispose. */
export async function testClient(
  url: string,
  options: IClientOptions = {},
): Promise<MqttClient & AsyncDisposable> {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    clientId: `test-${crypto.randomUUID().slice(0, 8)}`,
    ...options,
  });
  return Object.assign(client, {
    [Symbol.asyncDispose]: () => client.endAsync(true).catch(() => {}),
  });
}

/** Subscribes `client` to `filter` and collects what arrives, in order. */
export async function collect(
  client: MqttClient,
  filter: string,
  qos: 0 | 1 = 1,
): Promise<Collector<Received>> {
  const c = new Collector<Received>();
  client.on("message", (topic, payload, packet) => {
    if (!topicMatchesFilter(filter, topic)) return;
    c.push({
      topic,
      payload: payload.toString(),
      retain: packet.retain,
      userProperties: packet.properties?.userProperties,
    });
  });
  await client.subscribeAsync(filter, { qos });
  return c;
}

function topicMatchesFilter(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length || (f[i] !== "+" && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}
