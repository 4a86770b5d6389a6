/**
 * `- dedupe: {key, value, deadband, heartbeat, max_keys}`: report by exception. Per key, an
 * event is forwarded when its value differs from the value last forwarded for that key — by at
 * least `deadband` when one is set (a difference equal to the deadband forwards) — or when the
 * key forwarded nothing for `heartbeat`; the rest are dropped. The first event of a key is always
 * forwarded. Comparing with the last *forwarded* value (not the last seen) means a slow drift is
 * reported once it adds up to the deadband.
 *
 * `check` refuses a deadband on a value whose CEL type is known and is not a number (a string, a
 * bool, a map, the whole event); a non-numeric value at run time is an evaluation error (the event
 * goes to the dead letter, naming the processor).
 *
 * @module
 */
import { defineProcessorKind } from "../types.ts";
import { mayBeNumeric } from "../_numeric.ts";
import { type DedupeConfig, dedupeSchema } from "./schema.ts";
import { Dedupe } from "./processor.ts";

/** Registration of `dedupe`. */
export const dedupeKind = defineProcessorKind({
  kind: "dedupe",
  summary: "Report by exception: forward an event per key only when its value changed " +
    "(or moved by a deadband), or as a heartbeat",
  schema: dedupeSchema,
  compile(config: DedupeConfig, ctx) {
    const key = config.key === undefined ? undefined : ctx.expression(["key"], config.key);
    const value = config.value === undefined ? undefined : ctx.expression(["value"], config.value);
    let ok = (config.key === undefined || key !== undefined) &&
      (config.value === undefined || value !== undefined);
    if (config.deadband !== undefined) {
      if (config.value === undefined) {
        ctx.problem(
          ["deadband"],
          "a deadband compares numbers, but without `value` the whole event is compared: " +
            "set `value` to a numeric expression, e.g. `value: temperature`",
        );
        ok = false;
      } else if (value !== undefined && !mayBeNumeric(value)) {
        ctx.problem(
          ["value"],
          `a deadband needs a number, but this expression gives ${value.type}: ` +
            "make it numeric or remove the deadband",
        );
        ok = false;
      }
    }
    if (!ok) return undefined;
    const settings = {
      key,
      value,
      deadband: config.deadband,
      heartbeatMs: config.heartbeat,
      maxKeys: config.max_keys,
    };
    return { create: (resources) => new Dedupe(settings, resources) };
  },
});
