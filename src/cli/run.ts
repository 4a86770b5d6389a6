/**
 * `sluice run` and `sluice check`: load and validate, then run until a signal arrives.
 *
 * @module
 */
import type { Config } from "../config/config.ts";
import { loadConfig } from "../config/load.ts";
import { builtinRegistry } from "../connectors/mod.ts";
import { Engine } from "../engine/engine.ts";
import { ConfigErrors } from "../errors.ts";
import { FleetAgent } from "../fleet/agent.ts";
import { HealthService } from "../health/service.ts";
import type { Logger } from "../log.ts";
import { startReloader } from "./reloader.ts";

/** Exit codes of the CLI. */
export const EXIT = { ok: 0, failure: 1, config: 2 } as const;

/** Where command output goes, so tests can capture it. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

async function load(paths: string[], output: Output): Promise<Config | undefined> {
  try {
    return await loadConfig(paths, { registry: builtinRegistry() });
  } catch (e) {
    if (!(e instanceof ConfigErrors)) throw e;
    for (const error of e.errors) output.err(error.toString());
    output.err(
      `${e.errors.length} configuration error${
        e.errors.length === 1 ? "" : "s"
      }; nothing was started`,
    );
    return undefined;
  }
}

/** `sluice check`: validates and prints a one-line summary. */
export async function check(paths: string[], output: Output): Promise<number> {
  const config = await load(paths, output);
  if (!config) return EXIT.config;
  output.out(
    `ok: ${config.connectors.size} connector${config.connectors.size === 1 ? "" : "s"}, ` +
      `${config.pipelines.size} pipeline${config.pipelines.size === 1 ? "" : "s"} ` +
      `in ${config.files.length} file${config.files.length === 1 ? "" : "s"}`,
  );
  return EXIT.ok;
}

/** `sluice run`: runs until SIGINT/SIGTERM, then drains and prints a summary. */
export async function run(
  paths: string[],
  output: Output,
  log: Logger,
  options: { watch?: boolean } = {},
): Promise<number> {
  const local = await load(paths, output);
  if (!local) return EXIT.config;
  if (local.pipelines.size === 0 && !local.fleet) {
    output.err("no pipelines declared: nothing to run (see the pipelines: section)");
    return EXIT.config;
  }
  // With a fleet, the deployed pipelines last applied (state_dir) run beside the local ones.
  const fleet = local.fleet
    ? new FleetAgent(local.fleet, { logger: log, registry: builtinRegistry() })
    : undefined;
  const config = fleet ? await fleet.initial(local) : local;

  let stopRequested!: (reason: string) => void;
  const stop = new Promise<string>((resolve) => (stopRequested = resolve));
  const engine = new Engine(config, {
    logger: log,
    onFatal: (e) => stopRequested(`fatal: ${e.message}`),
  });
  // Health answers from now on: /readyz says 503 while the connectors are still connecting.
  const health = config.health
    ? new HealthService(engine, config.health, {
      logger: log,
      onFatal: (e) => stopRequested(`fatal: ${e.message}`),
    })
    : undefined;
  try {
    health?.startHttp();
  } catch (e) {
    log.error("start failed", { error: e instanceof Error ? e.message : String(e) });
    return EXIT.failure;
  }
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const handlers = signals.map((sig) => {
    const h = () => stopRequested(sig);
    Deno.addSignalListener(sig, h);
    return [sig, h] as const;
  });

  const reloader = startReloader(engine, paths, log, {
    watch: options.watch ?? false,
    ...(fleet ? { apply: (c: Config) => fleet.applyLocal(c) } : {}),
  });
  fleet?.start(engine, {
    reload: () => reloader.reload("fleet request"),
    drain: () => stopRequested("fleet drain"),
  });
  let code: number = EXIT.ok;
  try {
    health?.startNats();
    const started = engine.start().then(() => undefined, (e: unknown) => e);
    const first = await Promise.race([started, stop]);
    if (first instanceof Error) {
      log.error("start failed", { error: first.message });
      code = EXIT.failure;
    } else {
      const reason = typeof first === "string" ? first : await stop;
      log.info("stopping", { reason });
      // Connectors still retrying at start give up now, so start() settles.
      engine.abort();
      // A stop requested while still starting lets start() settle (it is aborted) first.
      await started;
    }
  } finally {
    await health?.stopNats();
    await Promise.all([reloader.stop(), fleet?.stop(), engine.stop()]);
    await health?.stopHttp();
    for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
  }
  engine.logSummary();
  if (engine.fatal || health?.fatal) code = EXIT.failure;
  log.info("stopped", { exit_code: code });
  return code;
}
