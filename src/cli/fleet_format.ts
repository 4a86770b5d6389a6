/**
 * Human output of `sluice fleet`: aligned tables and short durations.
 *
 * @module
 */

/** Lines of a table whose columns are padded to their widest cell. */
export function table(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) =>
    r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ").trimEnd()
  );
}

/** `3d4h`, `5m12s`, `42s`. */
export function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${m}m`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** `k=v,k2=v2`, or `-` for none. */
export function labelText(labels: Readonly<Record<string, string>>): string {
  const text = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",");
  return text || "-";
}
