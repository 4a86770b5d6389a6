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
  /** Events the filter passed (or all, without a filter). */
  passed: number;
  /** Events the filter rejected. */
  filtered: number;
  /** Events republished to the dead letter. */
  deadLettered: number;
  /** Payloads that are not valid UTF-8 JSON. */
  parseErrors: number;
  /** Events on which the filter failed to evaluate. */
  filterErrors: number;
  /** Sink subjects that could not be rendered from the event. */
  templateErrors: number;
  /** Sends refused or failed at a sink (overflow, publish error). */
  sinkErrors: number;
  /** Dead letters that could not be sent either. */
  deadLetterErrors: number;
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
    templateErrors: 0,
    sinkErrors: 0,
    deadLetterErrors: 0,
    lastEventAt: 0,
  };
}

/** Every event that failed somewhere, for the one-number summary. */
export function errorCount(c: PipelineCounters): number {
  return c.parseErrors + c.filterErrors + c.templateErrors + c.sinkErrors;
}
