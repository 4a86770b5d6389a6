/**
 * Settings of `window`: wall-clock windows (`size`, optionally hopping `every`), per `key`, with
 * named aggregates, bounded by `max_keys`.
 *
 * @module
 */
import * as z from "zod";
import { cel, maxKeys, positiveDuration } from "../_fields.ts";

/** Aggregate operations. */
export const OPS = ["count", "sum", "avg", "min", "max", "first", "last"] as const;

/** One aggregate operation. */
export type Op = typeof OPS[number];

/** `{avg: temperature}`: one operation and its CEL expression (`{count: true}` for a count). */
const aggregate = z.strictObject({
  count: z.boolean().refine(
    (v) => v,
    "count takes `true`: it counts the window's events, e.g. {count: true}",
  ).optional().describe("`true`: the number of events"),
  sum: cel("CEL expression giving a number: the sum").optional(),
  avg: cel("CEL expression giving a number: the mean").optional(),
  min: cel("CEL expression giving a number: the smallest").optional(),
  max: cel("CEL expression giving a number: the largest").optional(),
  first: cel("CEL expression: its value for the window's first event").optional(),
  last: cel("CEL expression: its value for the window's last event").optional(),
}).refine(
  (a) => Object.keys(a).length === 1,
  `expected exactly one operation (${OPS.join(", ")}), e.g. {avg: temperature} or {count: true}`,
);

/** Names the window sets itself; an aggregate may not take them. */
export const RESERVED_FIELDS: readonly string[] = ["key", "window_start", "window_end", "partial"];

/** The `window:` map. */
export const windowSchema = z.strictObject({
  key: cel(
    "CEL expression: one window per key value (default: one window for all events); the " +
      "emitted event's `key` is its value",
  ).optional(),
  size: positiveDuration(
    "Window length; windows are aligned to multiples of it since the epoch (1m windows start " +
      "at whole minutes, UTC)",
  ),
  every: positiveDuration(
    "Hopping windows: a window of `size` starts every `every` (aligned to multiples of it); " +
      "`size` must be a whole multiple of `every`. Default: `size` (tumbling windows)",
  ).optional(),
  aggregates: z.record(
    z.string().regex(/^[^.\s]+(?:\.[^.\s]+)*$/, "expected a field name or dotted path"),
    aggregate,
  ).refine((m) => Object.keys(m).length > 0, "expected at least one aggregate").describe(
    "Output field -> {op: CEL}; ops: count (`true`), sum, avg, min, max (numbers), first, last",
  ),
  max_keys: maxKeys(
    "Most keys with open windows; the least recently seen key's open windows are forgotten " +
      "(counted as evicted) when a new key would exceed it",
  ),
}).describe(
  "Aggregate events per key over wall-clock windows; emits " +
    '{"key", "window_start", "window_end", ...aggregates} when a window ends, with the ' +
    "subject and headers of its last event",
).meta({
  examples: [{
    key: "sensor",
    size: "1m",
    aggregates: {
      temperature_avg: { avg: "temperature" },
      temperature_max: { max: "temperature" },
      readings: { count: true },
    },
  }],
});

/** `window` settings after parsing (durations in ms). */
export type WindowConfig = z.output<typeof windowSchema>;
