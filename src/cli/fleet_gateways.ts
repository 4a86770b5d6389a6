/**
 * `sluice fleet ls` and `sluice fleet status`: the gateways, found with the NATS services
 * protocol (`$SRV.PING.sluice`), and each one's status endpoint.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { Svcm } from "@nats-io/services";
import { endpointSubject, SERVICE_NAME } from "../fleet/keys.ts";
import type { GatewayStatus } from "../fleet/report.ts";
import { duration, labelText, table } from "./fleet_format.ts";
import type { FleetInvocation } from "./fleet_args.ts";
import { EXIT, type Output } from "./run.ts";

/** How long one gateway's status endpoint may take to answer. */
const STATUS_TIMEOUT_MS = 3000;

/** Asks gateway `id` for its status; undefined when nobody answers. */
export async function requestStatus(
  nc: NatsConnection,
  id: string,
): Promise<GatewayStatus | undefined> {
  try {
    const reply = await nc.request(endpointSubject(id, "status"), undefined, {
      timeout: STATUS_TIMEOUT_MS,
    });
    return reply.json<GatewayStatus>();
  } catch {
    return undefined;
  }
}

/** Gateway ids that answer `$SRV.PING.sluice` within `waitMs`. */
export async function discover(nc: NatsConnection, waitMs: number): Promise<string[]> {
  // Every gateway that answers within `waitMs` (services 3.0.0-25 is typed against an older core).
  const client = new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]).client(
    { maxWait: waitMs, strategy: "timer" } as Parameters<Svcm["client"]>[0],
  );
  const ids = new Set<string>();
  for await (const identity of await client.ping(SERVICE_NAME)) {
    const id = identity.metadata?.id;
    if (id) ids.add(id);
  }
  return [...ids].sort();
}

/** `sluice fleet ls`. */
export async function listGateways(
  nc: NatsConnection,
  inv: FleetInvocation,
  output: Output,
): Promise<number> {
  const ids = await discover(nc, inv.waitMs);
  const statuses = await Promise.all(ids.map((id) => requestStatus(nc, id)));
  const rows = ids.map((id, i) => ({ id, status: statuses[i] }));
  if (inv.json) {
    output.out(
      JSON.stringify(
        rows.map(({ id, status }) =>
          status ? summary(status) : { id, error: "no answer from its status endpoint" }
        ),
      ),
    );
    return EXIT.ok;
  }
  if (rows.length === 0) {
    output.out("no gateways answered");
    return EXIT.ok;
  }
  output.out(
    table(
      ["ID", "LABELS", "VERSION", "UPTIME", "READY", "PIPELINES"],
      rows.map(({ id, status: s }) =>
        s
          ? [
            s.id,
            labelText(s.labels),
            s.version,
            duration(s.uptimeSeconds),
            s.ready ? "yes" : "no",
            pipelineCounts(s),
          ]
          : [id, "?", "?", "?", "?", "no answer"]
      ),
    ).join("\n"),
  );
  return EXIT.ok;
}

function summary(s: GatewayStatus) {
  return {
    id: s.id,
    labels: s.labels,
    version: s.version,
    uptimeSeconds: s.uptimeSeconds,
    ready: s.ready,
    synced: s.synced,
    pipelines: s.pipelines.filter((p) => p.state !== "absent").map((p) => p.name),
    rejected: s.pipelines.filter((p) => p.outcome === "rejected").map((p) => p.name),
  };
}

function pipelineCounts(s: GatewayStatus): string {
  const local = s.pipelines.filter((p) => p.origin === "local").length;
  const deployed = s.pipelines.filter((p) => p.origin === "deployed" && p.state !== "absent")
    .length;
  const rejected = s.pipelines.filter((p) => p.outcome === "rejected").length;
  return `${local} local, ${deployed} deployed${rejected ? `, ${rejected} rejected` : ""}`;
}

/** `sluice fleet status ID`. */
export async function gatewayStatus(
  nc: NatsConnection,
  inv: FleetInvocation,
  output: Output,
): Promise<number> {
  const id = inv.operands[0]!;
  const s = await requestStatus(nc, id);
  if (!s) {
    output.err(`sluice: gateway "${id}" did not answer: it is offline, or no gateway has this id`);
    return EXIT.failure;
  }
  if (inv.json) {
    output.out(JSON.stringify(s));
    return EXIT.ok;
  }
  output.out(
    `gateway ${s.id}  labels ${labelText(s.labels)}  version ${s.version}  up ${
      duration(s.uptimeSeconds)
    }  ready ${s.ready ? "yes" : "no"}${s.synced ? "" : "  (not synced: running from state_dir)"}`,
  );
  if (s.lastError) output.out(`control plane: ${s.lastError}`);
  output.out(
    table(
      ["PIPELINE", "ORIGIN", "STATE", "REVISION", "OUTCOME", "ERROR"],
      s.pipelines.map((p) => [
        p.name,
        p.origin,
        p.state,
        p.revision !== undefined
          ? `${p.revision}${p.runningRevision ? ` (running ${p.runningRevision})` : ""}`
          : "-",
        p.outcome ?? "-",
        (p.error ?? "").split("\n")[0] ?? "",
      ]),
    ).join("\n"),
  );
  for (const p of s.pipelines) {
    const lines = (p.error ?? "").split("\n");
    if (lines.length > 1) { for (const line of lines) output.out(`  ${p.name}: ${line}`); }
  }
  return EXIT.ok;
}
