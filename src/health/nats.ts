/**
 * Health over NATS, for fleets: a request-reply responder on `sluice.health.<instance>` that
 * answers with the JSON snapshot, and a compact heartbeat on `sluice.heartbeat.<instance>` every
 * interval. A fleet engineer subscribes to `sluice.heartbeat.>` to watch every gateway, and asks
 * one of them for details, without opening a port on any.
 *
 * @module
 */
import type { HealthNatsDecl } from "../config/config.ts";
import { type ConnectorState, isServing, type ServingConnector } from "../engine/types.ts";
import { RuntimeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { counterSummary } from "../engine/counters.ts";
import type { HealthMonitor, HealthSnapshot, PipelineHealthState } from "./snapshot.ts";

/** Subjects of health requests are this prefix plus `.<instance>`. */
export const HEALTH_SUBJECT_PREFIX = "sluice.health";
/** Subjects of heartbeats are this prefix plus `.<instance>`. */
export const HEARTBEAT_SUBJECT_PREFIX = "sluice.heartbeat";

/** A compact summary of a snapshot, published as a heartbeat. */
export interface Heartbeat {
  /** `health.instance`. */
  instance: string;
  /** The running Sluice version. */
  version: string;
  /** When it was sent (ISO 8601). */
  time: string;
  /** Seconds since the process started. */
  "uptime_seconds": number;
  /** As `/readyz`: every connector in use connected, every pipeline running. */
  ready: boolean;
  /** State of each connector in use, by name. */
  connectors: Record<string, ConnectorState>;
  /** State and main counters of each pipeline, by name. */
  pipelines: Record<string, HeartbeatPipeline>;
}

/**
 * One pipeline in a {@link Heartbeat}: its state, the main counters (in, passed, filtered,
 * dead_lettered) always, every other counter of `PIPELINE_COUNTERS` once it moved, `errors`
 * (every failed event), and the events waiting in its outboxes when it has any.
 */
export interface HeartbeatPipeline {
  /** As in the snapshot: starting, running, degraded, failed or stopped. */
  state: PipelineHealthState;
  /** Counters by snake_case name. */
  [counter: string]: number | string;
}

/**
 * Summarises a snapshot for a heartbeat.
 *
 * @param s The snapshot.
 * @returns The heartbeat.
 */
export function heartbeatOf(s: HealthSnapshot): Heartbeat {
  const connectors: Record<string, ConnectorState> = {};
  for (const c of s.connectors) if (c.in_use) connectors[c.name] = c.state;
  const pipelines: Record<string, HeartbeatPipeline> = {};
  for (const p of s.pipelines) {
    const beat: HeartbeatPipeline = { state: p.state, ...counterSummary(p.counters) };
    if (p.outboxes.length > 0) beat.outbox_events = p.outboxes.reduce((n, o) => n + o.events, 0);
    pipelines[p.name] = beat;
  }
  return {
    instance: s.process.instance,
    version: s.process.version,
    time: s.time,
    "uptime_seconds": s.process.uptime_seconds,
    ready: s.ready,
    connectors,
    pipelines,
  };
}

const encoder = new TextEncoder();

/** The responder and heartbeat of one instance, on one nats connector. */
export class NatsHealth {
  /** `sluice.health.<instance>`. */
  readonly requestSubject: string;
  /** `sluice.heartbeat.<instance>`. */
  readonly heartbeatSubject: string;
  readonly #connector: ServingConnector;
  readonly #intervalMs: number;
  readonly #monitor: HealthMonitor;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  #starting: Promise<void> | undefined;
  #acquired = false;
  #sub: { stop(): void } | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * Prepares the responder and heartbeat; nothing happens before {@link NatsHealth.start}.
   *
   * @param connector The connector named by `health.nats.connector`.
   * @param decl Connector name and heartbeat interval.
   * @param monitor Where snapshots come from; its instance names the subjects.
   * @param logger For lifecycle lines.
   * @throws {RuntimeError} `health_connector` when the connector is not a nats connector.
   */
  constructor(
    connector: unknown,
    decl: HealthNatsDecl,
    monitor: HealthMonitor,
    logger: Logger,
  ) {
    if (!isServing(connector)) {
      throw new RuntimeError(
        "health_connector",
        `Connector "${decl.connector}" cannot carry health over NATS: it is not a nats connector`,
      );
    }
    this.#connector = connector;
    this.#intervalMs = decl.interval;
    this.#monitor = monitor;
    this.#log = logger;
    this.requestSubject = `${HEALTH_SUBJECT_PREFIX}.${monitor.instance}`;
    this.heartbeatSubject = `${HEARTBEAT_SUBJECT_PREFIX}.${monitor.instance}`;
  }

  /**
   * Opens the connector (waiting, like the pipelines, while no server is reachable), subscribes
   * the responder and starts the heartbeat. Resolves early when stopped meanwhile.
   *
   * @throws When the connector cannot be opened for good (e.g. refused credentials).
   */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  /** Stops the heartbeat and the responder and lets go of the connector. */
  async stop(): Promise<void> {
    this.#abort.abort(new Error("stopping"));
    await this.#starting?.catch(() => {});
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sub?.stop();
    this.#sub = undefined;
    if (this.#acquired) {
      this.#acquired = false;
      await this.#connector.release();
    }
  }

  async #start(): Promise<void> {
    const signal = this.#abort.signal;
    try {
      await this.#connector.acquire(signal);
    } catch (e) {
      if (signal.aborted) return;
      throw e;
    }
    this.#acquired = true;
    if (signal.aborted) return;
    this.#sub = await this.#connector.serve(
      this.requestSubject,
      async () => encoder.encode(JSON.stringify(await this.#monitor.detailedSnapshot())),
      (e: unknown) => this.#log.warn("health response failed", { error: String(e) }),
    );
    if (signal.aborted) return;
    this.#beat();
    this.#timer = setInterval(() => this.#beat(), this.#intervalMs);
    this.#log.info("health over NATS", {
      connector: this.#connector.name,
      subject: this.requestSubject,
      heartbeat: this.heartbeatSubject,
      interval_ms: this.#intervalMs,
    });
  }

  #beat(): void {
    // A heartbeat says "alive now": never queue one in the client while disconnected.
    if (this.#connector.health().state !== "connected") return;
    try {
      const data = encoder.encode(JSON.stringify(heartbeatOf(this.#monitor.snapshot())));
      const failure = this.#connector.publishBytes(this.heartbeatSubject, data);
      if (failure) this.#log.debug("heartbeat not sent", { reason: failure.reason });
    } catch (e) {
      this.#log.warn("heartbeat failed", { error: String(e) });
    }
  }
}
