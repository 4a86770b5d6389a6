/**
 * Shared pieces of the delivery-guarantee tests (JetStream, outbox, bad input): a config
 * directory, test clients, and collectors of event ids.
 *
 * @module
 */
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { Collector } from "../dev/wait.ts";

export { type ConfigDir, configDir } from "../dev/config_dir.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A connector declaration that reconnects fast, as fault tests need. */
export function natsConnector(name: string, url: string, extra = ""): string {
  return `  ${name}:
    type: nats
    servers: ${url}
    name: sluice-${name}
    reconnect: { wait: 100ms, jitter: 50ms }
${extra}`;
}

/** A test client that reconnects forever, closed on dispose. */
export async function client(server: NatsServer): Promise<NatsConnection & AsyncDisposable> {
  const nc = await connect({
    servers: server.url,
    name: "delivery-test-client",
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
  });
  return Object.assign(nc, {
    [Symbol.asyncDispose]: () => nc.close().catch(() => {}),
  });
}

/** JetStream management through `nc`. */
export function manager(nc: NatsConnection): Promise<JetStreamManager> {
  return jetstreamManager(nc);
}

/** Encodes one test event. */
export function event(id: number, fields: Record<string, unknown> = {}): Uint8Array {
  return enc.encode(JSON.stringify({ id: `e-${id}`, n: id, temperature: 31, ...fields }));
}

/** Collects the distinct event ids published on `subject`, and counts every arrival. */
export class IdCollector {
  readonly ids = new Set<string>();
  arrivals = 0;
  readonly #changes = new Collector<number>();

  /** Records the id of a payload; payloads without one are ignored. */
  add(data: Uint8Array): void {
    this.arrivals++;
    try {
      const id = (JSON.parse(dec.decode(data)) as { id?: unknown }).id;
      if (typeof id === "string") this.ids.add(id);
    } catch { /* not an event of ours */ }
    this.#changes.push(this.ids.size);
  }

  /** Waits until `count` distinct ids arrived. */
  async waitForIds(count: number, ms: number, what: string): Promise<void> {
    if (this.ids.size >= count) return;
    await this.#changes.waitFor((n) => n >= count, ms, `${what} (${count} distinct ids)`);
  }

  /** Ids of `e-0` .. `e-(count-1)` that never arrived. */
  missing(count: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < count; i++) if (!this.ids.has(`e-${i}`)) out.push(`e-${i}`);
    return out;
  }
}

/** Subscribes to `subject` and collects event ids. */
export async function collectIds(nc: NatsConnection, subject: string): Promise<IdCollector> {
  const ids = new IdCollector();
  nc.subscribe(subject, { callback: (_err, msg) => ids.add(msg.data) });
  await nc.flush();
  return ids;
}

/** Starts `sluice run` on one config file and waits for "started". */
export async function startSluice(
  file: string,
  env: Record<string, string> = {},
): Promise<SluiceProcess> {
  const sluice = SluiceProcess.start(["run", "--log-format", "json", file], { env });
  await sluice.waitForMsg("started", 30_000);
  return sluice;
}

/** Publishes `count` events to `subject`, flushing every `every` so the publisher stays flat. */
export async function publishEvents(
  nc: NatsConnection,
  subject: string,
  from: number,
  count: number,
  every = 1000,
): Promise<void> {
  for (let i = from; i < from + count; i++) {
    nc.publish(subject, event(i));
    if ((i - from + 1) % every === 0) await nc.flush();
  }
  await nc.flush();
}

/**
 * Resident set size of a process in KiB, from /proc/<pid>/status. Read through `cat`: Deno grants
 * reading another process's /proc files only with --allow-all, which the test task does not have.
 */
export async function rssKiB(pid: number): Promise<number> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`], stderr: "null" })
    .output();
  const status = new TextDecoder().decode(out.stdout);
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return m ? Number(m[1]) : 0;
}
