/**
 * nats.js's Node transport, for the one connection Deno's TLS cannot make (a client certificate;
 * see `deno_transport.ts`). Imported only then, so that Node's net and tls stay out of a gateway
 * without one (docs/performance.md, "Memory").
 *
 * @module
 */
export { NodeTransport } from "@nats-io/transport-node/lib/node_transport.js";
