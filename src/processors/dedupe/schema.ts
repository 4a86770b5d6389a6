/**
 * Settings of `dedupe`: what is compared (`value`), per what (`key`), how far it must move
 * (`deadband`), how often it is forwarded anyway (`heartbeat`) and how many keys are remembered.
 *
 * @module
 */
import * as z from "zod";
import { cel, maxKeys, positiveDuration } from "../_fields.ts";

/** The `dedupe:` map. */
export const dedupeSchema = z.strictObject({
  key: cel(
    "CEL expression: events with equal keys are compared with each other (default: one key for " +
      "all events); keys are compared as text, so 21 and 21.0 are one key",
  ).optional(),
  value: cel(
    "CEL expression giving what is compared (default: the whole event); without a deadband any " +
      "JSON value works, compared by value (21 equals 21.0, maps regardless of key order)",
  ).optional(),
  deadband: z.number().positive("expected a number more than 0").optional().describe(
    "Forward only when |value - last forwarded value| >= deadband (equal to it forwards); the " +
      "value must be a number. Without it: forward when the value changed",
  ),
  heartbeat: positiveDuration(
    "Forward anyway when this key forwarded nothing for this long (checked as events arrive)",
  ).optional(),
  max_keys: maxKeys(
    "Most keys remembered; the least recently seen are forgotten (counted as evicted), and a " +
      "forgotten key's next event is forwarded as a first one",
  ),
}).describe(
  "Report by exception per key: forward an event when its value changed (or moved by at least " +
    "the deadband) since the last one forwarded for its key; the first event of a key is forwarded",
).meta({
  examples: [{ key: "sensor", value: "temperature", deadband: 0.5, heartbeat: "10m" }],
});

/** `dedupe` settings after parsing (durations in ms). */
export type DedupeConfig = z.output<typeof dedupeSchema>;
