/**
 * The gateway side of the fleet: watches the bucket's keys for this gateway, builds the effective
 * configuration (local files + deployed pipelines, each validated as `check` does against this
 * gateway's connectors), applies it as a reload does, keeps the applied set in `state_dir`, and
 * reports per pipeline. It is also this gateway's NATS service (`service.ts`).
 *
 * Applies run one at a time, whether a bucket change or a local reload (SIGHUP) asked for them,
 * so a local reload keeps the deployed pipelines and a deployment keeps the local ones.
 *
 * @module
 */
import type { Config, FleetDecl } from "../config/config.ts";
import type { Engine } from "../engine/engine.ts";
import type { ReloadPlan } from "../engine/reload.ts";
import {
  type ControlPlaneConnector,
  hasControlPlane,
  type KeyValueChange,
} from "../engine/types.ts";
import type { Logger } from "../log.ts";
import { VERSION } from "../version.ts";
import { composeConfig, type Composed, type Outcome } from "./compose.ts";
import { type Entry, resolveDesired } from "./desired.ts";
import { gatewayFilters, reportSubject } from "./keys.ts";
import type { GatewayStatus, PipelineReport } from "./report.ts";
import { fleetService } from "./service.ts";
import { type AppliedPipeline, readState, writeState } from "./state.ts";
import type { ValidateOptions } from "./validate.ts";
import { compareText } from "../order.ts";
import { withRe2 } from "../filter/re2.ts";

/** Pause before trying the control plane again after a failure (bucket missing, refused). */
export const RETRY_MS = 2_000;

/** How often the agent checks that its connector is still the engine's (a reload may replace it). */
const REBIND_CHECK_MS = 1_000;

/** What the agent may ask of the process it runs in. */
export interface FleetHooks {
  /** Reloads the local files (the service's `reload` endpoint). */
  reload(): Promise<void>;
  /** Stops the gateway gracefully (the service's `drain` endpoint). */
  drain(): void;
}

/** Options of {@link FleetAgent}. */
export interface FleetAgentOptions extends ValidateOptions {
  logger: Logger;
}

/** The fleet agent of one gateway. */
export class FleetAgent {
  readonly #decl: FleetDecl;
  readonly #log: Logger;
  readonly #validate: ValidateOptions;
  readonly #startedAt = Date.now();
  readonly #abort = new AbortController();
  #engine: Engine | undefined;
  #hooks: FleetHooks | undefined;
  #local: Config | undefined;
  /** What the bucket holds for this gateway, by key (deleted keys absent). */
  #entries = new Map<string, Entry>();
  /** The bucket's current state has been read: until then, `state_dir` is what is wanted. */
  #synced = false;
  /** The deployed versions running now, by pipeline name. */
  #applied = new Map<string, AppliedPipeline>();
  #outcomes = new Map<string, Outcome>();
  #chain: Promise<unknown> = Promise.resolve();
  #syncQueued = false;
  #connector: ControlPlaneConnector | undefined;
  #lastError: string | undefined;
  #running: Promise<void> | undefined;

  constructor(decl: FleetDecl, options: FleetAgentOptions) {
    this.#decl = decl;
    this.#log = options.logger.with({ fleet: decl.id });
    this.#validate = options;
  }

  /** The `fleet:` section this agent runs. */
  get decl(): FleetDecl {
    return this.#decl;
  }

  /**
   * Reads `state_dir` and composes the configuration to start with: the local one plus the last
   * applied deployed pipelines, so that a gateway without its uplink runs them.
   */
  async initial(local: Config): Promise<Config> {
    this.#local = local;
    try {
      const state = await readState(this.#decl.stateDir);
      if (state && state.id !== this.#decl.id) {
        this.#log.warn("fleet state belongs to another gateway id: not used", {
          state_dir: this.#decl.stateDir,
          state_id: state.id,
        });
      } else if (state) {
        this.#applied = new Map(Object.entries(state.pipelines));
        this.#log.info("fleet state loaded", {
          state_dir: this.#decl.stateDir,
          pipelines: [...this.#applied.keys()].join(","),
          saved_at: state.savedAt,
        });
      }
    } catch (e) {
      this.#log.error("fleet state unreadable: starting without deployed pipelines", {
        state_dir: this.#decl.stateDir,
        error: e instanceof Error ? e.message : String(e),
      });
    }
    const composed = await withRe2(() => this.#compose(local));
    this.#applied = composed.applied;
    this.#outcomes = composed.outcomes;
    return composed.config;
  }

  /** Connects the control plane in the background, retrying until {@link FleetAgent.stop}. */
  start(engine: Engine, hooks: FleetHooks): void {
    this.#engine = engine;
    this.#hooks = hooks;
    this.#running ??= this.#run().catch((e) =>
      this.#log.error("fleet agent stopped", { error: e instanceof Error ? e.message : String(e) })
    );
  }

  /** Applies a reloaded local configuration together with the deployed pipelines. */
  applyLocal(local: Config): Promise<ReloadPlan> {
    if (JSON.stringify(fleetSettings(local.fleet)) !== JSON.stringify(fleetSettings(this.#decl))) {
      this.#log.warn("the fleet section changed: it takes effect on the next start");
    }
    return this.#enqueue(() => {
      this.#local = local;
      return this.#applyOnce("local reload");
    });
  }

  /** Stops watching and serving; waits for an apply in progress. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
    await this.#chain.catch(() => {});
  }

  /** This gateway's status, as the service and reports show it. */
  status(): GatewayStatus {
    const pipelines: PipelineReport[] = [];
    const running = this.#engine?.pipelines ?? new Map();
    for (const [name, p] of running) {
      const deployed = this.#applied.get(name);
      const o = this.#outcomes.get(name);
      pipelines.push({
        name,
        origin: deployed ? "deployed" : "local",
        state: p.state,
        ...(o
          ? outcomeFields(o)
          : deployed
          ? { key: deployed.key, revision: deployed.revision }
          : {}),
        ...(p.error && !o?.error ? { error: p.error } : {}),
      });
    }
    for (const [name, o] of this.#outcomes) {
      if (running.has(name)) continue;
      pipelines.push({ name, origin: "deployed", state: "absent", ...outcomeFields(o) });
    }
    pipelines.sort((a, b) => compareText(a.name, b.name));
    return {
      id: this.#decl.id,
      labels: this.#decl.labels,
      version: VERSION,
      startedAt: new Date(this.#startedAt).toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
      ready: [...running.values()].every((p) => p.state === "running"),
      synced: this.#synced,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
      pipelines,
    };
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(fn);
    this.#chain = next.catch(() => {});
    return next;
  }

  /** Asks for an apply of the bucket's state; several changes meanwhile make one apply. */
  #requestSync(reason: string): void {
    if (this.#syncQueued || !this.#synced) return;
    this.#syncQueued = true;
    this.#enqueue(async () => {
      this.#syncQueued = false;
      await this.#applyOnce(reason);
    }).catch((e) =>
      this.#log.error("fleet apply failed", { error: e instanceof Error ? e.message : String(e) })
    );
  }

  /** The configuration to apply now: local pipelines plus the deployed ones valid here. */
  #compose(local: Config): Composed {
    const wanted = this.#synced ? resolveDesired(this.#entries) : new Map(this.#applied);
    return composeConfig(local, wanted, this.#applied, this.#validate);
  }

  async #applyOnce(reason: string): Promise<ReloadPlan> {
    const engine = this.#engine;
    const local = this.#local;
    if (!engine || !local) throw new Error("the fleet agent is not started");
    const composed = await withRe2(() => this.#compose(local));
    const plan = await engine.apply(composed.config);
    this.#applied = composed.applied;
    this.#outcomes = composed.outcomes;
    const rejected = [...composed.outcomes].filter(([, o]) => o.outcome === "rejected");
    const log = rejected.length > 0 ? this.#log.warn : this.#log.info;
    log.call(this.#log, "fleet applied", {
      reason,
      deployed: [...composed.applied].map(([n, a]) => `${n}@${a.revision}`).join(","),
      rejected: rejected.map(([n, o]) => `${n}@${o.revision}`).join(","),
      errors: rejected.map(([n, o]) => `${n}: ${o.error}`).join("\n"),
      started: plan.startPipelines.join(","),
      stopped: plan.stopPipelines.join(","),
    });
    if (this.#synced) await this.#save(composed.applied);
    this.#report();
    return plan;
  }

  async #save(applied: Map<string, AppliedPipeline>): Promise<void> {
    try {
      await writeState(this.#decl.stateDir, {
        id: this.#decl.id,
        savedAt: new Date().toISOString(),
        pipelines: Object.fromEntries(applied),
      });
    } catch (e) {
      this.#log.error("fleet state not saved", {
        state_dir: this.#decl.stateDir,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }

  #report(): void {
    const c = this.#connector;
    if (!c) return;
    const data = new TextEncoder().encode(JSON.stringify(this.status()));
    c.publishBytes(reportSubject(this.#decl.id), data);
  }

  /**
   * Records a change in `entries`; once the watch is live (it delivered what the bucket held),
   * asks for an apply. Until then nothing is applied, so a new watch (after a failure or a
   * reload that replaced the connector) never applies a partial view of the bucket.
   */
  #onChange(entries: Map<string, Entry>, change: KeyValueChange, live: boolean): void {
    if (change.value === undefined) entries.delete(change.key);
    else {
      entries.set(change.key, {
        revision: change.revision,
        text: new TextDecoder().decode(change.value),
      });
    }
    if (live) this.#requestSync("fleet change");
  }

  /** Holds the control plane up: connect, serve, watch; again after a failure or a rebind. */
  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      const c = this.#engine?.connectors.get(this.#decl.connector);
      if (!hasControlPlane(c)) {
        throw new Error(`connector "${this.#decl.connector}" cannot carry the fleet control plane`);
      }
      try {
        await c.acquire(signal);
      } catch (e) {
        if (signal.aborted) return;
        this.#failed("fleet connector unavailable", e);
        await delay(RETRY_MS, signal);
        continue;
      }
      this.#connector = c;
      try {
        await this.#serveAndWatch(c, signal);
      } finally {
        this.#connector = undefined;
        await c.release();
      }
    }
  }

  async #serveAndWatch(c: ControlPlaneConnector, signal: AbortSignal): Promise<void> {
    const cp = c.controlPlane();
    let service: { stop(): Promise<void> } | undefined;
    try {
      service = await cp.addService(
        fleetService(this.#decl, {
          status: () => this.status(),
          reload: async () => {
            await this.#hooks?.reload();
            return this.status();
          },
          drain: () => this.#hooks?.drain(),
        }),
      );
      this.#log.info("fleet service started", { subject: `sluice.fleet.${this.#decl.id}.>` });
    } catch (e) {
      this.#failed("fleet service not started", e);
    }
    try {
      while (!signal.aborted && this.#engine?.connectors.get(this.#decl.connector) === c) {
        const entries = new Map<string, Entry>();
        let live = false;
        let watch;
        try {
          watch = await cp.watch(
            this.#decl.bucket,
            gatewayFilters(this.#decl.id, this.#decl.labels),
            (change) => this.#onChange(entries, change, live),
            this.#decl.domain,
          );
        } catch (e) {
          this.#failed(`fleet bucket "${this.#decl.bucket}" cannot be watched`, e);
          await delay(RETRY_MS, signal);
          continue;
        }
        try {
          await Promise.race([watch.ready, aborted(signal)]);
          if (signal.aborted) return;
          this.#entries = entries;
          live = true;
          this.#synced = true;
          this.#lastError = undefined;
          this.#log.info("fleet synced", { bucket: this.#decl.bucket, keys: this.#entries.size });
          this.#requestSync("fleet sync");
          // Until stopped, or until a reload gives the engine a new client of the connector.
          while (!signal.aborted && this.#engine?.connectors.get(this.#decl.connector) === c) {
            await delay(REBIND_CHECK_MS, signal);
          }
        } finally {
          watch.stop();
        }
      }
    } finally {
      await service?.stop();
    }
  }

  #failed(what: string, e: unknown): void {
    const error = e instanceof Error ? e.message : String(e);
    this.#lastError = `${what}: ${error}`;
    this.#log.warn(what, { error, retry_in_ms: RETRY_MS });
  }
}

/** The settings of a `fleet` section, without where it was declared. */
function fleetSettings(decl: FleetDecl | undefined) {
  if (!decl) return undefined;
  const { location: _location, ...settings } = decl;
  return settings;
}

function outcomeFields(o: Outcome): Partial<PipelineReport> {
  return {
    key: o.key,
    revision: o.revision,
    outcome: o.outcome,
    ...(o.error !== undefined ? { error: o.error } : {}),
    ...(o.runningRevision !== undefined ? { runningRevision: o.runningRevision } : {}),
  };
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** Waits `ms`, or less when `signal` aborts; never rejects. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
