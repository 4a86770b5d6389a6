/**
 * Per-pipeline counters, declared once. {@link PIPELINE_COUNTERS} names each counter with its
 * snake_case name, its meaning and the Prometheus sample it is, and everything else is derived from
 * it: the counter object the hot path increments, `/status`, `/metrics`, the heartbeat and the stop
 * summary. A new counter is one entry here.
 *
 * @module
 */

/** How one counter appears outside the process. */
export interface CounterSpec {
  /** Its name in `/status`, the heartbeat and the stop summary. */
  readonly snake: string;
  /** What it counts, for people (the Prometheus help text of a family of one). */
  readonly help: string;
  /** The Prometheus family it is a sample of, and the labels that tell it apart in the family. */
  readonly metric: { readonly family: string; readonly labels?: Readonly<Record<string, string>> };
  /** Counted in the one-number `errors` of summaries and heartbeats. */
  readonly error?: boolean;
  /** Shown in every heartbeat and the `sluice status` table, even at 0. */
  readonly main?: boolean;
}

/** Every pipeline counter. The outcomes of `sluice_pipeline_events_total` add up to `in`. */
export const PIPELINE_COUNTERS = {
  in: {
    snake: "in",
    help: "Events the pipeline's source received.",
    metric: { family: "sluice_pipeline_events_received_total" },
    main: true,
  },
  passed: {
    snake: "passed",
    help: "Received events that left the processor chain for the sinks.",
    metric: { family: "sluice_pipeline_events_total", labels: { outcome: "passed" } },
    main: true,
  },
  filtered: {
    snake: "filtered",
    help: "Events a processor dropped (a filter, dedupe, throttle or sample).",
    metric: { family: "sluice_pipeline_events_total", labels: { outcome: "filtered" } },
    main: true,
  },
  absorbed: {
    snake: "absorbed",
    help: "Events a window absorbed into an aggregate.",
    metric: { family: "sluice_pipeline_events_total", labels: { outcome: "absorbed" } },
  },
  parseErrors: {
    snake: "parse_errors",
    help: "Payloads that are not valid UTF-8 JSON.",
    metric: { family: "sluice_pipeline_events_total", labels: { outcome: "parse_error" } },
    error: true,
  },
  oversized: {
    snake: "oversized",
    help: "Events larger than the pipeline's max_event_size, dead-lettered undecoded.",
    metric: { family: "sluice_pipeline_events_total", labels: { outcome: "oversized" } },
    error: true,
  },
  filterErrors: {
    snake: "filter_errors",
    help: "Events on which the top-level filter failed to evaluate.",
    metric: { family: "sluice_pipeline_events_total", labels: { outcome: "filter_error" } },
    error: true,
  },
  processorErrors: {
    snake: "processor_errors",
    help: "Events on which a processor of the chain (or a sink's when) failed to evaluate.",
    metric: { family: "sluice_pipeline_events_total", labels: { outcome: "processor_error" } },
    error: true,
  },
  emitted: {
    snake: "emitted",
    help: "Events a window produced (aggregates) that left the chain for the sinks.",
    metric: { family: "sluice_pipeline_emitted_total" },
  },
  templateErrors: {
    snake: "template_errors",
    help: "Events for which a sink could not render its subject or topic.",
    metric: { family: "sluice_pipeline_sink_errors_total", labels: { kind: "template" } },
    error: true,
  },
  sinkErrors: {
    snake: "sink_errors",
    help: "Sends refused or failed at a sink (overflow, publish error).",
    metric: { family: "sluice_pipeline_sink_errors_total", labels: { kind: "send" } },
    error: true,
  },
  deadLettered: {
    snake: "dead_lettered",
    help: "Events republished to the pipeline's dead letter.",
    metric: { family: "sluice_pipeline_dead_lettered_total" },
    main: true,
  },
  deadLetterErrors: {
    snake: "dead_letter_errors",
    help: "Dead letters that could not be sent either.",
    metric: { family: "sluice_pipeline_dead_letter_errors_total" },
  },
  acked: {
    snake: "acked",
    help: "Messages of an acknowledging source acknowledged once every sink accepted them.",
    metric: { family: "sluice_pipeline_acks_total", labels: { outcome: "ack" } },
  },
  nacked: {
    snake: "nacked",
    help: "Messages of an acknowledging source handed back for redelivery after a sink failure.",
    metric: { family: "sluice_pipeline_acks_total", labels: { outcome: "nak" } },
  },
  terminated: {
    snake: "terminated",
    help: "Messages of an acknowledging source terminated as poison (never redelivered).",
    metric: { family: "sluice_pipeline_acks_total", labels: { outcome: "term" } },
  },
  buffered: {
    snake: "buffered",
    help: "Events stored in a sink's outbox instead of being sent at once.",
    metric: { family: "sluice_pipeline_outbox_events_total", labels: { outcome: "buffered" } },
  },
  replayed: {
    snake: "replayed",
    help: "Events sent from an outbox after the sink became available again.",
    metric: { family: "sluice_pipeline_outbox_events_total", labels: { outcome: "replayed" } },
  },
  bufferDropped: {
    snake: "buffer_dropped",
    help: "Stored events an outbox discarded to make room (overflow: drop_oldest).",
    metric: { family: "sluice_pipeline_outbox_events_total", labels: { outcome: "dropped" } },
    error: true,
  },
  replied: {
    snake: "replied",
    help: "Requests a reply: true pipeline answered with the resulting event.",
    metric: { family: "sluice_pipeline_replies_total", labels: { outcome: "event" } },
  },
  replyErrors: {
    snake: "reply_errors",
    help: "Requests a reply: true pipeline answered with an empty error reply (dropped, " +
      "invalid or failed event).",
    metric: { family: "sluice_pipeline_replies_total", labels: { outcome: "error" } },
  },
  replyFailures: {
    snake: "reply_failures",
    help: "Answers of a reply: true pipeline the connector could not send.",
    metric: { family: "sluice_pipeline_reply_failures_total" },
    error: true,
  },
} as const satisfies Record<string, CounterSpec>;

/** Help texts of the families with more than one counter, by family name. */
export const COUNTER_FAMILY_HELP: Readonly<Record<string, string>> = {
  "sluice_pipeline_events_total": "Received events by outcome (passed, filtered, absorbed, " +
    "parse_error, oversized, filter_error, processor_error); the outcomes add up to the events " +
    "received.",
  "sluice_pipeline_sink_errors_total": "Events a sink did not send: kind template (no subject " +
    "or topic could be rendered) or send (refused or failed by the connector).",
  "sluice_pipeline_acks_total": "Settled messages of an acknowledging source (JetStream, MQTT " +
    "QoS 1) by outcome: ack, nak, term.",
  "sluice_pipeline_outbox_events_total": "Outbox events by outcome: buffered (stored), " +
    "replayed (sent later), dropped (discarded to make room).",
  "sluice_pipeline_replies_total": "Requests a reply: true pipeline answered, by outcome: event " +
    "(the resulting event), error (an empty error reply).",
};

/** A counter's name in code. */
export type CounterName = keyof typeof PIPELINE_COUNTERS;

/** The counters in declaration order. */
export const COUNTER_NAMES: readonly CounterName[] = Object.keys(
  PIPELINE_COUNTERS,
) as CounterName[];

/** What happened to the events of one pipeline since the process started. */
export type PipelineCounters = Record<CounterName, number> & {
  /** When the last event arrived (ms since epoch), 0 before the first. */
  lastEventAt: number;
};

/** A zeroed counter set. */
export function newCounters(): PipelineCounters {
  const c = { lastEventAt: 0 } as PipelineCounters;
  for (const name of COUNTER_NAMES) c[name] = 0;
  return c;
}

/** Every event that failed somewhere, for the one-number summary. */
export function errorCount(c: PipelineCounters): number {
  let n = 0;
  for (const name of COUNTER_NAMES) {
    if ((PIPELINE_COUNTERS[name] as CounterSpec).error) n += c[name];
  }
  return n;
}

/**
 * The counters by snake_case name for a summary line or a heartbeat: the main ones always, the
 * others only when they moved, so that a plain pipeline's line stays short; plus `errors`, every
 * event that failed somewhere.
 *
 * @param c Counters by camelCase name (live) or by snake_case name (from a snapshot).
 */
export function counterSummary(
  c: PipelineCounters | Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  let errors = 0;
  for (const name of COUNTER_NAMES) {
    const spec: CounterSpec = PIPELINE_COUNTERS[name];
    const value = (c as Record<string, number>)[name] ??
      (c as Record<string, number>)[spec.snake] ?? 0;
    if (spec.main || value !== 0) out[spec.snake] = value;
    if (spec.error) errors += value;
  }
  out.errors = errors;
  return out;
}

/** Every counter by snake_case name, for `/status`. */
export function countersBySnake(c: PipelineCounters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of COUNTER_NAMES) out[PIPELINE_COUNTERS[name].snake] = c[name];
  return out;
}
