/**
 * Building and ordering located config errors: `file:line:col: key.path: message`.
 *
 * @module
 */
import { ConfigError, type Location } from "../errors.ts";
import { formatPath, type KeyPath, type YamlFile } from "./yaml_file.ts";
import { compareText } from "../order.ts";

/** Where a declaration stands: its file and key path. */
export interface Origin {
  file: YamlFile;
  path: KeyPath;
}

/** An error about a whole file, at its first line. */
export function fileError(path: string, message: string): ConfigError {
  return new ConfigError(message, "", { file: path, line: 1, column: 1 });
}

/** An error at the value at `path` (with `key`, at its key). */
export function located(file: YamlFile, path: KeyPath, message: string, key = false): ConfigError {
  return new ConfigError(message, formatPath(path), file.locate(path, { key }));
}

/** `file:line:col`, for messages that name a second place. */
export function where(l: Location): string {
  return `${l.file}:${l.line}:${l.column}`;
}

/** Orders errors by file, line and column; errors without location last. */
export function sortErrors(errors: ConfigError[]): ConfigError[] {
  return errors.sort((a, b) => {
    const x = a.location, y = b.location;
    if (!x || !y) return x ? 1 : y ? -1 : 0;
    return compareText(x.file, y.file) || x.line - y.line || x.column - y.column;
  });
}

/** A YAML map (not a list, not null). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** JSON with map keys sorted, to tell on reload whether a declaration changed. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      isPlainObject(x)
        ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => compareText(a, b)))
        : x,
  );
}
