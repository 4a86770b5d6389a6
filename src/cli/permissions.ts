/**
 * `sluice permissions COMMAND [ARGS...]`: the Deno permission flags that `sluice COMMAND ARGS...`
 * needs, derived from the configuration it is given, one flag per line. The installed `sluice`
 * launcher (deploy/install-cli.sh) runs this first and then Sluice with exactly these flags, so
 * running your own directory is one short command and the long-running process stays narrow:
 *
 * - read: the given paths, the files connector declarations name (keys ending in `_file`: creds,
 *   NKey seeds, certificates), and outbox directories;
 * - write: outbox directories (`buffer.path` of sinks and dead letters) and `fleet.state_dir`;
 * - net: the hosts of connector URLs (with the addresses a host name resolves to, which Deno
 *   checks too when the Node transport looks it up) and `health.listen`;
 * - env: the `${VAR}`s the files use, plus the YAML parser's two debug switches;
 * - sys: `hostname` (the default of `health.instance`).
 *
 * Permissions are fixed when a process starts: a reload (SIGHUP, `--watch`) that adds a host, an
 * outbox path or a variable fails to apply; restart the launcher to grant them.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse } from "yaml";
import type { Config } from "../config/config.ts";
import { interpolate } from "../config/interpolate.ts";
import { loadConfig } from "../config/load.ts";
import { builtinRegistry } from "../connectors/mod.ts";
import { ConfigErrors, UsageError } from "../errors.ts";
import type { Invocation } from "./args.ts";

/** Variables the YAML parser reads (debug switches of `npm:yaml`). */
export const YAML_ENV = ["LOG_TOKENS", "LOG_STREAM"] as const;

/** What a command may do, by Deno permission kind. */
export interface Grants {
  read: Set<string>;
  write: Set<string>;
  net: Set<string>;
  env: Set<string>;
  sys: Set<string>;
}

function emptyGrants(): Grants {
  return { read: new Set(), write: new Set(), net: new Set(), env: new Set(), sys: new Set() };
}

/**
 * The Deno flags of `grants`, in a stable order, e.g. `--allow-read=/etc/sluice`.
 *
 * @param grants What to allow.
 * @returns One flag per kind that allows anything.
 * @throws {UsageError} When a value holds a comma, which Deno's lists cannot express.
 */
export function denoFlags(grants: Grants): string[] {
  const flags: string[] = [];
  for (const kind of ["read", "write", "net", "env", "sys"] as const) {
    const values = [...grants[kind]].sort();
    if (values.length === 0) continue;
    const comma = values.find((v) => v.includes(","));
    if (comma !== undefined) {
      throw new UsageError(
        `cannot grant ${kind} access to "${comma}": Deno permission lists cannot hold a comma; ` +
          "rename the file or directory",
      );
    }
    flags.push(`--allow-${kind}=${values.join(",")}`);
  }
  return flags;
}

const VAR = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)/g;

/** Adds the `${VAR}` names used in any string of `value` (`$$` escapes are skipped). */
function collectVars(value: unknown, into: Set<string>): void {
  if (typeof value === "string") {
    for (const m of value.matchAll(VAR)) if (m[1]) into.add(m[1]);
  } else if (Array.isArray(value)) { for (const v of value) collectVars(v, into); }
  else if (typeof value === "object" && value !== null) {
    for (const v of Object.values(value)) collectVars(v, into);
  }
}

/** The YAML files `paths` stand for, as `sluice run` reads them (directories not recursive). */
async function configFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await Deno.stat(path).catch(() => undefined);
    if (!info?.isDirectory) {
      files.push(path);
      continue;
    }
    const names: string[] = [];
    for await (const e of Deno.readDir(path)) {
      if (/\.ya?ml$/.test(e.name)) names.push(e.name);
    }
    files.push(...names.sort().map((n) => `${path}/${n}`));
  }
  return files;
}

/** `host:port` as Deno's `--allow-net` writes it (IPv6 in brackets); without port: any port. */
function netTarget(hostname: string, port: number | undefined): string {
  const host = hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname;
  return port === undefined || port === 0 ? host : `${host}:${port}`;
}

/** An IPv4 address, or an IPv6 one (it has a colon): nothing to look up. */
const IP = /^(\d{1,3}(\.\d{1,3}){3}|\[?[0-9a-fA-F]*:[0-9a-fA-F:.]*\]?)$/;

/** A host and port from URL text; scheme-less `host:port` under a URL key is read as such. */
function hostOf(text: string, isUrlKey: boolean): { hostname: string; port?: number } | undefined {
  if (!text.includes("://") && !isUrlKey) return undefined;
  try {
    const url = new URL(text.includes("://") ? text : `x-sluice://${text}`);
    if (!url.hostname) return undefined;
    return url.port
      ? { hostname: url.hostname, port: Number(url.port) }
      : { hostname: url.hostname };
  } catch {
    return undefined;
  }
}

/**
 * Walks parsed connector settings for URLs (net) and `*_file` paths (read). Values under the
 * type's `urlKeys` are addresses even without a scheme (`host:port`); elsewhere a string is an
 * address when it has one (`nats://`, `mqtt://`...).
 */
function collectConnector(
  value: unknown,
  urlKeys: ReadonlySet<string>,
  hosts: { hostname: string; port?: number }[],
  files: Set<string>,
  key = "",
  underUrlKey = false,
): void {
  if (typeof value === "string") {
    if (key.endsWith("_file")) files.add(value);
    const host = hostOf(value, underUrlKey);
    if (host) hosts.push(host);
  } else if (Array.isArray(value)) {
    for (const v of value) collectConnector(v, urlKeys, hosts, files, key, underUrlKey);
  } else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      collectConnector(v, urlKeys, hosts, files, k, key === "" && urlKeys.has(k));
    }
  }
}

/** Options of {@link derivePermissions}. */
export interface DeriveOptions {
  /** Looks up `${VAR}` values. @default Deno.env.get */
  env?: (name: string) => string | undefined;
  /** Resolves a host name to addresses; failures leave the name alone. @default node:dns lookup */
  resolveHost?: (hostname: string) => Promise<string[]>;
  /** Base of relative paths. @default Deno.cwd() */
  cwd?: string;
}

async function systemResolve(hostname: string): Promise<string[]> {
  const found = await lookup(hostname, { all: true });
  return found.map((a) => a.address);
}

/**
 * The permissions `inv` needs. For `run` and `check` it reads the configuration; when that is
 * invalid it grants what reading and reporting it takes, so the command itself shows the errors.
 *
 * @param inv The command line of the command to be run.
 * @param options Environment, resolver and working directory.
 * @returns The grants.
 */
export async function derivePermissions(
  inv: Invocation,
  options: DeriveOptions = {},
): Promise<Grants> {
  const grants = emptyGrants();
  const cwd = options.cwd ?? Deno.cwd();
  const abs = (p: string) => isAbsolute(p) ? p : resolve(cwd, p);
  if (inv.command === "status") {
    const url = new URL(inv.url);
    const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
    grants.net.add(netTarget(url.hostname, port));
    return grants;
  }
  if (inv.command !== "run" && inv.command !== "check") return grants;

  for (const p of inv.paths) grants.read.add(abs(p));
  grants.sys.add("hostname");
  for (const name of YAML_ENV) grants.env.add(name);
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  // Named files are granted from the raw files too, so that a configuration the loader refuses
  // (a malformed certificate, say) is reported as such, not as a missing permission.
  const named = new Set<string>();
  for (const file of await configFiles(inv.paths.map(abs))) {
    const text = await Deno.readTextFile(file).catch(() => undefined);
    if (text === undefined) continue;
    let doc: unknown;
    try {
      doc = parse(text);
    } catch {
      continue; // A file that does not parse: the command reports it.
    }
    collectVars(doc, grants.env);
    collectConnector(doc, new Set(), [], named);
  }
  for (const f of named) {
    const r = interpolate(f, env);
    if ("value" in r && r.value !== "") grants.read.add(abs(r.value));
  }

  let config: Config;
  try {
    config = await loadConfig(inv.paths.map(abs), { registry: builtinRegistry(), env });
  } catch (e) {
    if (e instanceof ConfigErrors) return grants;
    throw e;
  }
  const hosts: { hostname: string; port?: number }[] = [];
  for (const decl of config.connectors.values()) {
    const files = new Set<string>();
    collectConnector(decl.settings, new Set(decl.type.urlKeys), hosts, files);
    for (const f of files) grants.read.add(abs(f));
  }
  if (inv.command === "check") return grants;

  for (const pipeline of config.pipelines.values()) {
    for (const sink of [...pipeline.sinks, pipeline.deadLetter]) {
      if (!sink?.buffer) continue;
      const dir = dirname(abs(sink.buffer.path));
      grants.read.add(dir);
      grants.write.add(dir);
    }
  }
  // The fleet keeps the last applied deployed pipelines there (a temporary file, then a rename).
  if (config.fleet) {
    grants.read.add(abs(config.fleet.stateDir));
    grants.write.add(abs(config.fleet.stateDir));
  }
  const listen = config.health?.listen;
  if (listen) hosts.push({ hostname: listen.hostname, port: listen.port });
  const resolveHost = options.resolveHost ?? systemResolve;
  for (const { hostname, port } of hosts) {
    grants.net.add(netTarget(hostname, port));
    if (IP.test(hostname)) continue;
    const addresses = await resolveHost(hostname).catch(() => [] as string[]);
    for (const a of addresses) grants.net.add(netTarget(a, port));
  }
  return grants;
}
