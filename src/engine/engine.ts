/**
 * The engine: builds one shared client per connector declaration, starts every pipeline, and on
 * stop drains them so that every accepted event reaches its sinks before connections close.
 *
 * @module
 */
import type { Config, ConnectorDecl, PipelineDecl } from "../config/config.ts";
import type { Logger } from "../log.ts";
import { VERSION } from "../version.ts";
import { counterSummary, type PipelineCounters } from "./counters.ts";
import { type CarriedProcessors, Pipeline } from "./pipeline.ts";
import { planReload, type ReloadPlan } from "./reload.ts";
import type { Connector } from "./types.ts";

/** Options of {@link Engine}. */
export interface EngineOptions {
  logger: Logger;
  /** Called once when something fails beyond recovery (e.g. a connector closed for good). */
  onFatal?: (error: Error) => void;
}

/** Reload bookkeeping, shown in health. */
export interface ReloadStats {
  applied: number;
  rejected: number;
  /** When the last reload was applied or rejected (ms since epoch), 0 before the first. */
  lastAt: number;
  lastError: string | undefined;
}

/** What a pipeline stopped by a reload hands to its replacement. */
interface Retired {
  /** Its totals: counters keep counting across reloads, as Prometheus `rate()` expects. */
  counters: PipelineCounters;
  /** Its processors with their state, when the replacement runs the same declaration. */
  chain: CarriedProcessors | undefined;
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
  #config: Config;
  #applying: Promise<void> = Promise.resolve();
  readonly #reloads: ReloadStats = { applied: 0, rejected: 0, lastAt: 0, lastError: undefined };
  /** Counters (and unchanged chains) of pipelines stopped by a reload, for their replacements. */
  readonly #retired = new Map<string, Retired>();

  constructor(config: Config, options: EngineOptions) {
    this.#log = options.logger;
    this.#onFatal = options.onFatal;
    this.#config = config;
    for (const decl of config.connectors.values()) this.#createConnector(decl);
    for (const decl of config.pipelines.values()) this.#createPipeline(decl);
  }

  /** The configuration currently applied. */
  get config(): Config {
    return this.#config;
  }

  /** How many reloads were applied or rejected, and the last rejection. */
  get reloads(): Readonly<ReloadStats> {
    return this.#reloads;
  }

  /**
   * Moves to a new, already validated configuration with the least disruption: pipelines that
   * are added, removed or changed are started, drained and restarted; connectors whose
   * declaration did not change keep their connection, and unchanged pipelines keep running.
   * A changed pipeline is drained before its replacement subscribes, so every event the old
   * one accepted is delivered; with core NATS, events published in that gap are not received.
   */
  apply(next: Config): Promise<ReloadPlan> {
    if (this.#abort.signal.aborted) return Promise.reject(new Error("the engine is stopping"));
    const applying = this.#apply(next);
    this.#applying = applying.then(() => {}, () => {});
    return applying;
  }

  async #apply(next: Config): Promise<ReloadPlan> {
    const plan = planReload(this.#config, next);
    // Pin unchanged connectors in use, so that restarting their only pipeline keeps the connection.
    const pinned: Connector<unknown, unknown>[] = [];
    for (const [name, c] of this.connectors) {
      if (plan.replaceConnectors.includes(name) || plan.removeConnectors.includes(name)) continue;
      if (c.health().users > 0) {
        await c.acquire(this.#abort.signal);
        pinned.push(c);
      }
    }
    const failures: string[] = [];
    try {
      await Promise.all(plan.stopPipelines.map(async (name) => {
        const old = this.pipelines.get(name);
        if (!old) return;
        // Restarted only because a connector it uses changed: its processors keep their state.
        const same = next.pipelines.get(name)?.fingerprint === old.decl.fingerprint;
        await old.stop(!same);
        this.#retired.set(name, {
          counters: old.counters,
          chain: same ? old.carryOver() : undefined,
        });
        this.pipelines.delete(name);
      }));
      // Stopped pipelines released replaced and removed connectors; their clients are closed.
      for (const name of [...plan.replaceConnectors, ...plan.removeConnectors]) {
        this.connectors.delete(name);
      }
      for (const name of [...plan.addConnectors, ...plan.replaceConnectors]) {
        this.#createConnector(next.connectors.get(name)!);
      }
      const retired = this.#retired;
      this.#config = next;
      await Promise.all(plan.startPipelines.map(async (name) => {
        const p = this.#createPipeline(next.pipelines.get(name)!, retired.get(name));
        try {
          await p.start(this.#abort.signal);
        } catch (e) {
          // Reported as failed, in health and the reload log, never as started.
          p.state = "failed";
          p.error = e instanceof Error ? e.message : String(e);
          failures.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
          this.#log.error("pipeline failed to start", {
            pipeline: name,
            error: e instanceof Error ? e.message : String(e),
          });
        }
      }));
      retired.clear();
    } finally {
      await Promise.all(pinned.map((c) => c.release()));
    }
    this.#reloads.applied++;
    this.#reloads.lastAt = Date.now();
    this.#reloads.lastError = failures.length > 0 ? failures.join("; ") : undefined;
    return plan;
  }

  /** Records a reload that was rejected (invalid config): the running one stays. */
  rejectReload(reason: string): void {
    this.#reloads.rejected++;
    this.#reloads.lastAt = Date.now();
    this.#reloads.lastError = reason;
  }

  #createConnector(decl: ConnectorDecl): void {
    const logger = this.#log.with({ connector: decl.name });
    const fail = (error: Error) => this.#failed(error);
    this.connectors.set(decl.name, decl.type.create(decl.name, decl.settings, { logger, fail }));
  }

  #createPipeline(decl: PipelineDecl, retired?: Retired): Pipeline {
    const p = new Pipeline(
      decl,
      (name) => this.#connector(name),
      this.#log.with({ pipeline: decl.name }),
      retired?.counters,
      retired?.chain,
    );
    this.pipelines.set(decl.name, p);
    return p;
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
      // The platform, so a log from a gateway says what it ran on (and tests can check emulation).
      arch: Deno.build.arch,
      version: VERSION,
    });
  }

  /** Stops every pipeline (draining in-flight events), then every connector. */
  /** Cancels work still waiting (connectors retrying an unreachable server, reload starts). */
  abort(): void {
    if (!this.#abort.signal.aborted) this.#abort.abort(new Error("stopping"));
  }

  async stop(): Promise<void> {
    this.abort();
    // A reload in progress settles first (its starts are aborted), so no pipeline escapes the stop.
    await this.#applying;
    await Promise.all([...this.pipelines.values()].map((p) => p.stop()));
  }

  /** Logs one summary line per pipeline. */
  logSummary(): void {
    for (const p of this.pipelines.values()) {
      const c = p.counters;
      this.#log.info("pipeline summary", {
        pipeline: p.name,
        ...counterSummary(c),
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
