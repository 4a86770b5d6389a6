/**
 * Sluice's Prometheus metrics, derived from a {@link HealthSnapshot}. The names are a stable
 * interface: dashboards and alerts depend on them, so they change only with a major version.
 * `docs_health.md` lists every one with its meaning.
 *
 * Connector metrics cover the connectors in use (named by a pipeline or by `health.nats`); a
 * declared but unused connector has nothing to report.
 *
 * @module
 */
import { type MetricFamily, renderExposition, type Sample } from "./prometheus.ts";
import {
  COUNTER_FAMILY_HELP,
  COUNTER_NAMES,
  type CounterSpec,
  PIPELINE_COUNTERS,
} from "../engine/counters.ts";
import {
  CONNECTOR_STATES,
  type ConnectorSnapshot,
  type HealthSnapshot,
  type OutboxSnapshot,
  PIPELINE_HEALTH_STATES,
  type PipelineSnapshot,
  type ProcessorSnapshot,
} from "./snapshot.ts";

/**
 * Every metric family name Sluice exports, in output order. Tests pin this list so that a rename
 * is a deliberate change.
 */
export const METRIC_NAMES: readonly string[] = [
  "sluice_build_info",
  "sluice_ready",
  "sluice_process_start_time_seconds",
  "sluice_process_uptime_seconds",
  "sluice_process_resident_memory_bytes",
  "sluice_process_heap_used_bytes",
  "sluice_process_heap_total_bytes",
  "sluice_config_reloads_total",
  "sluice_connector_up",
  "sluice_connector_state",
  "sluice_connector_state_change_timestamp_seconds",
  "sluice_connector_reconnects_total",
  "sluice_connector_messages_in_total",
  "sluice_connector_messages_out_total",
  "sluice_connector_bytes_in_total",
  "sluice_connector_bytes_out_total",
  "sluice_connector_overflows_total",
  "sluice_connector_rtt_seconds",
  "sluice_connector_users",
  "sluice_pipeline_up",
  "sluice_pipeline_state",
  ...new Set(COUNTER_NAMES.map((n) => PIPELINE_COUNTERS[n].metric.family)),
  "sluice_processor_events_total",
  "sluice_processor_evictions_total",
  "sluice_processor_keys",
  "sluice_processor_stats_total",
  "sluice_processor_current",
  "sluice_processor_latency_seconds",
  "sluice_outbox_events",
  "sluice_outbox_bytes",
  "sluice_pipeline_in_flight",
  "sluice_pipeline_last_event_timestamp_seconds",
];

/**
 * Builds the metric families of a snapshot.
 *
 * @param s The snapshot.
 * @returns The families, in the order of {@link METRIC_NAMES}.
 */
export function metricFamilies(s: HealthSnapshot): MetricFamily[] {
  const connectors = s.connectors.filter((c) => c.in_use);
  const pipelines = s.pipelines;
  const perConnector = (value: (c: ConnectorSnapshot) => number): Sample[] =>
    connectors.map((c) => ({ labels: { connector: c.name }, value: value(c) }));
  const perPipeline = (value: (p: PipelineSnapshot) => number): Sample[] =>
    pipelines.map((p) => ({ labels: { pipeline: p.name }, value: value(p) }));
  const seconds = (iso: string) => Date.parse(iso) / 1000;
  const one = (value: number): Sample[] => [{ value }];

  return [
    {
      name: "sluice_build_info",
      help: "Sluice build information; always 1, the version is in the label.",
      type: "gauge",
      samples: [{ labels: { version: s.process.version }, value: 1 }],
    },
    {
      name: "sluice_ready",
      help: "1 when every connector in use is connected and every pipeline running (/readyz 200).",
      type: "gauge",
      samples: one(s.ready ? 1 : 0),
    },
    {
      name: "sluice_process_start_time_seconds",
      help: "When the Sluice process started, in seconds since the Unix epoch.",
      type: "gauge",
      samples: one(seconds(s.process.started_at)),
    },
    {
      name: "sluice_process_uptime_seconds",
      help: "Seconds since the Sluice process started.",
      type: "gauge",
      samples: one(s.process.uptime_seconds),
    },
    {
      name: "sluice_process_resident_memory_bytes",
      help: "Resident set size of the process.",
      type: "gauge",
      samples: one(s.process.rss_bytes),
    },
    {
      name: "sluice_process_heap_used_bytes",
      help: "JavaScript heap in use.",
      type: "gauge",
      samples: one(s.process.heap_used_bytes),
    },
    {
      name: "sluice_process_heap_total_bytes",
      help: "JavaScript heap reserved.",
      type: "gauge",
      samples: one(s.process.heap_total_bytes),
    },
    {
      name: "sluice_config_reloads_total",
      help: "Configuration reloads (SIGHUP or --watch) by result: applied or rejected.",
      type: "counter",
      samples: s.reloads
        ? [
          { labels: { result: "applied" }, value: s.reloads.applied },
          { labels: { result: "rejected" }, value: s.reloads.rejected },
        ]
        : [],
    },
    {
      name: "sluice_connector_up",
      help: "1 while the connector is connected to a server, else 0.",
      type: "gauge",
      samples: perConnector((c) => (c.state === "connected" ? 1 : 0)),
    },
    {
      name: "sluice_connector_state",
      help: "Connection state of the connector: 1 for the current state, 0 for the others.",
      type: "gauge",
      samples: connectors.flatMap((c) =>
        CONNECTOR_STATES.map((state) => ({
          labels: { connector: c.name, state },
          value: c.state === state ? 1 : 0,
        }))
      ),
    },
    {
      name: "sluice_connector_state_change_timestamp_seconds",
      help: "When the connector's state last changed, in seconds since the Unix epoch.",
      type: "gauge",
      samples: perConnector((c) => seconds(c.since)),
    },
    {
      name: "sluice_connector_reconnects_total",
      help: "Reconnections of the connector after a lost connection.",
      type: "counter",
      samples: perConnector((c) => c.reconnects),
    },
    {
      name: "sluice_connector_messages_in_total",
      help: "Messages received from the server on the current connection.",
      type: "counter",
      samples: perConnector((c) => c.messages_in),
    },
    {
      name: "sluice_connector_messages_out_total",
      help: "Messages sent to the server on the current connection.",
      type: "counter",
      samples: perConnector((c) => c.messages_out),
    },
    {
      name: "sluice_connector_bytes_in_total",
      help: "Payload bytes received from the server on the current connection.",
      type: "counter",
      samples: perConnector((c) => c.bytes_in),
    },
    {
      name: "sluice_connector_bytes_out_total",
      help: "Payload bytes sent to the server on the current connection.",
      type: "counter",
      samples: perConnector((c) => c.bytes_out),
    },
    {
      name: "sluice_connector_overflows_total",
      help:
        "Events refused because too much sent data was unconfirmed by the server (max_pending).",
      type: "counter",
      samples: perConnector((c) => c.overflows),
    },
    {
      name: "sluice_connector_rtt_seconds",
      help: "Round-trip time to the server, measured at scrape time; absent when not connected.",
      type: "gauge",
      samples: connectors.flatMap((c) =>
        c.rtt_ms === null ? [] : [{ labels: { connector: c.name }, value: c.rtt_ms / 1000 }]
      ),
    },
    {
      name: "sluice_connector_users",
      help: "Pipelines (and health over NATS) holding the connection open.",
      type: "gauge",
      samples: perConnector((c) => c.users),
    },
    {
      name: "sluice_pipeline_up",
      help: "1 while the pipeline is running with every connector connected, else 0.",
      type: "gauge",
      samples: perPipeline((p) => (p.state === "running" ? 1 : 0)),
    },
    {
      name: "sluice_pipeline_state",
      help: "State of the pipeline: 1 for the current state, 0 for the others.",
      type: "gauge",
      samples: pipelines.flatMap((p) =>
        PIPELINE_HEALTH_STATES.map((state) => ({
          labels: { pipeline: p.name, state },
          value: p.state === state ? 1 : 0,
        }))
      ),
    },
    ...counterFamilies(pipelines),
    {
      name: "sluice_pipeline_in_flight",
      help: "Events received but not yet handled; 0 for core NATS sources (handled synchronously).",
      type: "gauge",
      samples: perPipeline((p) => p.in_flight),
    },
    {
      name: "sluice_pipeline_last_event_timestamp_seconds",
      help: "When the pipeline last received an event, in seconds since the Unix epoch; 0 before " +
        "the first.",
      type: "gauge",
      samples: perPipeline((p) => (p.last_event_at === null ? 0 : seconds(p.last_event_at))),
    },
  ];
}

/**
 * The families of the pipeline counters, derived from their one declaration in
 * {@link PIPELINE_COUNTERS}, followed by the per-processor and per-outbox families.
 */
function counterFamilies(pipelines: readonly PipelineSnapshot[]): MetricFamily[] {
  const families = new Map<string, MetricFamily & { samples: Sample[] }>();
  for (const name of COUNTER_NAMES) {
    const spec: CounterSpec = PIPELINE_COUNTERS[name];
    let family = families.get(spec.metric.family);
    if (!family) {
      family = {
        name: spec.metric.family,
        help: COUNTER_FAMILY_HELP[spec.metric.family] ?? spec.help,
        type: "counter",
        samples: [],
      };
      families.set(spec.metric.family, family);
    }
    for (const p of pipelines) {
      family.samples.push({
        labels: { pipeline: p.name, ...spec.metric.labels },
        value: (p.counters as Record<string, number>)[spec.snake] ?? 0,
      });
    }
  }
  const perProcessor = (value: (x: ProcessorSnapshot) => number): Sample[] =>
    pipelines.flatMap((p) =>
      p.processors.map((x) => ({
        labels: { pipeline: p.name, processor: x.processor },
        value: value(x),
      }))
    );
  const perStat = (
    values: (x: ProcessorSnapshot) => Readonly<Record<string, number>> | undefined,
  ): Sample[] =>
    pipelines.flatMap((p) =>
      p.processors.flatMap((x) =>
        Object.entries(values(x) ?? {}).map(([stat, value]) => ({
          labels: { pipeline: p.name, processor: x.processor, stat },
          value,
        }))
      )
    );
  const perOutbox = (value: (o: OutboxSnapshot) => number): Sample[] =>
    pipelines.flatMap((p) =>
      p.outboxes.map((o) => ({ labels: { pipeline: p.name, path: o.path }, value: value(o) }))
    );
  return [
    ...families.values(),
    {
      name: "sluice_processor_events_total",
      help: "Events at each processor by outcome: in (handed to it), out (passed on or " +
        "emitted), dropped (not errors), error (dead-lettered).",
      type: "counter",
      samples: pipelines.flatMap((p) =>
        p.processors.flatMap((x) =>
          (["in", "out", "dropped", "error"] as const).map((outcome) => ({
            labels: { pipeline: p.name, processor: x.processor, outcome },
            value: outcome === "error" ? x.errors : x[outcome],
          }))
        )
      ),
    },
    {
      name: "sluice_processor_evictions_total",
      help: "Keys a stateful processor forgot to stay within max_keys.",
      type: "counter",
      samples: perProcessor((x) => x.evicted),
    },
    {
      name: "sluice_processor_keys",
      help: "Keys a stateful processor (dedupe, throttle, window) holds now.",
      type: "gauge",
      samples: perProcessor((x) => x.keys),
    },
    {
      name: "sluice_processor_stats_total",
      help: "A processor kind's own counters by stat (a request's requests, replies, timeouts, " +
        "no_responders, error_replies, overloaded, cache_hits, cache_misses, coalesced).",
      type: "counter",
      samples: perStat((x) => x.stats?.counters),
    },
    {
      name: "sluice_processor_current",
      help: "A processor kind's own gauges by stat (a request's in_flight and cache_entries).",
      type: "gauge",
      samples: perStat((x) => x.stats?.gauges),
    },
    {
      name: "sluice_processor_latency_seconds",
      help: "How long a processor waited per event (a request: until its reply), in seconds.",
      type: "histogram",
      samples: pipelines.flatMap((p) =>
        p.processors.flatMap((x) => {
          const h = x.stats?.histograms.latency_seconds;
          if (!h) return [];
          const labels = { pipeline: p.name, processor: x.processor };
          return [
            ...h.bounds.map((le, i) => ({
              labels: { ...labels, le: String(le) },
              value: h.counts[i] ?? 0,
              suffix: "_bucket" as const,
            })),
            { labels: { ...labels, le: "+Inf" }, value: h.count, suffix: "_bucket" as const },
            { labels, value: h.sum, suffix: "_sum" as const },
            { labels, value: h.count, suffix: "_count" as const },
          ];
        })
      ),
    },
    {
      name: "sluice_outbox_events",
      help: "Events waiting in a sink's outbox.",
      type: "gauge",
      samples: perOutbox((o) => o.events),
    },
    {
      name: "sluice_outbox_bytes",
      help: "Bytes of the events waiting in a sink's outbox.",
      type: "gauge",
      samples: perOutbox((o) => o.bytes),
    },
  ];
}

/**
 * Renders a snapshot as Prometheus text exposition.
 *
 * @param s The snapshot.
 * @returns The body of `GET /metrics`.
 */
export function renderMetrics(s: HealthSnapshot): string {
  return renderExposition(metricFamilies(s));
}
