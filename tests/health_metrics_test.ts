// Unit tests of the Prometheus text exposition and of Sluice's metric families.
import assert from "node:assert/strict";
import { METRIC_NAMES, metricFamilies, renderMetrics } from "../src/health/metrics.ts";
import {
  escapeHelp,
  escapeLabelValue,
  formatValue,
  renderExposition,
} from "../src/health/prometheus.ts";
import type { HealthSnapshot, PipelineCountersSnapshot } from "../src/health/snapshot.ts";
import { countersBySnake, newCounters } from "../src/engine/counters.ts";

Deno.test("escapeLabelValue() escapes backslash, double quote and line feed", () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeLabelValue("plain-name_1"), "plain-name_1");
  assert.equal(escapeLabelValue("ünïcode {x}"), "ünïcode {x}");
});

Deno.test("escapeHelp() escapes backslash and line feed but not quotes", () => {
  assert.equal(escapeHelp('one\\two\nthree "q"'), 'one\\\\two\\nthree "q"');
});

Deno.test("formatValue() writes integers exactly and the special values by name", () => {
  assert.equal(formatValue(0), "0");
  assert.equal(formatValue(123456789012), "123456789012");
  assert.equal(formatValue(0.25), "0.25");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
});

Deno.test("renderExposition() writes HELP, TYPE and samples with escaped labels", () => {
  const text = renderExposition([
    {
      name: "x_events_total",
      help: "Events\nseen",
      type: "counter",
      samples: [
        { labels: { pipeline: "a", outcome: "passed" }, value: 3 },
        { labels: { pipeline: 'we"ird\\' }, value: 0 },
      ],
    },
    { name: "x_up", help: "Up", type: "gauge", samples: [{ value: 1 }] },
    { name: "x_empty", help: "No samples yet", type: "gauge", samples: [] },
  ]);
  assert.equal(
    text,
    [
      "# HELP x_events_total Events\\nseen",
      "# TYPE x_events_total counter",
      'x_events_total{pipeline="a",outcome="passed"} 3',
      'x_events_total{pipeline="we\\"ird\\\\"} 0',
      "# HELP x_up Up",
      "# TYPE x_up gauge",
      "x_up 1",
      "# HELP x_empty No samples yet",
      "# TYPE x_empty gauge",
      "",
    ].join("\n"),
  );
});

Deno.test("renderExposition() refuses bad names, repeats and counters without _total", () => {
  const family = { help: "h", type: "gauge" as const, samples: [] };
  assert.throws(() => renderExposition([{ ...family, name: "bad-name" }]), TypeError);
  assert.throws(
    () => renderExposition([{ ...family, name: "a" }, { ...family, name: "a" }]),
    /defined twice/,
  );
  assert.throws(
    () => renderExposition([{ ...family, name: "a", type: "counter" }]),
    /must end in "_total"/,
  );
  assert.throws(
    () =>
      renderExposition([{ ...family, name: "a", samples: [{ labels: { "0x": "v" }, value: 1 }] }]),
    /Invalid label name/,
  );
  assert.equal(renderExposition([]), "");
});

function snapshot(overrides: Partial<HealthSnapshot> = {}): HealthSnapshot {
  return {
    ready: false,
    "not_ready": [],
    time: "2024-05-01T12:00:10.000Z",
    process: {
      version: "1.2.3",
      instance: "gw-01",
      pid: 42,
      "started_at": "2024-05-01T12:00:00.000Z",
      "uptime_seconds": 10,
      "rss_bytes": 50_000_000,
      "heap_used_bytes": 10_000_000,
      "heap_total_bytes": 20_000_000,
    },
    connectors: [
      {
        name: "local",
        type: "nats",
        state: "reconnecting",
        "in_use": true,
        since: "2024-05-01T12:00:05.000Z",
        reconnects: 2,
        "last_error": { message: "connection refused", at: "2024-05-01T12:00:05.000Z" },
        server: null,
        "rtt_ms": null,
        "messages_in": 10,
        "messages_out": 4,
        "bytes_in": 300,
        "bytes_out": 120,
        overflows: 1,
        users: 1,
      },
      {
        name: "spare",
        type: "nats",
        state: "closed",
        "in_use": false,
        since: "2024-05-01T12:00:00.000Z",
        reconnects: 0,
        "last_error": null,
        server: null,
        "rtt_ms": null,
        "messages_in": 0,
        "messages_out": 0,
        "bytes_in": 0,
        "bytes_out": 0,
        overflows: 0,
        users: 0,
      },
    ],
    pipelines: [{
      name: "alerts",
      state: "degraded",
      connectors: ["local"],
      counters: {
        ...countersBySnake(newCounters()),
        in: 10,
        passed: 4,
        filtered: 3,
        "dead_lettered": 2,
        "parse_errors": 2,
        "filter_errors": 1,
        "template_errors": 1,
        "sink_errors": 5,
        "dead_letter_errors": 0,
      } as PipelineCountersSnapshot,
      processors: [{
        processor: "1:dedupe",
        in: 7,
        out: 4,
        dropped: 3,
        errors: 0,
        evicted: 2,
        keys: 100,
      }],
      outboxes: [{
        path: "/var/lib/sluice/up.db",
        events: 12,
        bytes: 480,
        dropped: 5,
        replaying: false,
      }],
      error: null,
      "in_flight": 0,
      "last_event_at": "2024-05-01T12:00:09.500Z",
    }],
    reloads: null,
    ...overrides,
  };
}

function sampleLines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
}

Deno.test("metricFamilies() follows METRIC_NAMES, all names sluice_* and counters _total", () => {
  const families = metricFamilies(snapshot());
  assert.deepEqual(families.map((f) => f.name), METRIC_NAMES);
  for (const f of families) {
    assert.match(f.name, /^sluice_[a-z_]+$/);
    assert.equal(f.type === "counter", f.name.endsWith("_total"), f.name);
    assert.ok(f.help.length > 0);
  }
});

Deno.test("renderMetrics() reports the snapshot's pipeline counters by outcome", () => {
  const lines = sampleLines(renderMetrics(snapshot()));
  for (
    const expected of [
      'sluice_build_info{version="1.2.3"} 1',
      "sluice_ready 0",
      "sluice_process_uptime_seconds 10",
      "sluice_process_start_time_seconds 1714564800",
      'sluice_pipeline_events_received_total{pipeline="alerts"} 10',
      'sluice_pipeline_events_total{pipeline="alerts",outcome="passed"} 4',
      'sluice_pipeline_events_total{pipeline="alerts",outcome="filtered"} 3',
      'sluice_pipeline_events_total{pipeline="alerts",outcome="parse_error"} 2',
      'sluice_pipeline_events_total{pipeline="alerts",outcome="filter_error"} 1',
      'sluice_pipeline_sink_errors_total{pipeline="alerts",kind="template"} 1',
      'sluice_pipeline_sink_errors_total{pipeline="alerts",kind="send"} 5',
      'sluice_pipeline_dead_lettered_total{pipeline="alerts"} 2',
      'sluice_pipeline_up{pipeline="alerts"} 0',
      'sluice_pipeline_state{pipeline="alerts",state="degraded"} 1',
      'sluice_pipeline_state{pipeline="alerts",state="running"} 0',
      'sluice_pipeline_last_event_timestamp_seconds{pipeline="alerts"} 1714564809.5',
      'sluice_connector_up{connector="local"} 0',
      'sluice_connector_state{connector="local",state="reconnecting"} 1',
      'sluice_connector_state{connector="local",state="connected"} 0',
      'sluice_connector_reconnects_total{connector="local"} 2',
      'sluice_connector_overflows_total{connector="local"} 1',
    ]
  ) assert.ok(lines.includes(expected), `missing: ${expected}`);
});

Deno.test("renderMetrics() leaves out unused connectors, missing RTTs and absent reloads", () => {
  const text = renderMetrics(snapshot());
  assert.ok(!text.includes('connector="spare"'));
  assert.ok(!sampleLines(text).some((l) => l.startsWith("sluice_connector_rtt_seconds")));
  assert.ok(!sampleLines(text).some((l) => l.startsWith("sluice_config_reloads_total")));
  assert.match(text, /^# TYPE sluice_connector_rtt_seconds gauge$/m);
});

Deno.test("renderMetrics() converts RTT to seconds and reports reloads", () => {
  const s = snapshot({
    reloads: { applied: 3, rejected: 1, "last_at": null, "last_error": null },
  });
  s.connectors[0]!.state = "connected";
  s.connectors[0]!.rtt_ms = 4;
  const lines = sampleLines(renderMetrics(s));
  assert.ok(lines.includes('sluice_connector_rtt_seconds{connector="local"} 0.004'));
  assert.ok(lines.includes('sluice_connector_up{connector="local"} 1'));
  assert.ok(lines.includes('sluice_config_reloads_total{result="applied"} 3'));
  assert.ok(lines.includes('sluice_config_reloads_total{result="rejected"} 1'));
});

Deno.test("metric names are stable: dashboards and alerts depend on them", () => {
  assert.deepEqual(METRIC_NAMES, [
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
    "sluice_pipeline_events_received_total",
    "sluice_pipeline_events_total",
    "sluice_pipeline_emitted_total",
    "sluice_pipeline_sink_errors_total",
    "sluice_pipeline_dead_lettered_total",
    "sluice_pipeline_dead_letter_errors_total",
    "sluice_pipeline_acks_total",
    "sluice_pipeline_outbox_events_total",
    "sluice_pipeline_replies_total",
    "sluice_pipeline_reply_failures_total",
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
  ]);
});

Deno.test("renderMetrics() exports a processor kind's own stats and latency histogram, promtool-clean", async () => {
  const s = snapshot();
  s.pipelines[0]!.processors = [{
    processor: "0:request",
    in: 5,
    out: 4,
    dropped: 0,
    errors: 1,
    evicted: 0,
    keys: 0,
    stats: {
      counters: { requests: 4, timeouts: 1, cache_hits: 2 },
      gauges: { in_flight: 3 },
      histograms: {
        "latency_seconds": { bounds: [0.001, 0.01], counts: [1, 3], sum: 0.0125, count: 4 },
      },
    },
  }];
  const text = renderMetrics(s);
  const lines = sampleLines(text);
  const at = 'pipeline="alerts",processor="0:request"';
  for (
    const line of [
      `sluice_processor_stats_total{${at},stat="requests"} 4`,
      `sluice_processor_stats_total{${at},stat="timeouts"} 1`,
      `sluice_processor_current{${at},stat="in_flight"} 3`,
      `sluice_processor_latency_seconds_bucket{${at},le="0.001"} 1`,
      `sluice_processor_latency_seconds_bucket{${at},le="0.01"} 3`,
      `sluice_processor_latency_seconds_bucket{${at},le="+Inf"} 4`,
      `sluice_processor_latency_seconds_sum{${at}} 0.0125`,
      `sluice_processor_latency_seconds_count{${at}} 4`,
    ]
  ) assert.ok(lines.includes(line), `missing ${line}\n${text}`);
  assert.match(text, /^# TYPE sluice_processor_latency_seconds histogram$/m);

  let child;
  try {
    child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch {
    return; // .ci/run installs promtool; without it the assertions above still ran.
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, report);
});

Deno.test("docs/health.md describes every metric family", async () => {
  const doc = await Deno.readTextFile(new URL("../docs/health.md", import.meta.url));
  assert.deepEqual(METRIC_NAMES.filter((n) => !doc.includes("`" + n + "`")), []);
});
