/**
 * Command-line parsing with `node:util` parseArgs: commands, flags and their validation.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import type { LogFormat, LogLevel } from "../log.ts";

/** What the command line asks for. */
export interface Invocation {
  command: "run" | "check" | "status" | "schema" | "help" | "version";
  paths: string[];
  logFormat: LogFormat;
  logLevel: LogLevel;
  /** `run --watch`: reload when config files change. */
  watch: boolean;
  /** `status --url`: base URL of the health endpoints of a running Sluice. */
  url: string;
}

/** Where `sluice status` looks when no `--url` is given: the default of `health.listen`. */
export const DEFAULT_STATUS_URL = "http://127.0.0.1:9180";

/** Text of `sluice --help`. */
export const HELP = `Sluice: filter and route JSON events between NATS subjects, configured in YAML.

Usage:
  sluice run   [PATH...]   Run the pipelines (default PATHs: connectors/ pipelines/)
  sluice check [PATH...]   Validate configuration only; exit 0 when valid, 2 with every error
  sluice status [--url URL]
                           Show the health of a running sluice (its health: endpoints);
                           exit 0 when ready, 1 when not ready or unreachable
  sluice fleet COMMAND ...  Deploy pipelines to gateways over NATS (see sluice fleet --help)
  sluice schema            Print the JSON Schema (draft 2020-12) of a config file, for editors
  sluice permissions COMMAND [ARGS...]
                           Print the Deno permission flags that "sluice COMMAND ARGS..." needs,
                           derived from its configuration (used by the installed launcher)
  sluice --help | --version

PATH is a YAML file or a directory of *.yaml / *.yml files (not recursive).

Options:
  --log-format text|json   Log line format on stderr (default: text)
  --log-level  debug|info|warn|error   (default: info)
  --watch                  With run: reload when a config file changes
  --url URL                With status: base URL of health.listen (default: ${DEFAULT_STATUS_URL})
  -h, --help               Show this help
  -V, --version            Show the version

Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage.
Signals: SIGINT/SIGTERM stop gracefully (in-flight events are delivered first);
SIGHUP reloads the configuration (an invalid one is rejected and the running one stays).`;

const FORMATS = ["text", "json"] as const;
const LEVELS = ["debug", "info", "warn", "error"] as const;

/** Parses `args` (without the program name). @throws {UsageError} */
export function parseInvocation(args: readonly string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        "log-format": { type: "string", default: "text" },
        "log-level": { type: "string", default: "info" },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
        watch: { type: "boolean", default: false },
        url: { type: "string" },
      },
    });
  } catch (e) {
    throw new UsageError(`${e instanceof Error ? e.message : String(e)}; see sluice --help`);
  }
  const { values, positionals } = parsed;
  const logFormat = values["log-format"];
  const logLevel = values["log-level"];
  if (!FORMATS.includes(logFormat as LogFormat)) {
    throw new UsageError(`--log-format must be one of ${FORMATS.join(", ")}, got "${logFormat}"`);
  }
  if (!LEVELS.includes(logLevel as LogLevel)) {
    throw new UsageError(`--log-level must be one of ${LEVELS.join(", ")}, got "${logLevel}"`);
  }
  const common = {
    logFormat: logFormat as LogFormat,
    logLevel: logLevel as LogLevel,
    watch: values.watch,
    url: values.url ?? DEFAULT_STATUS_URL,
  };
  if (values.help) return { command: "help", paths: [], ...common };
  if (values.version) return { command: "version", paths: [], ...common };
  const [command, ...paths] = positionals;
  if (command === undefined) return { command: "help", paths: [], ...common };
  if (command !== "run" && command !== "check" && command !== "status" && command !== "schema") {
    throw new UsageError(
      `unknown command "${command}": expected run, check, status or schema; see sluice --help`,
    );
  }
  if (values.url !== undefined && command !== "status") {
    throw new UsageError(`--url goes with status, not ${command}; see sluice --help`);
  }
  if (command === "schema") {
    if (paths.length > 0) {
      throw new UsageError(`schema takes no arguments, got "${paths[0]}"; see sluice --help`);
    }
    return { command, paths: [], ...common };
  }
  if (command === "status") {
    if (paths.length > 0) {
      throw new UsageError(
        `status takes no paths, got "${paths[0]}": give the address with --url`,
      );
    }
    checkStatusUrl(common.url);
    return { command, paths: [], ...common };
  }
  return {
    command,
    paths: paths.length > 0 ? paths : ["connectors", "pipelines"],
    ...common,
  };
}

function checkStatusUrl(text: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url must be a URL such as ${DEFAULT_STATUS_URL}, got "${text}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--url must start with http:// or https://, got "${text}"`);
  }
}
