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
  command: "run" | "check" | "help" | "version";
  paths: string[];
  logFormat: LogFormat;
  logLevel: LogLevel;
}

/** Text of `sluice --help`. */
export const HELP = `Sluice: filter and route JSON events between NATS subjects, configured in YAML.

Usage:
  sluice run   [PATH...]   Run the pipelines (default PATHs: connectors/ pipelines/)
  sluice check [PATH...]   Validate configuration only; exit 0 when valid, 2 with every error
  sluice --help | --version

PATH is a YAML file or a directory of *.yaml / *.yml files (not recursive).

Options:
  --log-format text|json   Log line format on stderr (default: text)
  --log-level  debug|info|warn|error   (default: info)
  -h, --help               Show this help
  -V, --version            Show the version

Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage.
Signals: SIGINT/SIGTERM stop gracefully (in-flight events are delivered first).`;

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
  const common = { logFormat: logFormat as LogFormat, logLevel: logLevel as LogLevel };
  if (values.help) return { command: "help", paths: [], ...common };
  if (values.version) return { command: "version", paths: [], ...common };
  const [command, ...paths] = positionals;
  if (command === undefined) return { command: "help", paths: [], ...common };
  if (command !== "run" && command !== "check") {
    throw new UsageError(`unknown command "${command}": expected run or check; see sluice --help`);
  }
  return {
    command,
    paths: paths.length > 0 ? paths : ["connectors", "pipelines"],
    ...common,
  };
}
