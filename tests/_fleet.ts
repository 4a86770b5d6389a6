/**
 * Helpers shared by the fleet tests: gateways as real `sluice run` processes with a `fleet:`
 * section, the operator CLI as a child process, and waits on a gateway's "fleet applied" log.
 */
import { type LogRecord, type RunResult, runSluice, SluiceProcess } from "../dev/sluice_process.ts";

/** How a test gateway is made. */
export interface GatewayOptions {
  id: string;
  labels?: Record<string, string>;
  /** URL of the control plane (the `uplink` connector). */
  uplink: string;
  /** URL of the data plane (the `local` connector); the uplink's by default. */
  local?: string;
  /** Extra connectors (YAML lines under `connectors:`, indented by two). */
  extraConnectors?: string;
  /** Extra settings of the uplink connector (YAML flow-map entries, e.g. `auth: {...}`). */
  uplinkSettings?: string;
  /** Local pipelines (YAML under `pipelines:`). */
  pipelines?: string;
  /** Reuse a state directory (a restarted gateway). */
  stateDir?: string;
  /** `fleet.domain`: the JetStream domain of the bucket (a hub behind a leaf node). */
  domain?: string;
}

/** A running test gateway. */
export interface Gateway extends AsyncDisposable {
  id: string;
  proc: SluiceProcess;
  dir: string;
  stateDir: string;
  file: string;
}

/** Writes a gateway's config and starts `sluice run` on it; resolves once it started. */
export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const dir = await Deno.makeTempDir({ prefix: `sluice-fleet-${o.id}-` });
  const stateDir = o.stateDir ?? `${dir}/state`;
  const labels = Object.entries(o.labels ?? {}).map(([k, v]) => `${k}: ${v}`).join(", ");
  const yaml = `connectors:
  uplink: {type: nats, servers: "${o.uplink}", reconnect: {wait: 250ms, jitter: 50ms}${
    o.uplinkSettings ? `, ${o.uplinkSettings}` : ""
  }}
  local: {type: nats, servers: "${o.local ?? o.uplink}"}
${o.extraConnectors ?? ""}
fleet:
  connector: uplink
  id: ${o.id}
  labels: {${labels}}
  state_dir: ${stateDir}
${o.domain ? `  domain: ${o.domain}\n` : ""}${o.pipelines ? `pipelines:\n${o.pipelines}` : ""}`;
  const file = `${dir}/gateway.yaml`;
  await Deno.writeTextFile(file, yaml);
  const proc = SluiceProcess.start(["run", "--log-format", "json", file]);
  await proc.waitForMsg("started");
  return {
    id: o.id,
    proc,
    dir,
    stateDir,
    file,
    async [Symbol.asyncDispose]() {
      await proc[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Runs `sluice fleet ARGS --server URL`. */
export function fleet(server: string, ...args: string[]): Promise<RunResult> {
  return runSluice(["fleet", ...args, "--server", server]);
}

/** Runs `sluice fleet ARGS --server URL --json` and parses its stdout. */
export async function fleetJson<T>(server: string, ...args: string[]): Promise<T> {
  const r = await fleet(server, ...args, "--json");
  if (r.code !== 0) throw new Error(`fleet ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** The list of a "fleet applied" field (`a@1,b@2`). */
function list(record: LogRecord, field: string): string[] {
  const v = record[field];
  return typeof v === "string" && v !== "" ? v.split(",") : [];
}

/** Waits until `g` applied pipeline `name` at `revision` (it runs it). */
export function applied(g: Gateway, name: string, revision: number): Promise<LogRecord> {
  return g.proc.waitForLog(
    (r) => r.msg === "fleet applied" && list(r, "deployed").includes(`${name}@${revision}`),
    undefined,
    `${g.id} to apply ${name}@${revision}`,
  );
}

/** Waits until `g` rejected pipeline `name` at `revision`. */
export function rejected(g: Gateway, name: string, revision: number): Promise<LogRecord> {
  return g.proc.waitForLog(
    (r) => r.msg === "fleet applied" && list(r, "rejected").includes(`${name}@${revision}`),
    undefined,
    `${g.id} to reject ${name}@${revision}`,
  );
}

/** Waits until `g` applied a state in which `name` is not deployed (after it was). */
export function removed(g: Gateway, name: string): Promise<LogRecord> {
  return g.proc.waitForLog(
    (r) =>
      r.msg === "fleet applied" && list(r, "stopped").includes(name) &&
      !list(r, "deployed").some((d) => d.startsWith(`${name}@`)),
    undefined,
    `${g.id} to remove ${name}`,
  );
}

/** A deployed file: pipeline `name` from `in.<name>` through `processors` to `out.<name>`. */
export async function pipelineFile(
  dir: string,
  name: string,
  body = "",
  connector = "local",
): Promise<string> {
  const file = `${dir}/${name}-${crypto.randomUUID().slice(0, 8)}.yaml`;
  await Deno.writeTextFile(
    file,
    `pipelines:
  ${name}:
    source: {connector: ${connector}, subject: in.${name}}
${body}    sinks: [{connector: ${connector}, subject: out.${name}}]
`,
  );
  return file;
}

/** The revision `fleet deploy --json` reports for its first write. */
export function revisionOf(written: { revision: number }[]): number {
  const first = written[0];
  if (!first) throw new Error("fleet deploy wrote nothing");
  return first.revision;
}
