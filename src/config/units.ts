/**
 * Durations and sizes as operators write them in configuration ("2s", "64MiB"). Parsing is strict
 * so that a typo such as "5 s" or a bare "5000" is reported rather than guessed at.
 *
 * @module
 */

const DURATION = /^(\d+)(?:\.(\d+))?(ms|s|m|h)$/;
const SIZE = /^(\d+)(?:\.(\d+))?(B|KB|MB|GB|KiB|MiB|GiB)$/;

const DURATION_FACTORS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const SIZE_FACTORS: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1_000,
  MB: 1_000_000,
  GB: 1_000_000_000,
  KiB: 1_024,
  MiB: 1_048_576,
  GiB: 1_073_741_824,
};

/**
 * Multiplies a decimal written as integer and fraction digits by `factor`, scaling the fraction
 * as an integer so that "1.1" times 1000 is exactly 1100 rather than 1100.0000000000002.
 */
function scale(integer: string, fraction: string | undefined, factor: number): number {
  if (fraction === undefined) return Number(integer) * factor;
  return Number(integer + fraction) * factor / 10 ** fraction.length;
}

/**
 * Parses a duration such as "250ms", "1.5s", "5m" or "1h" to milliseconds, returning undefined
 * for anything else (spaces, signs, bare numbers) so the caller can report the exact value.
 */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (match === null) return undefined;
  const [, integer = "", fraction, unit = ""] = match;
  const ms = scale(integer, fraction, DURATION_FACTORS[unit] ?? Number.NaN);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Parses a size such as "100B", "10KB" (decimal) or "64MiB" (binary) to whole bytes, rounding
 * down, and returns undefined for anything else or for sizes beyond the safe integer range.
 */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text);
  if (match === null) return undefined;
  const [, integer = "", fraction, unit = ""] = match;
  const bytes = Math.floor(scale(integer, fraction, SIZE_FACTORS[unit] ?? Number.NaN));
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const FORMAT_UNITS: readonly (readonly [string, number])[] = [
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1_000],
];

/**
 * Formats milliseconds in the largest unit that divides them exactly ("2s", "90m", "1500ms"), so
 * messages echo durations in the form operators write and `parseDuration` reads back.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms > 0 && Number.isInteger(ms)) {
    for (const [unit, factor] of FORMAT_UNITS) {
      if (ms % factor === 0) return `${ms / factor}${unit}`;
    }
  }
  return `${ms}ms`;
}
