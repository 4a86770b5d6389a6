/**
 * Parsing of `sluice fleet ...`: the subcommand, its operands, the server and credentials, and
 * the target (`--all`, `--to ID[,ID...]`, `--label k=v`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import { type Target, TOKEN_PATTERN } from "../fleet/keys.ts";
import { DEFAULT_FLEET_BUCKET } from "../config/schema.ts";

/** The subcommands of `sluice fleet`. */
export const FLEET_COMMANDS = [
  "init",
  "ls",
  "deploy",
  "undeploy",
  "history",
  "rollback",
  "status",
] as const;

/** One of {@link FLEET_COMMANDS}. */
export type FleetCommand = typeof FLEET_COMMANDS[number];

/** How to reach the control plane. */
export interface FleetConnection {
  server: string;
  creds?: string;
  user?: string;
  password?: string;
  token?: string;
}

/** A parsed `sluice fleet` command line. */
export interface FleetInvocation {
  command: FleetCommand | "help";
  /** Files (deploy), a pipeline name (undeploy, history, rollback) or a gateway id (status). */
  operands: string[];
  connection: FleetConnection;
  bucket: string;
  /** The JetStream domain holding the bucket, when not the server's own. */
  domain: string | undefined;
  json: boolean;
  /** deploy, undeploy: who for. */
  targets: Target[];
  /** rollback: the revision to restore. */
  revision: number | undefined;
  /** ls: how long to wait for gateways to answer, in milliseconds. */
  waitMs: number;
  /** init: revisions kept per key. */
  history: number;
}

/** Revisions a new bucket keeps per key (the most JetStream KV allows). */
export const DEFAULT_HISTORY = 64;

/** Text of `sluice fleet --help`. */
export const FLEET_HELP = `sluice fleet: deploy pipelines to gateways over NATS (JetStream KV).

Usage:
  sluice fleet init      [--history N]            Create the KV bucket (keeps N revisions per key)
  sluice fleet ls        [--json] [--wait MS]     Gateways: id, labels, version, uptime, ready, pipelines
  sluice fleet deploy    FILE... (--all | --to ID[,ID...] | --label k=v)
                                                  Validate, then write one key per pipeline and target
  sluice fleet undeploy  NAME (--all | --to ID[,ID...] | --label k=v)
  sluice fleet history   NAME [--json]            Every revision of NAME, for every target
  sluice fleet rollback  NAME [--revision N]      Write revision N (default: the one before the last
                                                  change) back to its key
  sluice fleet status    ID [--json]              One gateway's pipelines: applied, rejected, errors

Connection (every command):
  --server URL           nats:// URL of the control plane (default: $NATS_URL)
  --creds FILE | --user USER --password PASS | --token TOKEN
  --bucket NAME          The KV bucket (default: ${DEFAULT_FLEET_BUCKET})
  --domain NAME          The JetStream domain holding the bucket (when connected to a leaf node)

Deployed files hold pipelines: only (connectors and credentials stay on the gateways) and are
read without environment: \${VAR} is an error, \${VAR:-default} takes the default. deploy checks
them as check does, except connector names, which only the gateways know: a gateway rejects a
pipeline naming a connector it does not have, keeps its previous version, and fleet status shows why.

Exit codes: 0 ok, 1 runtime failure (unreachable, refused, no answer), 2 invalid file or usage.`;

/**
 * Parses the arguments after `fleet`.
 *
 * @param env Reads `NATS_URL`.
 * @throws {UsageError}
 */
export function parseFleetInvocation(
  args: readonly string[],
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): FleetInvocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        server: { type: "string" },
        creds: { type: "string" },
        user: { type: "string" },
        password: { type: "string" },
        token: { type: "string" },
        bucket: { type: "string", default: DEFAULT_FLEET_BUCKET },
        domain: { type: "string" },
        json: { type: "boolean", default: false },
        all: { type: "boolean", default: false },
        to: { type: "string" },
        label: { type: "string", multiple: true },
        revision: { type: "string" },
        history: { type: "string" },
        wait: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    throw new UsageError(`${e instanceof Error ? e.message : String(e)}; see sluice fleet --help`);
  }
  const { values: v, positionals } = parsed;
  const [command, ...operands] = positionals;
  const base = {
    operands,
    bucket: v.bucket,
    domain: v.domain,
    json: v.json,
    targets: [] as Target[],
    revision: undefined as number | undefined,
    waitMs: 1000,
    history: DEFAULT_HISTORY,
  };
  const noConnection = { server: "" };
  if (v.help || command === undefined || command === "help") {
    return { command: "help", connection: noConnection, ...base };
  }
  if (!(FLEET_COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(
      `unknown fleet command "${command}": expected ${
        FLEET_COMMANDS.join(", ")
      }; see sluice fleet --help`,
    );
  }
  const cmd = command as FleetCommand;
  if (!/^[A-Za-z0-9_-]+$/.test(v.bucket)) {
    throw new UsageError(`--bucket must be letters, digits, '-' and '_', got "${v.bucket}"`);
  }
  const server = v.server ?? env("NATS_URL");
  if (!server) throw new UsageError("no server: give --server URL or set NATS_URL");
  const auth = [v.creds, v.user, v.token].filter((x) => x !== undefined).length;
  if (auth > 1) throw new UsageError("give one of --creds, --user/--password, --token");
  if (v.password !== undefined && v.user === undefined) {
    throw new UsageError("--password goes with --user");
  }
  const connection: FleetConnection = { server };
  if (v.creds !== undefined) connection.creds = v.creds;
  if (v.user !== undefined) connection.user = v.user;
  if (v.password !== undefined) connection.password = v.password;
  if (v.token !== undefined) connection.token = v.token;

  const expected: Record<FleetCommand, [number, number, string]> = {
    init: [0, 0, ""],
    ls: [0, 0, ""],
    deploy: [1, Infinity, "FILE..."],
    undeploy: [1, 1, "NAME"],
    history: [1, 1, "NAME"],
    rollback: [1, 1, "NAME"],
    status: [1, 1, "ID"],
  };
  const [min, max, what] = expected[cmd];
  if (operands.length < min || operands.length > max) {
    throw new UsageError(
      max === 0
        ? `fleet ${cmd} takes no operands, got "${operands[0]}"`
        : `fleet ${cmd} takes ${what}, got ${operands.length} operand${
          operands.length === 1 ? "" : "s"
        }; see sluice fleet --help`,
    );
  }
  if (cmd === "undeploy" || cmd === "history" || cmd === "rollback" || cmd === "status") {
    if (!TOKEN_PATTERN.test(operands[0]!)) {
      throw new UsageError(
        `invalid ${cmd === "status" ? "gateway id" : "pipeline name"} "${
          operands[0]
        }": letters, digits, '-' and '_'`,
      );
    }
  }
  const targets = parseTargets(v.all, v.to, v.label ?? []);
  if (cmd === "deploy" || cmd === "undeploy") {
    if (targets.length === 0) {
      throw new UsageError(`fleet ${cmd} needs a target: --all, --to ID[,ID...] or --label k=v`);
    }
  } else if (targets.length > 0) {
    throw new UsageError(`--all, --to and --label go with deploy and undeploy, not ${cmd}`);
  }
  let revision: number | undefined;
  if (v.revision !== undefined) {
    if (cmd !== "rollback") throw new UsageError(`--revision goes with rollback, not ${cmd}`);
    revision = positiveInt("--revision", v.revision);
  }
  if (v.history !== undefined && cmd !== "init") {
    throw new UsageError(`--history goes with init, not ${cmd}`);
  }
  return {
    ...base,
    command: cmd,
    connection,
    targets,
    revision,
    waitMs: v.wait !== undefined ? positiveInt("--wait", v.wait) : 1000,
    history: v.history !== undefined ? positiveInt("--history", v.history) : DEFAULT_HISTORY,
  };
}

function positiveInt(flag: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new UsageError(`${flag} must be a positive integer, got "${text}"`);
  }
  return Number(text);
}

function parseTargets(all: boolean, to: string | undefined, labels: string[]): Target[] {
  const given = [all, to !== undefined, labels.length > 0].filter(Boolean).length;
  if (given > 1) throw new UsageError("give one target: --all, --to ID[,ID...] or --label k=v");
  if (all) return [{ kind: "all" }];
  if (to !== undefined) {
    return to.split(",").map((id) => {
      if (!TOKEN_PATTERN.test(id)) {
        throw new UsageError(`invalid gateway id "${id}" in --to: letters, digits, '-' and '_'`);
      }
      return { kind: "gateway", id };
    });
  }
  return labels.map((l) => {
    const m = /^([A-Za-z0-9_-]+)=([A-Za-z0-9_-]+)$/.exec(l);
    if (!m) {
      throw new UsageError(`--label must be key=value (letters, digits, '-', '_'), got "${l}"`);
    }
    return { kind: "label", key: m[1]!, value: m[2]! };
  });
}
