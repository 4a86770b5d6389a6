/**
 * The layout of the fleet's KV bucket: one key per deployed pipeline and target.
 *
 * - `all.<pipeline>`: every gateway
 * - `gw.<id>.<pipeline>`: the gateway with this id
 * - `label.<key>.<value>.<pipeline>`: every gateway with this label
 *
 * A gateway watches `all.>`, `gw.<id>.>` and `label.<k>.<v>.>` for each of its labels; gateway
 * permissions (deploy/nats-server-fleet.conf) follow the same prefixes. When several keys name
 * the same pipeline for one gateway, the most specific target wins (id, then label, then all),
 * and between labels the latest write.
 *
 * @module
 */
import { compareText } from "../order.ts";

/** Who a deployment is for. */
export type Target =
  | { kind: "all" }
  | { kind: "gateway"; id: string }
  | { kind: "label"; key: string; value: string };

/** A token of keys and subjects: gateway ids, label keys and values, pipeline names. */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]+$/;

/** The key of pipeline `name` deployed to `target`. */
export function targetKey(target: Target, name: string): string {
  switch (target.kind) {
    case "all":
      return `all.${name}`;
    case "gateway":
      return `gw.${target.id}.${name}`;
    case "label":
      return `label.${target.key}.${target.value}.${name}`;
  }
}

/** Reads a key of the bucket; undefined for a key that is not a deployment. */
export function parseKey(key: string): { target: Target; pipeline: string } | undefined {
  const t = key.split(".");
  if (t[0] === "all" && t.length === 2) return { target: { kind: "all" }, pipeline: t[1]! };
  if (t[0] === "gw" && t.length === 3) {
    return { target: { kind: "gateway", id: t[1]! }, pipeline: t[2]! };
  }
  if (t[0] === "label" && t.length === 4) {
    return { target: { kind: "label", key: t[1]!, value: t[2]! }, pipeline: t[3]! };
  }
  return undefined;
}

/** `all`, `gw:<id>`, `label:<k>=<v>`: a target as people read it. */
export function describeTarget(target: Target): string {
  switch (target.kind) {
    case "all":
      return "all";
    case "gateway":
      return `gw:${target.id}`;
    case "label":
      return `label:${target.key}=${target.value}`;
  }
}

/** The key filters a gateway watches: what the bucket holds for it. */
export function gatewayFilters(id: string, labels: Readonly<Record<string, string>>): string[] {
  return [
    "all.>",
    `gw.${id}.>`,
    ...Object.entries(labels).sort(([a], [b]) => compareText(a, b)).map(([k, v]) =>
      `label.${k}.${v}.>`
    ),
  ];
}

/** The key filters of one pipeline under every target, for its history. */
export function pipelineFilters(name: string): string[] {
  return [`all.${name}`, `gw.*.${name}`, `label.*.*.${name}`];
}

/** Higher is more specific: a gateway's own key wins over a label's, which wins over `all`. */
export function specificity(target: Target): number {
  return target.kind === "gateway" ? 3 : target.kind === "label" ? 2 : 1;
}

/** Subject of gateway `id`'s service endpoint `endpoint` (status, pipelines, reload, drain). */
export function endpointSubject(id: string, endpoint: string): string {
  return `sluice.fleet.${id}.${endpoint}`;
}

/** Subject on which gateway `id` publishes a report after each apply. */
export function reportSubject(id: string): string {
  return `sluice.fleet.report.${id}`;
}

/** The service name every gateway registers under (`$SRV.PING.sluice`). */
export const SERVICE_NAME = "sluice";
