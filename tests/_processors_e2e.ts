/**
 * Helpers of the processors' end-to-end tests: a connector declaration, a test client, a
 * collector of messages, and Sluice started on a config file.
 *
 * @module
 */
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import type { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { Collector } from "../dev/wait.ts";

/** A `connectors:` section with one NATS connector named `local`. */
export function connector(url: string, name = "sluice-processors"): string {
  return `connectors:
  local:
    type: nats
    servers: ${url}
    name: ${name}
    reconnect: { wait: 100ms, jitter: 50ms }
`;
}

/** A test client, closed on dispose. */
export async function client(server: NatsServer): Promise<NatsConnection & AsyncDisposable> {
  const nc = await connect({ servers: server.url, name: "processors-test-client" });
  return Object.assign(nc, { [Symbol.asyncDispose]: () => nc.close().catch(() => {}) });
}

/** Collects the messages of `subject`. */
export function collect(nc: NatsConnection, subject: string): Collector<Msg> {
  const c = new Collector<Msg>();
  nc.subscribe(subject, { callback: (_err, msg) => c.push(msg) });
  return c;
}

/** Runs `sluice run` on `file` with JSON logs and waits until it has started. */
export async function startSluice(file: string, args: string[] = []): Promise<SluiceProcess> {
  const sluice = SluiceProcess.start(["run", "--log-format", "json", ...args, file]);
  await sluice.waitForMsg("started");
  return sluice;
}
