/**
 * The validated configuration the engine runs: connectors and pipelines with their settings parsed
 * by their types' schemas, and where each was declared.
 *
 * @module
 */
import type { Location } from "../errors.ts";
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

/** A source, sink or dead letter: the connector it uses and its type-specific settings. */
export interface EndpointDecl {
  connector: string;
  settings: unknown;
}

/** A pipeline declaration, fully validated. */
export interface PipelineDecl {
  name: string;
  source: EndpointDecl;
  filter: string | undefined;
  sinks: EndpointDecl[];
  deadLetter: EndpointDecl | undefined;
  fingerprint: string;
  location: Location;
}

/** Everything one load produced. */
export interface Config {
  files: string[];
  connectors: Map<string, ConnectorDecl>;
  pipelines: Map<string, PipelineDecl>;
}
