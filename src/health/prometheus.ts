/**
 * The Prometheus text exposition format (version 0.0.4): metric families with HELP and TYPE
 * lines, samples with escaped label values. Small on purpose: counters and gauges are all
 * Sluice exports.
 *
 * @example Render one counter
 * ```ts
 * import { renderExposition } from "./prometheus.ts";
 * const text = renderExposition([{
 *   name: "sluice_pipeline_events_received_total",
 *   help: "Events received",
 *   type: "counter",
 *   samples: [{ labels: { pipeline: "alerts" }, value: 3 }],
 * }]);
 * // # HELP sluice_pipeline_events_received_total Events received
 * // # TYPE sluice_pipeline_events_received_total counter
 * // sluice_pipeline_events_received_total{pipeline="alerts"} 3
 * ```
 *
 * @module
 */

/** The `Content-Type` of the text exposition format. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Kinds of metric Sluice exports. */
export type MetricType = "counter" | "gauge" | "histogram";

/** One sample of a family: label values and a number. */
export interface Sample {
  /** Label names to values; any string is allowed as a value (it is escaped). @default {} */
  labels?: Readonly<Record<string, string>>;
  /** The sample's value. */
  value: number;
  /** Appended to the family name: `_bucket`, `_sum` or `_count` for a histogram. @default "" */
  suffix?: "_bucket" | "_sum" | "_count";
}

/** A metric family: one name, its HELP text, TYPE and samples. */
export interface MetricFamily {
  /** Metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`; counters end in `_total`. */
  name: string;
  /** One line of help for people; backslashes and line breaks are escaped. */
  help: string;
  /** Counter or gauge. */
  type: MetricType;
  /** The samples; a family may have none (yet). */
  samples: readonly Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Escapes a label value: backslash, double quote and line feed.
 *
 * @param value Any string.
 * @returns The text to put between the double quotes.
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/**
 * Escapes HELP text: backslash and line feed.
 *
 * @param text Any string.
 * @returns The text to put after the metric name on the HELP line.
 */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/**
 * Formats a sample value: integers without exponent where exact, `NaN`, `+Inf`, `-Inf`.
 *
 * @param value The number.
 * @returns Its text form.
 */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isSafeInteger(value)) return value.toFixed(0);
  return String(value);
}

/**
 * Renders metric families in the text exposition format, each with HELP and TYPE lines, ending
 * with a line feed.
 *
 * @param families The families, in the order to print them. Names must be unique.
 * @returns The exposition text.
 * @throws {TypeError} When a metric or label name is invalid, a name repeats, or a counter's name
 * does not end in `_total` (programming errors: names are fixed in code).
 */
export function renderExposition(families: readonly MetricFamily[]): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new TypeError(`Invalid metric name "${f.name}"`);
    if (seen.has(f.name)) throw new TypeError(`Metric "${f.name}" is defined twice`);
    if (f.type === "counter" && !f.name.endsWith("_total")) {
      throw new TypeError(`Counter "${f.name}" must end in "_total"`);
    }
    seen.add(f.name);
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
    lines.push(`# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const name = f.name + (s.suffix ?? "");
      lines.push(`${name}${labelText(f.name, s.labels)} ${formatValue(s.value)}`);
    }
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

function labelText(metric: string, labels: Readonly<Record<string, string>> | undefined): string {
  if (!labels) return "";
  const parts: string[] = [];
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith("__")) {
      throw new TypeError(`Invalid label name "${name}" on metric "${metric}"`);
    }
    parts.push(`${name}="${escapeLabelValue(value)}"`);
  }
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}
