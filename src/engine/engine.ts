/**
 * The engine: builds one shared client per connector declaration, starts every pipeline, and on
 * stop drains them so that every accepted event reaches its sinks before connections close.
 *
 * @module
 */
import type { Config } from "../config/config.ts";
import type { Logger } from "../log.ts";
import { errorCount } from "./counters.ts";
import { Pipeline } from "./pipeline.ts";
import type { Connector } from "./types.ts";

/** Options of {@link Engine}. */
export interface EngineOptions {
  logger: Logger;
  /** Called once when something fails beyond recovery (e.g. a connector closed for good). */
  onFatal?: (error: Error) => void;
}

/** Runs the pipelines of one configuration. */
export class Engine {
  readonly connectors = new Map<string, Connector<unknown, unknown>>();
  readonly pipelines = new Map<string, Pipeline>();
  readonly startedAt = Date.now();
  readonly #log: Logger;
  readonly #abort = new AbortController();
  #fatal: Error | undefined;
  readonly #onFatal: ((error: Error) => void) | undefined;

  constructor(config: Config, options: EngineOptions) {
    this.#log = options.logger;
    this.#onFatal = options.onFatal;
    for (const decl of config.connectors.values()) {
      const logger = this.#log.with({ connector: decl.name });
      const fail = (error: Error) => this.#failed(error);
      this.connectors.set(decl.name, decl.type.create(decl.name, decl.settings, { logger, fail }));
    }
    for (const decl of config.pipelines.values()) {
      this.pipelines.set(
        decl.name,
        new Pipeline(
          decl,
          (name) => this.#connector(name),
          this.#log.with({ pipeline: decl.name }),
        ),
      );
    }
  }

  /** The first unrecoverable failure, if any. */
  get fatal(): Error | undefined {
    return this.#fatal;
  }

  /**
   * Starts every pipeline; resolves when all are running. While a server is unreachable this keeps
   * waiting (connectors retry), so callers race it against their stop signal.
   */
  async start(): Promise<void> {
    const results = await Promise.allSettled(
      [...this.pipelines.values()].map((p) => p.start(this.#abort.signal)),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    this.#log.info("started", {
      pipelines: this.pipelines.size,
      connectors: [...this.connectors.values()].filter((c) => c.health().users > 0).length,
    });
  }

  /** Stops every pipeline (draining in-flight events), then every connector. */
  async stop(): Promise<void> {
    this.#abort.abort(new Error("stopping"));
    await Promise.all([...this.pipelines.values()].map((p) => p.stop()));
  }

  /** Logs one summary line per pipeline. */
  logSummary(): void {
    for (const p of this.pipelines.values()) {
      const c = p.counters;
      this.#log.info("pipeline summary", {
        pipeline: p.name,
        in: c.in,
        passed: c.passed,
        filtered: c.filtered,
        dead_lettered: c.deadLettered,
        errors: errorCount(c),
      });
    }
  }

  #connector(name: string): Connector<unknown, unknown> {
    const c = this.connectors.get(name);
    // The loader guarantees every named connector exists; reaching this is a bug.
    if (!c) throw new Error(`Connector "${name}" is not declared`);
    return c;
  }

  #failed(error: Error): void {
    if (this.#fatal) return;
    this.#fatal = error;
    this.#log.error("fatal", { error: error.message });
    this.#onFatal?.(error);
  }
}
