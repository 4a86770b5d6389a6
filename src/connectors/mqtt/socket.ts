/**
 * The sockets of an MQTT connector. Sluice opens them itself (MQTT.js takes a stream builder) so
 * that it walks the URL list for fail-over, knows which broker a connection goes to, and MQTT.js
 * reads no proxy settings from the environment. Loaded with MQTT.js on the first connect
 * (`library.ts`), and Node's net and tls with it: they are imported dynamically, since a static
 * import of a built-in module sits at the top of the bundle and would load with every Sluice.
 *
 * @module
 */
import type { IStream } from "mqtt";
import type { TlsFiles } from "./connection.ts";
import type { BrokerUrl } from "./schema.ts";

/** Opens the socket to `url`: TCP, or TLS with the broker's certificate and host verified. */
export type SocketOpener = (url: BrokerUrl, files: TlsFiles) => IStream;

/** Loads Node's net and tls and returns the {@linkcode SocketOpener}. */
export async function socketOpener(): Promise<SocketOpener> {
  const [{ createConnection, isIP }, { connect: tlsConnect }] = await Promise.all([
    import("node:net"),
    import("node:tls"),
  ]);
  return (url, files) => {
    if (url.protocol === "mqtt") return createConnection({ host: url.host, port: url.port });
    return tlsConnect({
      host: url.host,
      port: url.port,
      ...(isIP(url.host) === 0 ? { servername: url.host } : {}),
      rejectUnauthorized: true,
      ...files,
    });
  };
}
