/**
 * Health as `sluice run` uses it: the HTTP endpoints and health over NATS of one `health:`
 * section, started as soon as the configuration is loaded (so `/readyz` answers 503 while the
 * connectors are still connecting) and stopped around the engine's shutdown.
 *
 * @example In a run
 * ```ts ignore
 * const health = new HealthService(engine, config.health, { logger, onFatal });
 * health.startHttp();
 * health.startNats();
 * await engine.start();
 * // ... on shutdown:
 * await health.stopNats();
 * await engine.stop();
 * await health.stopHttp();
 * ```
 *
 * @module
 */
import type { HealthDecl } from "../config/config.ts";
import type { Logger } from "../log.ts";
import { HealthHttpServer } from "./http.ts";
import { NatsHealth } from "./nats.ts";
import { HealthMonitor, type HealthSource } from "./snapshot.ts";

/**
 * How often health over NATS checks that its connector is still the engine's: a configuration
 * reload that changes the connector's declaration replaces the client, and health follows.
 */
export const REBIND_CHECK_MS = 1_000;

/** Options of {@link HealthService}. */
export interface HealthServiceOptions {
  /** For "health listening" and the lifecycle of health over NATS. */
  logger: Logger;
  /** Called when health over NATS fails beyond recovery (e.g. its credentials are refused). */
  onFatal?: (error: Error) => void;
}

/** The health endpoints of one running configuration. */
export class HealthService {
  /** Snapshots of the engine, shared by HTTP and NATS. */
  readonly monitor: HealthMonitor;
  readonly #engine: HealthSource;
  readonly #decl: HealthDecl;
  readonly #log: Logger;
  readonly #onFatal: ((error: Error) => void) | undefined;
  #http: HealthHttpServer | undefined;
  #nats: NatsHealth | undefined;
  #natsConnector: unknown;
  #rebindTimer: ReturnType<typeof setInterval> | undefined;
  #rebinding: Promise<void> | undefined;
  #natsStopped = false;
  #fatalError: Error | undefined;

  /**
   * Prepares the endpoints; nothing listens before {@link HealthService.startHttp}.
   *
   * @param engine The engine whose state is reported.
   * @param decl The validated `health:` section.
   * @param options Logger and fatal-failure callback.
   */
  constructor(engine: HealthSource, decl: HealthDecl, options: HealthServiceOptions) {
    this.#engine = engine;
    this.#decl = decl;
    this.#log = options.logger;
    this.#onFatal = options.onFatal;
    this.monitor = new HealthMonitor(engine, {
      instance: decl.instance,
      alsoInUse: decl.nats ? [decl.nats.connector] : [],
    });
  }

  /** The failure of health over NATS that stopped the process, if any. */
  get fatal(): Error | undefined {
    return this.#fatalError;
  }

  /** The HTTP server, once started (undefined with `listen: false`). */
  get http(): HealthHttpServer | undefined {
    return this.#http;
  }

  /**
   * Starts the HTTP endpoints, unless `listen: false`.
   *
   * @throws {RuntimeError} `health_listen` when the address cannot be bound.
   */
  startHttp(): void {
    const listen = this.#decl.listen;
    if (!listen || this.#http) return;
    this.#http = HealthHttpServer.start({ listen, health: this.monitor, logger: this.#log });
  }

  /**
   * Starts health over NATS in the background, when configured: its connector is opened like a
   * pipeline's (retrying while no server is reachable). A failure beyond recovery is reported
   * through `onFatal`.
   */
  startNats(): void {
    const decl = this.#decl.nats;
    if (!decl || this.#nats || this.#natsStopped) return;
    this.#bind();
    this.#rebindTimer = setInterval(() => {
      if (this.#rebinding) return;
      const current = this.#engine.connectors.get(decl.connector);
      if (current === undefined || current === this.#natsConnector) return;
      this.#rebinding = this.#rebind().finally(() => (this.#rebinding = undefined));
    }, REBIND_CHECK_MS);
  }

  /** Stops health over NATS and lets go of its connector; call before stopping the engine. */
  async stopNats(): Promise<void> {
    this.#natsStopped = true;
    clearInterval(this.#rebindTimer);
    await this.#rebinding;
    const nats = this.#nats;
    this.#nats = undefined;
    await nats?.stop();
  }

  #bind(): void {
    const decl = this.#decl.nats;
    if (!decl) return;
    const connector = this.#engine.connectors.get(decl.connector);
    this.#natsConnector = connector;
    let nats: NatsHealth;
    try {
      nats = new NatsHealth(connector, decl, this.monitor, this.#log);
    } catch (e) {
      this.#fatal(e);
      return;
    }
    this.#nats = nats;
    nats.start().catch((e: unknown) => this.#fatal(e));
  }

  /** Moves to the engine's new client of the connector, letting go of the replaced one. */
  async #rebind(): Promise<void> {
    const old = this.#nats;
    this.#nats = undefined;
    await old?.stop();
    if (this.#natsStopped) return;
    this.#log.info("health over NATS follows the reloaded connector", {
      connector: this.#decl.nats?.connector,
    });
    this.#bind();
  }

  /** Stops the HTTP endpoints; call last, so `/readyz` reports the shutdown while it lasts. */
  async stopHttp(): Promise<void> {
    const http = this.#http;
    this.#http = undefined;
    await http?.stop();
  }

  #fatal(e: unknown): void {
    const error = e instanceof Error ? e : new Error(String(e));
    this.#fatalError ??= error;
    this.#log.error("health over NATS failed", { error: error.message });
    this.#onFatal?.(error);
  }
}
