/**
 * Settings of `throttle`: a rate (`10/s`, `100/1m`), optionally per key, bounded by `max_keys`.
 *
 * @module
 */
import * as z from "zod";
import { cel, maxKeys, rate } from "../_fields.ts";

/** The `throttle:` map. */
export const throttleSchema = z.strictObject({
  key: cel("CEL expression: one budget per key (default: one budget for all events)").optional(),
  rate: rate(
    "At most N events per duration: a token bucket that holds N (a burst of N passes at once) " +
      "and refills continuously at N per duration; events finding it empty are dropped",
  ),
  max_keys: maxKeys(
    "Most keys remembered; the least recently seen are forgotten (counted as evicted) and start " +
      "again with a full budget",
  ),
}).describe("Rate-limit events, optionally per key; the rest are dropped").meta({
  examples: [{ key: "sensor", rate: "10/s" }, { rate: "100/1m" }],
});

/** `throttle` settings after parsing. */
export type ThrottleConfig = z.output<typeof throttleSchema>;
