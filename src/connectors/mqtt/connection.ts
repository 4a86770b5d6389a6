/**
 * What one connection attempt needs: MQTT.js client options from a declaration and the TLS
 * files. The sockets are opened by `socket.ts`, loaded with MQTT.js on the first connect.
 *
 * @module
 */
import type { IClientOptions } from "mqtt";
import { RuntimeError } from "../../errors.ts";
import { describeMissing, missingPermission } from "../../permissions.ts";
import { errorText } from "./failures.ts";
import type { MqttConnectorConfig } from "./schema.ts";

/** PEM contents for TLS connections. */
export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** MQTT.js options: no reconnecting or resubscribing of its own (the connector does both). */
export function clientOptions(c: MqttConnectorConfig, clientId: string): IClientOptions {
  const options: IClientOptions = {
    manualConnect: true,
    clientId,
    clean: c.clean_session,
    protocolVersion: c.version,
    keepalive: Math.ceil(c.keepalive / 1000),
    connectTimeout: c.connect_timeout,
    reconnectPeriod: 0,
    resubscribe: false,
    // QoS 0 published while disconnected is refused rather than queued without bound.
    queueQoSZero: false,
    // MQTT.js formats its debug lines even when debugging is off: 3–4 % of the busy time of an
    // MQTT pipeline went there. The connector logs what matters itself.
    log: () => {},
  };
  if (c.version === 5) {
    // Receive Maximum: the broker holds back QoS 1 messages beyond it until some are PUBACKed.
    options.properties = { receiveMaximum: c.max_in_flight };
    if (!c.clean_session) {
      options.properties.sessionExpiryInterval = Math.floor(c.session_expiry / 1000);
    }
  }
  if (c.auth) {
    options.username = c.auth.username;
    if (c.auth.password !== undefined) options.password = c.auth.password;
  }
  if (c.will) {
    options.will = {
      topic: c.will.topic,
      payload: c.will.payload,
      qos: c.will.qos,
      retain: c.will.retain,
    };
  }
  return options;
}

/** Reads the declaration's TLS files (once per open, so a renewed certificate is picked up). */
export async function readTlsFiles(c: MqttConnectorConfig, connector: string): Promise<TlsFiles> {
  const t = c.tls;
  const files: TlsFiles = {};
  if (t?.ca_file) files.ca = await readFile(t.ca_file, connector, "tls.ca_file");
  if (t?.cert_file) files.cert = await readFile(t.cert_file, connector, "tls.cert_file");
  if (t?.key_file) files.key = await readFile(t.key_file, connector, "tls.key_file");
  return files;
}

async function readFile(path: string, connector: string, key: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    const missing = missingPermission(e);
    throw new RuntimeError(
      missing ? "permission" : "tls_file",
      `Connector "${connector}": cannot read ${key} "${path}": ${
        missing ? describeMissing(missing) : errorText(e)
      }`,
      { cause: e },
    );
  }
}
