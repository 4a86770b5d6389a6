/**
 * Lifecycle logging to stderr, as text for people or JSON lines for journald and tests. Never one
 * line per message: the hot path only counts.
 *
 * @module
 */

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";
/** Output form. */
export type LogFormat = "text" | "json";
/** Structured fields of a log record. Values must be JSON-serialisable. */
export type LogFields = Record<string, string | number | boolean | null | undefined | object>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger bound to fixed fields (e.g. `connector: "local"`). */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  with(fields: LogFields): Logger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** @default "info" */
  level?: LogLevel;
  /** @default "text" */
  format?: LogFormat;
  /** Where lines go. @default stderr */
  write?: (line: string) => void;
}

const encoder = new TextEncoder();
function writeStderr(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

function textValue(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

/** Creates the root logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? "info"];
  const format = options.format ?? "text";
  const write = options.write ?? writeStderr;
  const make = (bound: LogFields): Logger => {
    const log = (level: LogLevel, msg: string, fields?: LogFields) => {
      if (RANK[level] < min) return;
      const all = fields ? { ...bound, ...fields } : bound;
      const time = new Date().toISOString();
      if (format === "json") {
        write(JSON.stringify({ time, level, msg, ...all }));
      } else {
        let line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
        for (const [k, v] of Object.entries(all)) {
          if (v !== undefined) line += ` ${k}=${textValue(v)}`;
        }
        write(line);
      }
    };
    return {
      debug: (m, f) => log("debug", m, f),
      info: (m, f) => log("info", m, f),
      warn: (m, f) => log("warn", m, f),
      error: (m, f) => log("error", m, f),
      with: (f) => make({ ...bound, ...f }),
    };
  };
  return make({});
}
