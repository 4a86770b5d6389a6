/**
 * What one benchmark run records: the measurements of each throughput and latency run and the
 * results file that holds them, shared by the runner (which fills them) and the report (which
 * renders them).
 *
 * @module
 */

/** Implementations under test. */
export type Impl = "baseline" | "sluice";

/** One throughput run of one implementation. */
export interface ThroughputRun {
  eventsPerS: number;
  events: number;
  expected: number;
  received: number;
  /** Sum of the consumer's own `in` counts. */
  consumed: number;
  publishMs: number;
  windowMs: number;
  readyMs: number;
  peakRssMiB: number;
  /** Anonymous (private) part of the resident set at the end of the run, without mapped files. */
  endAnonMiB: number;
  /** Mapped files (mostly the deno executable) in the resident set at the end of the run. */
  endFileMiB: number;
  /** RSS when the program says it has subscribed (`started`). */
  subscribedRssMiB?: number;
  /**
   * RSS one second after `started`, before any event (NaN for a JetStream source, which
   * consumes at once). Results files before 2026-11-30 recorded the RSS at `started` here.
   */
  idleRssMiB: number;
  cpuUsPerEvent: number;
  /** CPU time of nats-server over the same interval, per event. */
  serverCpuUsPerEvent?: number;
  /** Sends the program refused or that failed (`sink_errors`; the baseline's `errors`). */
  sinkErrors?: number;
  /** JetStream source: messages the program says it acked. */
  acked?: number;
  /** JetStream source: the consumer's ack floor on the server after the run (= events when all acked). */
  serverAcked?: number;
  /** JetStream source: messages still pending or unacked on the server after the run. */
  serverPending?: number;
  /** JetStream source: messages the server delivered more than once. */
  redelivered?: number;
  /** JetStream source: rate at which the server stored the core publishes of the stream's fill. */
  ingestEventsPerS?: number;
  /** JetStream sink: messages in the sink stream after the run. */
  stored?: number;
  /**
   * Slow consumers nats-server counted during the run: a receiver (the counter, or the program
   * under test) fell so far behind that the server dropped messages to it.
   */
  slowConsumers?: number;
  /** Events the program says it passed or dead-lettered, from its summary. */
  sent?: number;
  /**
   * What the program logged about failed events (Sluice's `event rejected` and `jetstream publish
   * failed` warnings), kept only for a run with a loss so that its report says why.
   */
  failures?: string[];
}

/** Events or outputs a run did not account for: 0 in every valid run. */
export function lostIn(x: ThroughputRun): number {
  return (x.expected - x.received) + (x.events - x.consumed) +
    (x.serverAcked === undefined ? 0 : x.events - x.serverAcked + (x.serverPending ?? 0)) +
    (x.stored === undefined ? 0 : x.expected - x.stored) + (x.sinkErrors ?? 0);
}

/** One latency phase of one implementation. */
export interface LatencyPhase {
  rate: number;
  sent: number;
  expected: number;
  received: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface LatencyRun {
  phases: LatencyPhase[];
  readyMs: number;
  peakRssMiB: number;
}

/** The results file: `bench/results/<name>.json`. */
export interface Results {
  meta: Record<string, unknown>;
  throughput: Record<string, Partial<Record<Impl, ThroughputRun[]>>>;
  latency: Record<string, Partial<Record<Impl | "floor", LatencyRun[]>>>;
}
