/**
 * Reloading a running Sluice: on SIGHUP, and with `run --watch` on changes to the config files.
 * A new config is validated fully before anything changes; an invalid one is logged and the
 * running one stays. Reloads run one at a time.
 *
 * @module
 */
import { loadConfig } from "../config/load.ts";
import { builtinRegistry } from "../connectors/mod.ts";
import type { Config } from "../config/config.ts";
import type { Engine } from "../engine/engine.ts";
import { isEmptyPlan, type ReloadPlan } from "../engine/reload.ts";
import { ConfigErrors } from "../errors.ts";
import type { Logger } from "../log.ts";

/** How long file events are collected before one reload: editors write in several steps. */
const WATCH_SETTLE_MS = 300;

/** Options of {@link startReloader}. */
export interface ReloaderOptions {
  /** Also reload when a file under `paths` changes. @default false */
  watch?: boolean;
  /**
   * Applies a reloaded config in place of `engine.apply`: the fleet adds its deployed pipelines.
   * With it, a config without local pipelines is accepted.
   */
  apply?: (config: Config) => Promise<ReloadPlan>;
}

/** A running reloader. */
export interface Reloader {
  /** Asks for a reload; resolves when it (and any before it) is done. */
  reload(reason: string): Promise<void>;
  /** Stops listening and waits for a reload in progress. */
  stop(): Promise<void>;
}

/** Listens for SIGHUP (and file changes with `watch`) and applies new configs to `engine`. */
export function startReloader(
  engine: Engine,
  paths: readonly string[],
  log: Logger,
  options: ReloaderOptions = {},
): Reloader {
  let chain: Promise<void> = Promise.resolve();
  let stopped = false;
  const reload = (reason: string): Promise<void> => {
    if (stopped) return chain;
    chain = chain.then(() => reloadOnce(engine, paths, log, reason, options.apply));
    return chain;
  };
  const onHup = () => void reload("SIGHUP");
  Deno.addSignalListener("SIGHUP", onHup);

  let watcher: Deno.FsWatcher | undefined;
  let settle: ReturnType<typeof setTimeout> | undefined;
  if (options.watch) {
    watcher = Deno.watchFs([...paths], { recursive: false });
    (async () => {
      for await (const event of watcher!) {
        if (!event.paths.some((p) => /\.ya?ml$/.test(p))) continue;
        clearTimeout(settle);
        settle = setTimeout(() => void reload("file change"), WATCH_SETTLE_MS);
      }
    })().catch((e) => log.warn("watching config files failed", { error: String(e) }));
    log.info("watching config files", { paths: paths.join(",") });
  }

  return {
    reload,
    async stop() {
      stopped = true;
      Deno.removeSignalListener("SIGHUP", onHup);
      clearTimeout(settle);
      watcher?.close();
      await chain;
    },
  };
}

async function reloadOnce(
  engine: Engine,
  paths: readonly string[],
  log: Logger,
  reason: string,
  apply: ((config: Config) => Promise<ReloadPlan>) | undefined,
): Promise<void> {
  log.info("reloading", { reason });
  let config;
  try {
    config = await loadConfig(paths, { registry: builtinRegistry() });
  } catch (e) {
    const errors = e instanceof ConfigErrors ? e.errors.map(String) : [String(e)];
    engine.rejectReload(rejectionSummary(e));
    log.error("reload rejected: the running configuration stays", { errors });
    return;
  }
  if (config.pipelines.size === 0 && !apply) {
    engine.rejectReload("no pipelines declared");
    log.error("reload rejected: the running configuration stays", {
      errors: ["no pipelines declared"],
    });
    return;
  }
  try {
    const plan = await (apply ? apply(config) : engine.apply(config));
    const failed = plan.startPipelines.filter((n) => engine.pipelines.get(n)?.state === "failed");
    (failed.length > 0 ? log.error : log.info).call(log, "reloaded", {
      changed: !isEmptyPlan(plan),
      started: plan.startPipelines.filter((n) => !failed.includes(n)),
      failed,
      stopped: plan.stopPipelines,
      kept: plan.keepPipelines.length,
      connectors_added: plan.addConnectors,
      connectors_replaced: plan.replaceConnectors,
      connectors_removed: plan.removeConnectors,
      last_error: engine.reloads.lastError,
    });
  } catch (e) {
    log.error("reload failed", { error: e instanceof Error ? e.message : String(e) });
  }
}

/**
 * Where a rejected config went wrong, without the messages: those may quote values (secrets), and
 * this summary is shown by health. The log has the full errors.
 */
export function rejectionSummary(e: unknown): string {
  if (!(e instanceof ConfigErrors)) return "the configuration could not be loaded (see the log)";
  const first = e.errors[0];
  const where = first?.location
    ? `${first.location.file}:${first.location.line}:${first.location.column}`
    : "";
  const at = [where, first?.path].filter(Boolean).join(": ");
  const n = e.errors.length;
  return `${n} configuration error${n === 1 ? "" : "s"}${
    at ? `; first at ${at}` : ""
  } (see the log)`;
}
