/**
 * The validated configuration the engine runs: connectors and pipelines with their settings parsed
 * by their types' schemas, and where each was declared.
 *
 * @module
 */
import type { Location } from "../errors.ts";
import type { Filter } from "../filter/filter.ts";
import type { ProcessorDecl } from "../processors/chain.ts";
import type { AnyConnectorType } from "../registry.ts";

/** A connector declaration with its type-specific settings parsed. */
export interface ConnectorDecl {
  name: string;
  type: AnyConnectorType;
  settings: unknown;
  /** Canonical JSON of the declaration, to tell on reload whether it changed. */
  fingerprint: string;
  location: Location;
}

/** A sink's store-and-forward outbox (`buffer:`). */
export interface BufferDecl {
  /** File of the outbox. */
  path: string;
  /** Most bytes of events it holds. */
  maxSize: number;
  /** What happens to one more event when it is full. */
  overflow: "drop_oldest" | "drop_newest" | "block";
}

/** A source, sink or dead letter: the connector it uses and its type-specific settings. */
export interface EndpointDecl {
  connector: string;
  /** The subject or topic as written (the connector type's `addressKey`), for logs. */
  address?: string | undefined;
  settings: unknown;
  /** The sink's outbox, when it has one (never on a source). */
  buffer?: BufferDecl | undefined;
  /** A pipeline sink's `when`: it gets only the events for which this holds. */
  when?: Filter | undefined;
}

/** A pipeline declaration, fully validated. */
export interface PipelineDecl {
  name: string;
  source: EndpointDecl;
  filter: string | undefined;
  /** The processor chain, compiled: the top-level `filter` first, then `processors`. */
  processors: ProcessorDecl[];
  sinks: EndpointDecl[];
  deadLetter: EndpointDecl | undefined;
  /** `reply: true`: each request is answered with the resulting event (or an error reply). */
  reply: boolean;
  /** Largest payload decoded (`max_event_size`, bytes); the default when undefined. */
  maxEventSize?: number | undefined;
  fingerprint: string;
  location: Location;
}

/** An address to listen on. */
export interface ListenAddress {
  /** Host name or IP address; `127.0.0.1` unless the config names another. */
  hostname: string;
  /** TCP port; 0 lets the system pick a free one (the "health listening" log line tells which). */
  port: number;
}

/** Health over NATS: who answers `sluice.health.<instance>` and publishes heartbeats. */
export interface HealthNatsDecl {
  /** Name of the (nats) connector used; it is opened even when no pipeline uses it. */
  connector: string;
  /** Milliseconds between two heartbeats on `sluice.heartbeat.<instance>`. */
  interval: number;
}

/** The `health:` section, validated. */
export interface HealthDecl {
  /** Where the HTTP endpoints listen; undefined when `listen: false` (NATS only). */
  listen: ListenAddress | undefined;
  /**
   * Name of this gateway in snapshots and health subjects: `health.instance`, else the hostname.
   * A valid subject token whenever `nats` is set.
   */
  instance: string;
  /** Health over NATS, when configured. */
  nats: HealthNatsDecl | undefined;
  /** Where the section was declared. */
  location: Location;
}

/** The `fleet:` section, validated: pipelines deployed over NATS. */
export interface FleetDecl {
  /** Name of the nats connector that carries the control plane. */
  connector: string;
  /** This gateway's id: `fleet.id`, else the hostname; one token of KV keys and subjects. */
  id: string;
  /** Labels that `fleet deploy --label k=v` targets. */
  labels: Record<string, string>;
  /** The JetStream KV bucket holding deployed pipelines. */
  bucket: string;
  /** The JetStream domain of the bucket's server, when it is not the connector's own. */
  domain?: string | undefined;
  /** Where the last applied deployed pipelines are kept. */
  stateDir: string;
  /** Where the section was declared. */
  location: Location;
}

/** Everything one load produced. */
export interface Config {
  files: string[];
  connectors: Map<string, ConnectorDecl>;
  pipelines: Map<string, PipelineDecl>;
  /** The `health:` section; undefined when no file declares one (no health endpoints at all). */
  health: HealthDecl | undefined;
  /** The `fleet:` section; undefined when no file declares one. */
  fleet?: FleetDecl | undefined;
}
