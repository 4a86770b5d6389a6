/**
 * Shared pieces of the delivery-guarantee tests (JetStream, outbox, bad input): a config
 * directory, test clients, and collectors of event ids.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  DeliverPolicy,
  jetstream,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { NatsServer } from "../dev/nats_server.ts";
import { SluiceProcess } from "../dev/sluice_process.ts";
import { Collector, pollUntil } from "../dev/wait.ts";

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

/** Kills the `uplink` server and waits until Sluice's connector of that name has seen it go. */
export async function killUplink(
  uplink: NatsServer,
  sluice: SluiceProcess,
  connector = "uplink",
): Promise<void> {
  await uplink.kill();
  await sluice.waitForLog(
    (r) => r.msg === "connector disconnected" && r.connector === connector,
    20_000,
    `Sluice to see connector "${connector}" disconnected`,
  );
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

/** Reads every message of stream `stream` (from its start) and collects the event ids. */
export async function storedIds(
  nc: NatsConnection,
  expected: number,
  stream = "UP",
): Promise<IdCollector> {
  const ids = new IdCollector();
  const consumer = await jetstream(nc).consumers.get(stream, {
    deliver_policy: DeliverPolicy.All,
  });
  while (ids.arrivals < expected) {
    const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
    let got = 0;
    for await (const m of batch) {
      ids.add(m.data);
      got++;
    }
    if (got === 0) break;
  }
  return ids;
}

/** Messages stream `stream` holds. */
export async function streamCount(jsm: JetStreamManager, stream = "UP"): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

/**
 * Waits until stream UP on `uplink` holds `total` events (else fails saying how many are lost),
 * then asserts that every id is there and none twice (Nats-Msg-Id dropped the duplicates).
 */
export async function assertAllStored(
  uplink: NatsServer,
  total: number,
  ms = 60_000,
): Promise<void> {
  await using up = await client(uplink);
  const jsm = await manager(up);
  try {
    await pollUntil(
      async () => (await streamCount(jsm)) >= total ? true : undefined,
      ms,
      `${total} events in the uplink stream`,
    );
  } catch (e) {
    const stored = await streamCount(jsm);
    throw new Error(`${total - stored} of ${total} events lost (${stored} stored)`, { cause: e });
  }
  const ids = await storedIds(up, total);
  assert.deepEqual(ids.missing(total), []);
  assert.equal(await streamCount(jsm), total, "duplicates were dropped by Nats-Msg-Id");
}
