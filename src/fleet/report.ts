/**
 * What a gateway reports to the fleet: its status endpoint's reply and the report it publishes
 * after each apply. Shared by the gateway and the operator CLI.
 *
 * @module
 */

/** One pipeline of a gateway. */
export interface PipelineReport {
  name: string;
  /** From the gateway's local files or deployed through the fleet bucket. */
  origin: "local" | "deployed";
  /** The engine's state: starting, running, failed, stopping, stopped; `absent` when not run. */
  state: string;
  /** Deployed: the key and revision the bucket holds for this gateway. */
  key?: string;
  revision?: number;
  /** Deployed: whether that revision was applied or rejected here. */
  outcome?: "applied" | "rejected";
  /** Why it was rejected (config errors, never secrets) or failed to start. */
  error?: string;
  /** Rejected: the revision still running instead, if any. */
  runningRevision?: number;
}

/** A gateway's status (`sluice.fleet.<id>.status`, `sluice.fleet.report.<id>`). */
export interface GatewayStatus {
  id: string;
  labels: Record<string, string>;
  version: string;
  /** When the process started (ISO 8601) and for how long it has run. */
  startedAt: string;
  uptimeSeconds: number;
  /** Every pipeline is running. */
  ready: boolean;
  /** The bucket's current state has been read since start (false: running from state_dir). */
  synced: boolean;
  /** The last problem with the control plane (bucket missing, refused), if any. */
  lastError?: string;
  pipelines: PipelineReport[];
}
