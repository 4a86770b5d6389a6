/**
 * Per-pipeline counters. Plain numbers on one object: incremented on the hot path, read by health
 * and the shutdown summary.
 *
 * @module
 */

/** What happened to the events of one pipeline since it started. */
export interface PipelineCounters {
  /** Events received from the source. */
  in: number;
  /** Events that left the processor chain for the sinks (all, without processors). */
  passed: number;
  /** Events a processor (a filter, dedupe, throttle or sample) dropped. */
  filtered: number;
  /** Events republished to the dead letter. */
  deadLettered: number;
  /** Payloads that are not valid UTF-8 JSON. */
  parseErrors: number;
  /** Events on which the top-level filter failed to evaluate. */
  filterErrors: number;
  /** Events on which a processor of the `processors:` chain (or a sink's `when`) failed. */
  processorErrors: number;
  /** Sink subjects that could not be rendered from the event. */
  templateErrors: number;
  /** Sends refused or failed at a sink (overflow, publish error). */
  sinkErrors: number;
  /** Dead letters that could not be sent either. */
  deadLetterErrors: number;
  /** Messages of an acknowledging source acknowledged after every sink accepted them. */
  acked: number;
  /** Messages of an acknowledging source handed back for redelivery after a sink failure. */
  nacked: number;
  /** Messages of an acknowledging source terminated as poison (never redelivered). */
  terminated: number;
  /** Events stored in a sink's store-and-forward outbox instead of being sent at once. */
  buffered: number;
  /** Events sent from an outbox after the sink became available again. */
  replayed: number;
  /**
   * Stored events an outbox discarded to make room (`overflow: drop_oldest`). A full outbox that
   * refuses a new event (`drop_newest`) reports a sink overflow instead, counted in `sinkErrors`.
   */
  bufferDropped: number;
  /** When the last event arrived (ms since epoch), 0 before the first. */
  lastEventAt: number;
}

/** A zeroed counter set. */
export function newCounters(): PipelineCounters {
  return {
    in: 0,
    passed: 0,
    filtered: 0,
    deadLettered: 0,
    parseErrors: 0,
    filterErrors: 0,
    processorErrors: 0,
    templateErrors: 0,
    sinkErrors: 0,
    deadLetterErrors: 0,
    acked: 0,
    nacked: 0,
    terminated: 0,
    buffered: 0,
    replayed: 0,
    bufferDropped: 0,
    lastEventAt: 0,
  };
}

/** Every event that failed somewhere, for the one-number summary. */
export function errorCount(c: PipelineCounters): number {
  return c.parseErrors + c.filterErrors + c.processorErrors + c.templateErrors + c.sinkErrors +
    c.bufferDropped;
}

/**
 * The acknowledgement and outbox counters for a summary line, only those that moved, so a core
 * NATS pipeline's summary stays as short as before.
 */
export function deliverySummary(c: PipelineCounters): Record<string, number> {
  const out: Record<string, number> = {};
  if (c.sinkErrors) out.sink_errors = c.sinkErrors;
  if (c.acked) out.acked = c.acked;
  if (c.nacked) out.nacked = c.nacked;
  if (c.terminated) out.terminated = c.terminated;
  if (c.buffered) out.buffered = c.buffered;
  if (c.replayed) out.replayed = c.replayed;
  if (c.bufferDropped) out.buffer_dropped = c.bufferDropped;
  return out;
}
