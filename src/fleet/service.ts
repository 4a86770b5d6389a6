/**
 * This gateway as a NATS service (`$SRV.PING.sluice`, INFO, STATS): its id and labels in the
 * metadata, and endpoints on `sluice.fleet.<id>.<endpoint>` for status, pipelines, reload and
 * drain. Gateway permissions allow answering only these subjects of its own id.
 *
 * @module
 */
import type { FleetDecl } from "../config/config.ts";
import type { ServiceSpec } from "../engine/types.ts";
import { VERSION } from "../version.ts";
import { endpointSubject, SERVICE_NAME } from "./keys.ts";
import type { GatewayStatus } from "./report.ts";

/** What the endpoints do. */
export interface FleetServiceHandlers {
  status(): GatewayStatus;
  /** Reloads the local files; resolves with the status after it. */
  reload(): Promise<GatewayStatus>;
  /** Starts a graceful stop. */
  drain(): void;
}

/** The endpoints every gateway answers. */
export const ENDPOINTS = ["status", "pipelines", "reload", "drain"] as const;

/** The service of gateway `decl.id`. */
export function fleetService(decl: FleetDecl, h: FleetServiceHandlers): ServiceSpec {
  const labels = Object.entries(decl.labels).map(([k, v]) => `${k}=${v}`).join(",");
  return {
    name: SERVICE_NAME,
    version: VERSION,
    description: `Sluice gateway ${decl.id}`,
    metadata: {
      id: decl.id,
      labels,
      bucket: decl.bucket,
      ...Object.fromEntries(Object.entries(decl.labels).map(([k, v]) => [`label.${k}`, v])),
    },
    endpoints: [
      { name: "status", subject: endpointSubject(decl.id, "status"), handle: () => ok(h.status()) },
      {
        name: "pipelines",
        subject: endpointSubject(decl.id, "pipelines"),
        handle: () => ok(h.status().pipelines),
      },
      { name: "reload", subject: endpointSubject(decl.id, "reload"), handle: () => h.reload() },
      {
        name: "drain",
        subject: endpointSubject(decl.id, "drain"),
        handle: () => {
          // Replies first: the stop it starts closes the connection this answer goes out on.
          setTimeout(() => h.drain(), 50);
          return ok({ id: decl.id, draining: true });
        },
      },
    ],
  };
}

function ok<T>(value: T): Promise<T> {
  return Promise.resolve(value);
}
