/**
 * Zod fields shared by processor schemas: dotted field paths, CEL expressions, rates.
 *
 * @module
 */
import * as z from "zod";
import { duration } from "../config/fields.ts";
import { parseDuration } from "../config/units.ts";

const FIELD_PATH = /^[^.\s]+(?:\.[^.\s]+)*$/;

/** A dotted field path such as `reading.unit`. */
export function fieldPath(description: string) {
  return z.string().regex(
    FIELD_PATH,
    "expected a field name or dotted path such as reading.unit (no empty segments or spaces)",
  ).describe(description);
}

/** A CEL expression, compiled by the kind's `compile`. */
export function cel(description: string) {
  return z.string().min(1, "expected a CEL expression").describe(description);
}

/** The smallest `max_keys` accepted and the default. */
export const DEFAULT_MAX_KEYS = 10_000;

/** A bound on remembered keys. */
export function maxKeys(description: string) {
  return z.int().min(1, "expected at least 1").default(DEFAULT_MAX_KEYS).describe(description);
}

/** A duration (`250ms`, `10s`, `1m`) in milliseconds that must be more than zero. */
export function positiveDuration(description: string) {
  return duration(description).refine((ms) => ms > 0, "expected a duration more than 0, e.g. 1s");
}

/** At most `count` events per `periodMs` milliseconds. */
export interface Rate {
  readonly count: number;
  readonly periodMs: number;
}

const RATE = /^(\d+)\/(.*)$/;

/**
 * Parses a rate such as `10/s`, `100/1m` or `5/250ms`: a whole number of events, a slash, and a
 * duration (a bare unit means one of it). Returns a message saying what is wrong otherwise.
 */
export function parseRate(text: string): Rate | string {
  const expected = "expected N/duration, e.g. 10/s, 100/1m or 5/250ms";
  const match = RATE.exec(text.trim());
  if (match === null) return `invalid rate "${text}": ${expected}`;
  const [, n = "", per = ""] = match;
  const count = Number(n);
  if (!Number.isSafeInteger(count) || count < 1) {
    return `invalid rate "${text}": the number of events must be a whole number of at least 1`;
  }
  const periodMs = parseDuration(/^(ms|s|m|h)$/.test(per) ? `1${per}` : per);
  if (periodMs === undefined) {
    return `invalid rate "${text}": "${per}" is not a duration (250ms, s, 10s, m, 1h); ${expected}`;
  }
  if (periodMs <= 0) return `invalid rate "${text}": the duration must be more than 0`;
  return { count, periodMs };
}

/** A rate field (`10/s`, `100/1m`), parsed by {@link parseRate}. */
export function rate(description: string) {
  return z.string().describe(description).transform((text, ctx) => {
    const parsed = parseRate(text);
    if (typeof parsed === "string") {
      ctx.addIssue({ code: "custom", message: parsed });
      return z.NEVER;
    }
    return parsed;
  });
}
