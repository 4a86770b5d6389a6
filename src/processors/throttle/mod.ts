/**
 * `- throttle: {key, rate, max_keys}`: at most N events per duration, per key. Each key has a
 * token bucket that holds N tokens and refills continuously at N per duration: a burst of N
 * passes at once, then events pass at the rate; an event that finds no token is dropped
 * (counted as dropped, not an error). A new (or forgotten) key starts with a full bucket.
 *
 * @module
 */
import { defineProcessorKind } from "../types.ts";
import { type ThrottleConfig, throttleSchema } from "./schema.ts";
import { Throttle } from "./processor.ts";

/** Registration of `throttle`. */
export const throttleKind = defineProcessorKind({
  kind: "throttle",
  summary: "At most N events per duration (10/s, 100/1m), optionally per key; the rest dropped",
  schema: throttleSchema,
  compile(config: ThrottleConfig, ctx) {
    const key = config.key === undefined ? undefined : ctx.expression(["key"], config.key);
    if (config.key !== undefined && !key) return undefined;
    const settings = { key, rate: config.rate, maxKeys: config.max_keys };
    return { create: (resources) => new Throttle(settings, resources) };
  },
});
