/**
 * The sockets of an MQTT connector. Sluice opens them itself (MQTT.js takes a stream builder) so
 * that it walks the URL list for fail-over, knows which broker a connection goes to, and MQTT.js
 * reads no proxy settings from the environment. Loaded with MQTT.js on the first connect
 * (`library.ts`), so that Node's net and tls stay out of a gateway without an MQTT connector.
 *
 * @module
 */
import { createConnection, isIP } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { IStream } from "mqtt";
import type { TlsFiles } from "./connection.ts";
import type { BrokerUrl } from "./schema.ts";

/** Opens the socket to `url`: TCP, or TLS with the broker's certificate and host verified. */
export function openSocket(url: BrokerUrl, files: TlsFiles): IStream {
  if (url.protocol === "mqtt") return createConnection({ host: url.host, port: url.port });
  return tlsConnect({
    host: url.host,
    port: url.port,
    ...(isIP(url.host) === 0 ? { servername: url.host } : {}),
    rejectUnauthorized: true,
    ...files,
  });
}
