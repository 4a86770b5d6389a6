/**
 * The health model: one JSON-ready snapshot of the connectors, pipelines and process, derived
 * from live state every time it is taken. Readiness is computed from the connectors' current
 * states (kept from their clients' status events) and the pipelines' lifecycle, never from a flag
 * set once, so it turns false when a connection drops and true again when it comes back.
 *
 * The snapshot holds no credentials: connector health records carry no auth fields, and error
 * messages come from the client, not from the configuration.
 *
 * @example Take a snapshot of an engine
 * ```ts ignore
 * const snapshot = takeSnapshot(engine, { instance: "gw-01" });
 * if (!snapshot.ready) console.log(snapshot.not_ready.map((n) => n.reason));
 * ```
 *
 * @module
 */
import type { BufferHealth } from "../engine/buffered_sink.ts";
import {
  type CounterName,
  countersBySnake,
  type PIPELINE_COUNTERS,
  type PipelineCounters,
} from "../engine/counters.ts";
import type { PipelineState, ProcessorHealth } from "../engine/pipeline.ts";
import type { ProcessorStats } from "../processors/types.ts";
import type { ConnectorHealth, ConnectorState } from "../engine/types.ts";
import { VERSION } from "../version.ts";

/** How a pipeline is doing, as health reports it. */
export type PipelineHealthState = "starting" | "running" | "degraded" | "failed" | "stopped";

/** Every pipeline health state, for enumerations (metrics, tables). */
export const PIPELINE_HEALTH_STATES: readonly PipelineHealthState[] = [
  "starting",
  "running",
  "degraded",
  "failed",
  "stopped",
];

/** Every connector state, for enumerations (metrics, tables). */
export const CONNECTOR_STATES: readonly ConnectorState[] = [
  "connecting",
  "connected",
  "reconnecting",
  "disconnected",
  "closed",
];

/** One connector in a snapshot. Times are ISO 8601 strings. */
export interface ConnectorSnapshot {
  /** The connector's name in the config. */
  name: string;
  /** Its `type:`, e.g. `nats`. */
  type: string;
  /** Connection state, from the client's status events. */
  state: ConnectorState;
  /** Whether a pipeline (or health over NATS) uses it; only connectors in use count for readiness. */
  "in_use": boolean;
  /** When the state last changed. */
  since: string;
  /** Reconnections since the connection was first made. */
  reconnects: number;
  /** The last error the client reported (never credentials), or null. */
  "last_error": { message: string; at: string } | null;
  /** The server connected to, while connected. */
  server: { id: string; version: string; url: string } | null;
  /** Round-trip time to the server in milliseconds, when connected and measured. */
  "rtt_ms": number | null;
  /** Messages received from the server. */
  "messages_in": number;
  /** Messages sent to the server. */
  "messages_out": number;
  /** Payload bytes received. */
  "bytes_in": number;
  /** Payload bytes sent. */
  "bytes_out": number;
  /** Events refused because too much sent data was unconfirmed by the server. */
  overflows: number;
  /** Pipelines (and health over NATS) holding the connection open now. */
  users: number;
}

/**
 * The event counters of one pipeline by their snake_case names, derived from
 * {@link PIPELINE_COUNTERS} (where each one's meaning is declared).
 */
export type PipelineCountersSnapshot = {
  -readonly [K in CounterName as (typeof PIPELINE_COUNTERS)[K]["snake"]]: number;
};

/** One processor of a pipeline's chain in a snapshot. */
export interface ProcessorSnapshot {
  /** Its 0-based index and kind, e.g. `1:map`; `filter` for the top-level filter. */
  processor: string;
  /** Events handed to it. */
  in: number;
  /** Events it passed on (or emitted, for a window). */
  out: number;
  /** Events it dropped (not errors). */
  dropped: number;
  /** Events on which it failed (dead-lettered). */
  errors: number;
  /** Keys forgotten to stay within `max_keys`. */
  evicted: number;
  /** Keys held in its state now. */
  keys: number;
  /** The kind's own statistics (a request's requests, timeouts, cache hits, latency), if any. */
  stats?: ProcessorStats;
}

/** One store-and-forward outbox of a pipeline's sinks in a snapshot. */
export interface OutboxSnapshot {
  /** The outbox file. */
  path: string;
  /** Events waiting in it. */
  events: number;
  /** Bytes of those events. */
  bytes: number;
  /** Events it discarded to make room since start (`drop_oldest`). */
  dropped: number;
  /** Whether it is sending stored events now. */
  replaying: boolean;
}

/** One pipeline in a snapshot. */
export interface PipelineSnapshot {
  /** The pipeline's name in the config. */
  name: string;
  /** `degraded` when running while one of its connectors is not connected. */
  state: PipelineHealthState;
  /** The connectors it uses: source, sinks, dead letter. */
  connectors: string[];
  /** What happened to its events since the process started (kept across reloads). */
  counters: PipelineCountersSnapshot;
  /** Its processors, in chain order. */
  processors: ProcessorSnapshot[];
  /** The outboxes of its sinks. */
  outboxes: OutboxSnapshot[];
  /** Why it failed to start, when its state is `failed`; null otherwise. */
  error: string | null;
  /**
   * Messages received by the source but not yet handed to the pipeline. Always 0 for core NATS
   * sources, which hand every message over synchronously on the client's read loop.
   */
  "in_flight": number;
  /** When the last event arrived, or null before the first. */
  "last_event_at": string | null;
}

/** The Sluice process in a snapshot. */
export interface ProcessSnapshot {
  /** The running Sluice version. */
  version: string;
  /** `health.instance`, by default the hostname. */
  instance: string;
  /** Process id. */
  pid: number;
  /** When the engine was created (ISO 8601). */
  "started_at": string;
  /** Seconds since then. */
  "uptime_seconds": number;
  /** Resident set size. */
  "rss_bytes": number;
  /** V8 heap in use. */
  "heap_used_bytes": number;
  /** V8 heap reserved. */
  "heap_total_bytes": number;
}

/** Something that keeps the process from being ready, and why. */
export interface NotReady {
  /** What is not ready. */
  kind: "connector" | "pipeline";
  /** Its name in the config. */
  name: string;
  /** Its state (a connector or pipeline state). */
  state: string;
  /** One sentence for people, e.g. `connector "local" is reconnecting since …`. */
  reason: string;
}

/** Everything health reports at one moment: `/status`, the NATS responder, `/metrics`. */
export interface HealthSnapshot {
  /** True when every connector in use is connected and every pipeline is running. */
  ready: boolean;
  /** Why not ready; empty when ready. */
  "not_ready": NotReady[];
  /** When the snapshot was taken. */
  time: string;
  /** The Sluice process. */
  process: ProcessSnapshot;
  /** Every declared connector, in use or not. */
  connectors: ConnectorSnapshot[];
  /** Every pipeline. */
  pipelines: PipelineSnapshot[];
  /**
   * Configuration reloads since start, when the engine reloads. `last_error` names where the
   * last failure is (file, line, key path) but not its message: messages may quote configuration
   * values, which may be secrets; the log has them.
   */
  reloads: {
    applied: number;
    rejected: number;
    "last_at": string | null;
    "last_error": string | null;
  } | null;
}

/** What health needs of a connector; {@link Connector} provides it. */
export interface HealthConnector {
  /** The connector's health record. */
  health(): ConnectorHealth;
  /** Round-trip time to the server in milliseconds, when it can measure one. */
  rtt?(): Promise<number | undefined>;
}

/** What health needs of a pipeline; the engine's `Pipeline` provides it. */
export interface HealthPipeline {
  /** The pipeline's name. */
  readonly name: string;
  /** Its lifecycle state. */
  readonly state: PipelineState;
  /** Its live counters. */
  readonly counters: PipelineCounters;
  /** The connectors it uses. */
  connectorNames(): string[];
  /** Events received but not yet handled. */
  inFlight(): number;
  /** Its processors with their counters. @default none */
  processors?(): readonly ProcessorHealth[];
  /** The outboxes of its sinks. @default none */
  buffers?(): readonly BufferHealth[];
  /** Why it failed to start, when its state is `failed`. */
  readonly error?: string | undefined;
}

/** Where snapshots come from; the `Engine` provides it. */
export interface HealthSource {
  /** Every declared connector by name. */
  readonly connectors: ReadonlyMap<string, HealthConnector>;
  /** Every pipeline by name. */
  readonly pipelines: ReadonlyMap<string, HealthPipeline>;
  /** When the engine was created (ms since epoch). */
  readonly startedAt: number;
  /** Reload counts, when the engine reloads configuration. */
  readonly reloads?: {
    readonly applied: number;
    readonly rejected: number;
    readonly lastAt: number;
    readonly lastError: string | undefined;
  };
}

/** Process memory as `Deno.memoryUsage()` reports it. */
export interface MemoryUsage {
  /** Resident set size in bytes. */
  rss: number;
  /** V8 heap in use, in bytes. */
  heapUsed: number;
  /** V8 heap reserved, in bytes. */
  heapTotal: number;
}

/** Options of {@link takeSnapshot}. */
export interface SnapshotOptions {
  /** Name of this gateway. */
  instance: string;
  /**
   * Connectors in use besides those of the pipelines, e.g. the one of health over NATS.
   * @default []
   */
  alsoInUse?: readonly string[];
  /** Round-trip times by connector name, from {@link measureRtt}. @default none */
  rtt?: ReadonlyMap<string, number>;
  /** The current time (ms since epoch). @default Date.now() */
  now?: number;
  /** Reads process memory. @default Deno.memoryUsage */
  memory?: () => MemoryUsage;
  /** The version to report. @default the running version */
  version?: string;
  /** The process id to report. @default Deno.pid */
  pid?: number;
}

/**
 * Derives the health state of one pipeline: its own lifecycle, and `degraded` while running with
 * a connector that is not connected.
 *
 * @param state The pipeline's lifecycle state.
 * @param connectorStates States of the connectors it uses.
 * @returns The state health reports.
 */
export function pipelineHealthState(
  state: PipelineState,
  connectorStates: readonly ConnectorState[],
): PipelineHealthState {
  switch (state) {
    case "starting":
      return "starting";
    case "running":
      return connectorStates.every((s) => s === "connected") ? "running" : "degraded";
    case "failed":
      return "failed";
    case "stopping":
    case "stopped":
      return "stopped";
  }
}

/**
 * Takes a snapshot of everything health reports, from the live state of `source`.
 *
 * @param source The engine (or anything shaped like it).
 * @param options Instance name and the inputs that tests replace.
 * @returns The snapshot, ready for `JSON.stringify`.
 */
export function takeSnapshot(source: HealthSource, options: SnapshotOptions): HealthSnapshot {
  const now = options.now ?? Date.now();
  const inUse = new Set(options.alsoInUse ?? []);
  for (const p of source.pipelines.values()) for (const c of p.connectorNames()) inUse.add(c);

  const healthByName = new Map<string, ConnectorHealth>();
  const connectors: ConnectorSnapshot[] = [];
  for (const [name, c] of source.connectors) {
    const h = c.health();
    healthByName.set(name, h);
    connectors.push(connectorSnapshot(h, inUse.has(name), options.rtt?.get(name)));
  }

  const notReady: NotReady[] = [];
  for (const c of connectors) {
    if (!c.in_use || c.state === "connected") continue;
    notReady.push({
      kind: "connector",
      name: c.name,
      state: c.state,
      reason: `connector "${c.name}" is ${c.state} since ${c.since}${
        c.last_error ? `; last error: ${c.last_error.message}` : ""
      }`,
    });
  }

  const pipelines: PipelineSnapshot[] = [];
  for (const p of source.pipelines.values()) {
    const names = p.connectorNames();
    const states = names.map((n) => healthByName.get(n)?.state ?? "closed");
    const state = pipelineHealthState(p.state, states);
    pipelines.push(pipelineSnapshot(p, names, state));
    if (state !== "running") {
      notReady.push({
        kind: "pipeline",
        name: p.name,
        state,
        reason: pipelineReason(p.name, state, names, states, p.error),
      });
    }
  }

  const memory = (options.memory ?? Deno.memoryUsage)();
  return {
    ready: notReady.length === 0,
    "not_ready": notReady,
    time: iso(now),
    process: {
      version: options.version ?? VERSION,
      instance: options.instance,
      pid: options.pid ?? Deno.pid,
      "started_at": iso(source.startedAt),
      "uptime_seconds": Math.max(0, (now - source.startedAt) / 1000),
      "rss_bytes": memory.rss,
      "heap_used_bytes": memory.heapUsed,
      "heap_total_bytes": memory.heapTotal,
    },
    connectors,
    pipelines,
    reloads: source.reloads
      ? {
        applied: source.reloads.applied,
        rejected: source.reloads.rejected,
        "last_at": source.reloads.lastAt > 0 ? iso(source.reloads.lastAt) : null,
        "last_error": source.reloads.lastError ?? null,
      }
      : null,
  };
}

/**
 * Measures the round-trip time of every connected connector that can, concurrently, giving up on
 * each after `timeoutMs` so that a dead link cannot hold up a status request.
 *
 * @param source The engine.
 * @param timeoutMs How long to wait for one answer.
 * @returns Round-trip times in milliseconds by connector name; missing where not measured.
 */
export async function measureRtt(
  source: HealthSource,
  timeoutMs = 1000,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  await Promise.all(
    [...source.connectors].map(async ([name, c]) => {
      if (!c.rtt || c.health().state !== "connected") return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), timeoutMs);
      });
      try {
        const ms = await Promise.race([c.rtt().catch(() => undefined), timeout]);
        if (ms !== undefined) out.set(name, ms);
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return out;
}

function connectorSnapshot(
  h: ConnectorHealth,
  inUse: boolean,
  rtt: number | undefined,
): ConnectorSnapshot {
  const connected = h.state === "connected";
  return {
    name: h.name,
    type: h.type,
    state: h.state,
    "in_use": inUse,
    since: iso(h.since),
    reconnects: h.reconnects,
    "last_error": h.lastError ? { message: h.lastError.message, at: iso(h.lastError.at) } : null,
    server: connected && h.server
      ? { id: h.server.id, version: h.server.version, url: h.server.url }
      : null,
    "rtt_ms": connected && rtt !== undefined ? rtt : null,
    "messages_in": h.messagesIn,
    "messages_out": h.messagesOut,
    "bytes_in": h.bytesIn,
    "bytes_out": h.bytesOut,
    overflows: h.overflows,
    users: h.users,
  };
}

function pipelineSnapshot(
  p: HealthPipeline,
  connectors: string[],
  state: PipelineHealthState,
): PipelineSnapshot {
  const c = p.counters;
  return {
    name: p.name,
    state,
    connectors,
    counters: countersBySnake(c) as PipelineCountersSnapshot,
    processors: (p.processors?.() ?? []).map((x) => ({
      processor: x.label,
      in: x.counters.in,
      out: x.counters.out,
      dropped: x.counters.dropped,
      errors: x.counters.errors,
      evicted: x.counters.evicted,
      keys: x.keys,
      ...(x.stats ? { stats: x.stats } : {}),
    })),
    outboxes: (p.buffers?.() ?? []).map((b) => ({
      path: b.path,
      events: b.events,
      bytes: b.bytes,
      dropped: b.dropped,
      replaying: b.replaying,
    })),
    error: state === "failed" ? p.error ?? "failed to start" : null,
    "in_flight": p.inFlight(),
    "last_event_at": c.lastEventAt > 0 ? iso(c.lastEventAt) : null,
  };
}

function pipelineReason(
  name: string,
  state: PipelineHealthState,
  connectors: readonly string[],
  states: readonly ConnectorState[],
  error: string | undefined,
): string {
  const down = connectors
    .map((c, i) => ({ c, s: states[i] ?? "closed" }))
    .filter(({ s }) => s !== "connected")
    .map(({ c, s }) => `connector "${c}" is ${s}`);
  const why = down.length > 0 ? `: ${down.join(", ")}` : "";
  switch (state) {
    case "starting":
      return `pipeline "${name}" is starting${why}`;
    case "degraded":
      return `pipeline "${name}" is degraded${why}`;
    case "failed":
      return `pipeline "${name}" failed to start${error ? `: ${error}` : ""}`;
    default:
      return `pipeline "${name}" is ${state}`;
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Takes snapshots of one source with fixed options; what the endpoints are given. */
export class HealthMonitor {
  readonly #source: HealthSource;
  readonly #options: SnapshotOptions;
  readonly #rttTimeoutMs: number;

  /**
   * Binds a source to the options every snapshot uses.
   *
   * @param source The engine.
   * @param options Instance name and the connectors in use besides the pipelines' ones.
   * @param rttTimeoutMs How long {@link HealthMonitor.detailedSnapshot} waits for one RTT.
   */
  constructor(source: HealthSource, options: SnapshotOptions, rttTimeoutMs = 1000) {
    this.#source = source;
    this.#options = options;
    this.#rttTimeoutMs = rttTimeoutMs;
  }

  /** The instance name snapshots carry. */
  get instance(): string {
    return this.#options.instance;
  }

  /**
   * A snapshot of this moment, without round-trip times (it awaits nothing): for readiness and
   * heartbeats.
   *
   * @returns The snapshot.
   */
  snapshot(): HealthSnapshot {
    return takeSnapshot(this.#source, this.#options);
  }

  /**
   * A snapshot with the round-trip time of every connected connector: for `/status`, `/metrics`
   * and the NATS responder.
   *
   * @returns The snapshot, taken once the round trips are measured.
   */
  async detailedSnapshot(): Promise<HealthSnapshot> {
    const rtt = await measureRtt(this.#source, this.#rttTimeoutMs);
    return takeSnapshot(this.#source, { ...this.#options, rtt });
  }
}
