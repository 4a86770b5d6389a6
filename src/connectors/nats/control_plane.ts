/**
 * The fleet control plane over one NATS connection: JetStream KV watches (one per key filter,
 * since nats-server 2.9 takes one filter subject per consumer) and a service of the NATS services
 * protocol. Nothing here knows what the fleet stores; `src/fleet/` gives the meaning. The JetStream,
 * KV and services clients are imported on first use: only a gateway with `fleet:` needs them.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type { Svcm } from "@nats-io/services";
import type {
  ControlPlane,
  KeyValueChange,
  KeyValueWatch,
  ServiceSpec,
} from "../../engine/types.ts";

/** How long a watch waits for its first entry when the library cannot say how many to expect. */
const QUIET_READY_MS = 250;

/** The cached consumer info the KV watch fetched before delivering (nats.js 3.4 internals). */
interface WatchInternals {
  _data?: { info?: (cached: boolean) => Promise<{ num_pending?: unknown }> };
}

/** A one-line error text for a service error reply (its header may not hold line breaks). */
function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ").slice(0, 300);
}

/** A {@link ControlPlane} on `nc`. */
export class NatsControlPlane implements ControlPlane {
  readonly #nc: NatsConnection;

  constructor(nc: NatsConnection) {
    this.#nc = nc;
  }

  async watch(
    bucket: string,
    filters: readonly string[],
    onChange: (change: KeyValueChange) => void,
    domain?: string,
  ): Promise<KeyValueWatch> {
    const { jetstream, Kvm } = await import("./control_library.ts");
    const kv = await new Kvm(domain ? jetstream(this.#nc, { domain }) : this.#nc).open(bucket);
    const stops: (() => void)[] = [];
    const readies: Promise<void>[] = [];
    try {
      for (const key of filters) {
        const iter = await kv.watch({ key });
        stops.push(() => iter.stop());
        let expected: number | undefined;
        try {
          const info = await (iter as WatchInternals)._data?.info?.(true);
          if (typeof info?.num_pending === "number") expected = info.num_pending;
        } catch {
          // Unknown: fall back to waiting for a quiet moment.
        }
        let markReady!: () => void;
        readies.push(new Promise<void>((resolve) => (markReady = resolve)));
        let seen = 0;
        let quiet: ReturnType<typeof setTimeout> | undefined;
        if (expected === 0) markReady();
        else if (expected === undefined) quiet = setTimeout(markReady, QUIET_READY_MS);
        (async () => {
          for await (const e of iter) {
            seen++;
            try {
              onChange({
                key: e.key,
                value: e.operation === "PUT" ? e.value : undefined,
                revision: e.revision,
              });
            } catch {
              // onChange must not throw; a bug there must not stop the watch.
            }
            if (expected !== undefined ? seen >= expected : e.isUpdate) markReady();
            else if (quiet !== undefined) {
              clearTimeout(quiet);
              quiet = setTimeout(markReady, QUIET_READY_MS);
            }
          }
        })().catch(() => {}).finally(() => {
          clearTimeout(quiet);
          markReady();
        });
      }
    } catch (e) {
      for (const stop of stops) stop();
      throw e;
    }
    return {
      ready: Promise.all(readies).then(() => {}),
      stop: () => stops.forEach((stop) => stop()),
    };
  }

  async addService(spec: ServiceSpec): Promise<{ stop(): Promise<void> }> {
    // @nats-io/services 3.0.0-25 is typed against an older nats-core; at run time it takes ours.
    const nc = this.#nc as unknown as ConstructorParameters<typeof Svcm>[0];
    const { Svcm: Services } = await import("./control_library.ts");
    const service = await new Services(nc).add({
      name: spec.name,
      version: spec.version,
      description: spec.description,
      metadata: spec.metadata,
    });
    for (const endpoint of spec.endpoints) {
      service.addEndpoint(endpoint.name, {
        subject: endpoint.subject,
        handler: (err, msg) => {
          // An exception escaping this callback would close the connection (nats.js reader).
          if (err) return;
          endpoint.handle(msg.data).then(
            (reply) => msg.respond(JSON.stringify(reply)),
            (e) => msg.respondError(500, errorText(e)),
          ).catch(() => {});
        },
      });
    }
    await this.#nc.flush().catch(() => {});
    return {
      stop: async () => {
        await service.stop().catch(() => {});
      },
    };
  }
}
