/**
 * Error types of Sluice. Each concern has one type with a stable `code`, so callers and tests can
 * tell them apart without matching message text.
 *
 * @module
 */

/** Where something stands in a config file: 1-based line and column. */
export interface Location {
  file: string;
  line: number;
  column: number;
}

/** One problem found while loading configuration. */
export class ConfigError extends TypeError {
  /** Stable code: "config". */
  readonly code = "config";
  /** File, line and column of the offending node, when known. */
  readonly location: Location | undefined;
  /** Key path of the offending value, e.g. `pipelines.alerts.sinks[0].subject`. */
  readonly path: string;

  constructor(message: string, path: string, location?: Location) {
    super(message);
    this.name = "ConfigError";
    this.path = path;
    this.location = location;
  }

  /** `file:line:col: path: message`, the form operators and editors understand. */
  override toString(): string {
    const where = this.location
      ? `${this.location.file}:${this.location.line}:${this.location.column}: `
      : "";
    const path = this.path ? `${this.path}: ` : "";
    return `${where}${path}${this.message}`;
  }
}

/** Every problem of one configuration load, reported together. */
export class ConfigErrors extends Error {
  /** Stable code: "config_invalid". */
  readonly code = "config_invalid";
  readonly errors: readonly ConfigError[];

  constructor(errors: readonly ConfigError[]) {
    super(
      `Invalid configuration (${errors.length} error${errors.length === 1 ? "" : "s"}):\n` +
        errors.map((e) => `  ${e.toString()}`).join("\n"),
    );
    this.name = "ConfigErrors";
    this.errors = errors;
  }
}

/** Command-line usage that cannot be understood. */
export class UsageError extends Error {
  readonly code = "usage";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A failure while running: a connection that cannot be made, a permission that is missing. */
export class RuntimeError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RuntimeError";
    this.code = code;
  }
}
