/**
 * `sluice status`: asks a running Sluice for its `/status` snapshot and prints a compact table,
 * so an operator on the gateway gets an answer in one command. Exits 0 when ready, 1 when not
 * ready or when the endpoint cannot be reached.
 *
 * @module
 */
import { counterSummary } from "../engine/counters.ts";
import type { HealthSnapshot } from "../health/snapshot.ts";
import { EXIT, type Output } from "./run.ts";

/** How long `sluice status` waits for an answer. */
export const STATUS_TIMEOUT_MS = 5_000;

/** Options of {@link status}. */
export interface StatusOptions {
  /** How long to wait for the answer, in milliseconds. @default STATUS_TIMEOUT_MS */
  timeoutMs?: number;
}

/**
 * Fetches `<url>/status` and prints it as tables.
 *
 * @param url Base URL of the health endpoints, e.g. `http://127.0.0.1:9180`.
 * @param output Where the table (stdout) and problems (stderr) go.
 * @param options Timeout.
 * @returns 0 when ready, 1 when not ready or unreachable.
 */
export async function status(
  url: string,
  output: Output,
  options: StatusOptions = {},
): Promise<number> {
  const target = statusUrl(url);
  const timeoutMs = options.timeoutMs ?? STATUS_TIMEOUT_MS;
  let body: string;
  try {
    const response = await fetch(target, { signal: AbortSignal.timeout(timeoutMs) });
    body = await response.text();
    if (!response.ok) {
      output.err(
        `sluice: ${target} answered HTTP ${response.status}: is this the health.listen address of sluice run?`,
      );
      return EXIT.failure;
    }
  } catch (e) {
    const why = e instanceof DOMException && e.name === "TimeoutError"
      ? `no answer within ${timeoutMs / 1000}s`
      : oneLine(e);
    output.err(
      `sluice: cannot reach ${target}: ${why}: is sluice run running with health.listen at this address?`,
    );
    return EXIT.failure;
  }
  let snapshot: HealthSnapshot;
  try {
    snapshot = JSON.parse(body) as HealthSnapshot;
    if (!isSnapshot(snapshot)) throw new TypeError("unexpected shape");
  } catch (e) {
    output.err(`sluice: ${target} did not answer with a Sluice status: ${oneLine(e)}`);
    return EXIT.failure;
  }
  for (const line of formatStatus(snapshot)) output.out(line);
  return snapshot.ready ? EXIT.ok : EXIT.failure;
}

/**
 * The `/status` URL of a base URL; a URL already ending in `/status` is kept.
 *
 * @param base e.g. `http://127.0.0.1:9180` or `https://proxy/gw-01/`.
 * @returns The URL to fetch.
 */
export function statusUrl(base: string): string {
  const url = new URL(base);
  if (!url.pathname.endsWith("/status")) {
    url.pathname = `${url.pathname.replace(/\/+$/, "")}/status`;
  }
  return url.href;
}

/**
 * Formats a snapshot as the lines `sluice status` prints: a headline, a connector table, a
 * pipeline table and, when not ready, the reasons.
 *
 * @param s The snapshot.
 * @returns The lines, without line breaks.
 */
export function formatStatus(s: HealthSnapshot): string[] {
  const now = Date.parse(s.time);
  const p = s.process;
  const lines = [
    `sluice ${p.version} on ${p.instance}, up ${formatAge(p.uptime_seconds * 1000)}: ${
      s.ready ? "READY" : "NOT READY"
    }`,
    "",
  ];
  const connectors = s.connectors.filter((c) => c.in_use);
  lines.push(
    ...table(
      ["CONNECTOR", "STATE", "SINCE", "RECONNECTS", "RTT", "LAST ERROR"],
      connectors.map((c) => [
        c.name,
        c.state,
        formatAge(now - Date.parse(c.since)),
        String(c.reconnects),
        c.rtt_ms === null ? "-" : `${round(c.rtt_ms)}ms`,
        c.last_error
          ? `${clip(c.last_error.message, 60)} (${
            formatAge(now - Date.parse(c.last_error.at))
          } ago)`
          : "-",
      ]),
    ),
    "",
    ...table(
      ["PIPELINE", "STATE", "IN", "PASSED", "FILTERED", "DEAD-LETTERED", "ERRORS"],
      s.pipelines.map((pl) => {
        const c = counterSummary(pl.counters);
        return [
          pl.name,
          pl.state,
          String(c.in),
          String(c.passed),
          String(c.filtered),
          String(c.dead_lettered),
          String(c.errors),
        ];
      }),
    ),
  );
  const processors = s.pipelines.flatMap((pl) =>
    (pl.processors ?? []).map((x) => [
      pl.name,
      x.processor,
      String(x.in),
      String(x.out),
      String(x.dropped),
      String(x.errors),
      String(x.keys),
      String(x.evicted),
    ])
  );
  if (processors.length > 0) {
    lines.push(
      "",
      ...table(
        ["PIPELINE", "PROCESSOR", "IN", "OUT", "DROPPED", "ERRORS", "KEYS", "EVICTED"],
        processors,
      ),
    );
  }
  const outboxes = s.pipelines.flatMap((pl) =>
    (pl.outboxes ?? []).map((o) => [
      pl.name,
      o.path,
      String(o.events),
      String(o.bytes),
      String(pl.counters.buffered ?? 0),
      String(pl.counters.replayed ?? 0),
      String(o.dropped),
      o.replaying ? "yes" : "no",
    ])
  );
  if (outboxes.length > 0) {
    lines.push(
      "",
      ...table(
        ["PIPELINE", "OUTBOX", "EVENTS", "BYTES", "BUFFERED", "REPLAYED", "DROPPED", "REPLAYING"],
        outboxes,
      ),
    );
  }
  const failed = s.pipelines.filter((pl) => pl.state === "failed" && pl.error);
  for (const pl of failed) lines.push("", `Pipeline ${pl.name} failed to start: ${pl.error}`);
  if (s.reloads?.last_error) {
    lines.push(
      "",
      `Last reload (${s.reloads.last_at ?? "?"}): ${clip(s.reloads.last_error, 200)}`,
      `Reloads: ${s.reloads.applied} applied, ${s.reloads.rejected} rejected`,
    );
  }
  if (!s.ready) {
    lines.push("", "Not ready:", ...s.not_ready.map((n) => `  ${n.reason}`));
  }
  return lines;
}

/**
 * A duration for people: `850ms`, `42s`, `3m07s`, `2h05m`, `4d03h`.
 *
 * @param ms Milliseconds; negative counts as 0.
 * @returns The text.
 */
export function formatAge(ms: number): string {
  const t = Math.max(0, Math.floor(ms));
  if (t < 1000) return `${t}ms`;
  const sec = Math.floor(t / 1000);
  if (sec < 60) return `${sec}s`;
  const two = (n: number) => String(n).padStart(2, "0");
  const min = Math.floor(sec / 60);
  if (min < 60) return `${min}m${two(sec % 60)}s`;
  const h = Math.floor(min / 60);
  if (h < 24) return `${h}h${two(min % 60)}m`;
  return `${Math.floor(h / 24)}d${two(h % 24)}h`;
}

function table(header: readonly string[], rows: readonly string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) =>
    r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  ")
      .trimEnd()
  );
}

function isSnapshot(v: unknown): v is HealthSnapshot {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Partial<Record<keyof HealthSnapshot, unknown>>;
  return typeof s.ready === "boolean" && Array.isArray(s.connectors) &&
    Array.isArray(s.pipelines) && Array.isArray(s.not_ready) &&
    typeof s.process === "object" && s.process !== null && typeof s.time === "string";
}

function round(ms: number): string {
  // nats.js measures whole milliseconds.
  return ms < 1 ? "<1" : String(Math.round(ms));
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/\s*\n\s*/g, " ");
}
